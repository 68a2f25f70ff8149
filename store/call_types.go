package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CallType is the settings a call gets from the type in its "type:id":
// limits, ringing, backstage and the default permissions of each member
// role. Admins define them; default, audio_room and livestream are built
// in (migration 023).
type CallType struct {
	Name string
	// MaxParticipants caps a session's live participants.
	MaxParticipants int
	// MaxDurationSeconds ends a session this long after it started; 0: no
	// limit.
	MaxDurationSeconds int
	// RingTimeoutSeconds is how long a ring rings; nil: CALL_RING_TIMEOUT.
	RingTimeoutSeconds *int
	// RejectBusy rejects at once (BUSY) the ring of a user in another live call.
	RejectBusy bool
	// Backstage: new calls start backstage (only hosts join until goLive).
	Backstage bool
	// Permissions are the default permissions per member role.
	Permissions CallPermissions
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// CallPermissions are default permissions by member role (host, member,
// viewer): stored as data here, enforced by the permissions rules.
type CallPermissions map[string][]string

// Permissions a call type may give a role.
const (
	CallPermSendAudio   = "SEND_AUDIO"
	CallPermSendVideo   = "SEND_VIDEO"
	CallPermScreenshare = "SCREENSHARE"
)

// CallTypeRoles are the roles a call type sets default permissions for.
var CallTypeRoles = []string{"host", "member", "viewer"}

// Limits of call type settings.
const (
	// MaxCallParticipantsLimit caps maxParticipants: a session's live
	// participants must all fit in its listed participants.
	MaxCallParticipantsLimit = MaxCallParticipantsListed
	// MaxCallDurationSeconds caps maxDurationSeconds: a day.
	MaxCallDurationSeconds = 24 * 60 * 60
	// MaxRingTimeoutSeconds caps ringTimeoutSeconds: ten minutes.
	MaxRingTimeoutSeconds = 600
	// MaxCallTypes caps how many call types exist.
	MaxCallTypes = 100
)

// CallTypeSettings change a call type; nil fields keep the current value
// (or, for a new type, the default's: 100 participants, no duration
// limit, CALL_RING_TIMEOUT, busy rejection on, no backstage, no
// permissions).
type CallTypeSettings struct {
	MaxParticipants    *int
	MaxDurationSeconds *int
	RingTimeoutSeconds *int
	// ClearRingTimeout goes back to CALL_RING_TIMEOUT.
	ClearRingTimeout bool
	RejectBusy       *bool
	Backstage        *bool
	// Permissions replace the given roles' defaults (roles left out keep
	// theirs).
	Permissions CallPermissions
}

// CheckCallTypeSettings checks settings before anything is written; the
// error names the setting out of range.
func CheckCallTypeSettings(name string, in CallTypeSettings) error {
	if err := CheckCallType("name", name); err != nil {
		return err
	}
	if v := in.MaxParticipants; v != nil && (*v < 1 || *v > MaxCallParticipantsLimit) {
		return Invalid("settings.maxParticipants", "must be between 1 and %d, got %d", MaxCallParticipantsLimit, *v)
	}
	if v := in.MaxDurationSeconds; v != nil && (*v < 0 || *v > MaxCallDurationSeconds) {
		return Invalid("settings.maxDurationSeconds", "must be between 0 (no limit) and %d (a day), got %d", MaxCallDurationSeconds, *v)
	}
	if v := in.RingTimeoutSeconds; v != nil && (*v < 1 || *v > MaxRingTimeoutSeconds) {
		return Invalid("settings.ringTimeoutSeconds", "must be between 1 and %d, got %d", MaxRingTimeoutSeconds, *v)
	}
	for role, perms := range in.Permissions {
		field := "settings.permissions." + role
		known := false
		for _, r := range CallTypeRoles {
			known = known || r == role
		}
		if !known {
			return Invalid("settings.permissions", "%q is not a role: use host, member or viewer", truncate(role, 40))
		}
		seen := map[string]bool{}
		for _, p := range perms {
			if p != CallPermSendAudio && p != CallPermSendVideo && p != CallPermScreenshare {
				return Invalid(field, "%q is not a permission: use SEND_AUDIO, SEND_VIDEO or SCREENSHARE", truncate(p, 40))
			}
			if seen[p] {
				return Invalid(field, "%s appears more than once", p)
			}
			seen[p] = true
		}
	}
	return nil
}

const callTypeColumns = `name, max_participants, max_duration_seconds, ring_timeout_seconds, reject_busy, backstage, permissions, created_at, updated_at`

func scanCallType(row pgx.Row) (*CallType, error) {
	var t CallType
	if err := row.Scan(&t.Name, &t.MaxParticipants, &t.MaxDurationSeconds, &t.RingTimeoutSeconds, &t.RejectBusy,
		&t.Backstage, &t.Permissions, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	return &t, nil
}

// UpsertCallType creates a call type or changes the given settings of one.
func (s *Store) UpsertCallType(ctx context.Context, name string, in CallTypeSettings) (*CallType, error) {
	if err := CheckCallTypeSettings(name, in); err != nil {
		return nil, err
	}
	perms := in.Permissions
	if perms == nil {
		perms = CallPermissions{}
	}
	var t *CallType
	err := s.InTx(ctx, func(tx *Store) error {
		var n int
		if err := tx.db.QueryRow(ctx, `SELECT count(*) FROM call_types WHERE name <> $1`, name).Scan(&n); err != nil {
			return err
		}
		if n >= MaxCallTypes {
			return Invalid("name", "there are %d call types already, the most there may be", n)
		}
		// jsonb || merges the roles given over the current ones.
		var err error
		t, err = scanCallType(tx.db.QueryRow(ctx, `
			INSERT INTO call_types AS t (name, max_participants, max_duration_seconds, ring_timeout_seconds, reject_busy, backstage, permissions)
			VALUES ($1, coalesce($2, 100), coalesce($3, 0), $4, coalesce($5, true), coalesce($6, false), $7)
			ON CONFLICT (name) DO UPDATE SET
				max_participants = coalesce($2, t.max_participants),
				max_duration_seconds = coalesce($3, t.max_duration_seconds),
				ring_timeout_seconds = CASE WHEN $8 THEN NULL ELSE coalesce($4, t.ring_timeout_seconds) END,
				reject_busy = coalesce($5, t.reject_busy),
				backstage = coalesce($6, t.backstage),
				permissions = t.permissions || excluded.permissions,
				updated_at = now()
			RETURNING `+callTypeColumns,
			name, in.MaxParticipants, in.MaxDurationSeconds, in.RingTimeoutSeconds, in.RejectBusy, in.Backstage, perms, in.ClearRingTimeout))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("store: upsert call type: %w", err)
	}
	return t, nil
}

// CallTypes returns every call type, by name.
func (s *Store) CallTypes(ctx context.Context) ([]*CallType, error) {
	rows, err := s.db.Query(ctx, `SELECT `+callTypeColumns+` FROM call_types ORDER BY name LIMIT $1`, MaxCallTypes+1)
	if err != nil {
		return nil, fmt.Errorf("store: call types: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallType, error) { return scanCallType(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call types: %w", err)
	}
	return out, nil
}

// CallTypeByName returns a call type, or nil when there is none.
func (s *Store) CallTypeByName(ctx context.Context, name string) (*CallType, error) {
	t, err := scanCallType(s.db.QueryRow(ctx, `SELECT `+callTypeColumns+` FROM call_types WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: call type: %w", err)
	}
	return t, nil
}

// checkCallTypeExists checks, in a call's creation, that its type exists,
// and returns it. It shares the type's row lock, so an upsert of the type
// commits before or after, never under, the creation.
func (s *Store) checkCallTypeExists(ctx context.Context, name string) (*CallType, error) {
	t, err := scanCallType(s.db.QueryRow(ctx, `SELECT `+callTypeColumns+` FROM call_types WHERE name = $1 FOR SHARE`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Invalid("input.type", "there is no call type %q: use default, audio_room, livestream or one an admin made with upsertCallType", name)
	}
	return t, err
}

// ErrCallFull means a session holds its call type's maxParticipants.
var ErrCallFull = errors.New("store: call full")

// CallFullError says which call is full, at how many. It matches ErrCallFull.
type CallFullError struct {
	CallID string
	Max    int
}

func (e *CallFullError) Error() string {
	return fmt.Sprintf("call %q is full: its type allows %d participants at a time; try again when someone leaves", e.CallID, e.Max)
}

// Is makes errors.Is(err, ErrCallFull) true.
func (e *CallFullError) Is(target error) bool { return target == ErrCallFull }

// ErrBackstage means a call is backstage and the joiner is no host.
var ErrBackstage = errors.New("store: call is backstage")

// CallLeftMaxDuration: the session reached its call type's maxDurationSeconds.
const CallLeftMaxDuration = "max_duration"

// CallMaxDurationKind is the outbox job that ends a session at its call
// type's maxDurationSeconds. It is written with the session's start, so a
// node that dies later still has it run by another node.
const CallMaxDurationKind = "calls.max_duration"

// CallMaxDurationJob is the payload of CallMaxDurationKind.
type CallMaxDurationJob struct {
	Call    string    `json:"call"`
	Session uuid.UUID `json:"session"`
}

// checkJoinLimits applies the call type's rules to a join, in the join's
// transaction: a live session takes at most maxParticipants. The
// session's row is locked
// (FOR UPDATE) by the join, so joins are counted one at a time and
// concurrent joins never exceed the limit.
func (s *Store) checkJoinLimits(ctx context.Context, call *Call, session *CallSession) error {
	t, err := s.CallTypeByName(ctx, call.Type)
	if err != nil {
		return err
	}
	if t == nil {
		t = &CallType{MaxParticipants: 100}
	}
	var live int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM call_participants WHERE session_id = $1 AND left_at IS NULL`, session.ID).Scan(&live); err != nil {
		return err
	}
	if live >= t.MaxParticipants {
		return &CallFullError{CallID: call.ID, Max: t.MaxParticipants}
	}
	return nil
}

// scheduleMaxDuration writes the job that ends a new session at its call
// type's maxDurationSeconds, in the join's transaction.
func (s *Store) scheduleMaxDuration(ctx context.Context, call *Call, session *CallSession) error {
	t, err := s.CallTypeByName(ctx, call.Type)
	if err != nil || t == nil || t.MaxDurationSeconds <= 0 {
		return err
	}
	at := session.StartedAt.Add(time.Duration(t.MaxDurationSeconds) * time.Second)
	_, err = s.EnqueueJobAt(ctx, CallMaxDurationKind, CallMaxDurationJob{Call: call.ID, Session: session.ID}, at)
	return err
}

// EndCallSession ends one session, if still live, for everyone: every
// participant leaves with reason, and the session ends. Nil departures
// when the session had ended already. Run it in a transaction.
func (s *Store) EndCallSession(ctx context.Context, sessionID uuid.UUID, reason string) (*CallDepartures, error) {
	var callID string
	err := s.db.QueryRow(ctx, `SELECT call_id FROM call_sessions WHERE id = $1 AND ended_at IS NULL FOR UPDATE`, sessionID).Scan(&callID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: end call session: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE session_id = $1 AND left_at IS NULL`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("store: end call session: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: end call session: %w", err)
	}
	d, err := s.RemoveCallParticipants(ctx, ids, reason)
	if err != nil {
		return nil, err
	}
	if len(d.Ended) == 0 {
		// No participant left to take out (a repair case): end it here.
		rows, err := s.db.Query(ctx, `UPDATE call_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL RETURNING `+sessionColumns, sessionID)
		if err != nil {
			return nil, fmt.Errorf("store: end call session: %w", err)
		}
		if d.Ended, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallSession, error) { return scanSession(r) }); err != nil {
			return nil, fmt.Errorf("store: end call session: %w", err)
		}
	}
	return d, nil
}

// SetCallBackstage puts a call backstage (true: only hosts join) or live
// (false). It returns the call, and whether it changed.
func (s *Store) SetCallBackstage(ctx context.Context, callID string, backstage bool) (*Call, bool, error) {
	c, err := scanCall(s.db.QueryRow(ctx, `
		UPDATE calls SET backstage = $2, updated_at = now() WHERE id = $1 AND backstage <> $2
		RETURNING `+callColumns, callID, backstage))
	if err == nil {
		return c, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("store: set call backstage: %w", err)
	}
	c, err = scanCall(s.db.QueryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = $1`, callID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, NotFound("call", callID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: set call backstage: %w", err)
	}
	return c, false, nil
}

// MarshalJSON writes permissions as a JSON object, roles without any as [].
func (p CallPermissions) MarshalJSON() ([]byte, error) {
	out := make(map[string][]string, len(p))
	for k, v := range p {
		if v == nil {
			v = []string{}
		}
		out[k] = v
	}
	return json.Marshal(out)
}
