package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Call is a video call. Its id is "type:id" (for example "default:standup"):
// the type groups calls of one kind, the id part is chosen by the app or
// generated. The full "type:id" is the call's id everywhere in the API.
type Call struct {
	ID          string
	Type        string
	CreatedByID string
	Data        json.RawMessage
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// StartsAt is when a scheduled call starts (the app's to say).
	StartsAt *time.Time
	// Backstage: only hosts join until goLive (from the call type).
	Backstage bool
}

// CallMember is a user who may join a call, with a role.
type CallMember struct {
	CallID    string
	UserID    string
	Role      string
	CreatedAt time.Time
}

// Roles of call members: the creator is the host. A viewer joins to
// watch: its call type's viewer permissions (none in the built-in types)
// until a host grants more, no SFU data channel, and it is never rung.
const (
	CallRoleHost   = "host"
	CallRoleMember = "member"
	CallRoleViewer = "viewer"
)

// Limits on calls.
const (
	// MaxCallTypeLen caps a call type.
	MaxCallTypeLen = 32
	// MaxCallMembers caps the members of one call.
	MaxCallMembers = 1000
)

// CallInput creates a call.
type CallInput struct {
	Type string
	// ID is the id part of "type:id"; empty generates one.
	ID string
	// Members are user ids besides the creator, who is always a member.
	Members []string
	Data    json.RawMessage
	// Ring rings the members (the calls product does; the store ignores it).
	Ring bool
	// StartsAt schedules the call (listed by it; joins are not held back).
	StartsAt *time.Time
}

// CheckCallType checks a call type: 1 to 32 lowercase letters, digits, _ or -.
func CheckCallType(field, t string) error {
	if t == "" || len(t) > MaxCallTypeLen {
		return Invalid(field, "a call type must be 1 to %d characters", MaxCallTypeLen)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Invalid(field, "%q is not a valid call type: use lowercase letters, digits, _ and - only", truncate(t, 80))
		}
	}
	return nil
}

// ParseCallID checks a full call id, "type:id", and returns its type.
func ParseCallID(field, cid string) (string, error) {
	typ, id, ok := strings.Cut(cid, ":")
	if !ok {
		return "", Invalid(field, "%q is not a call id: call ids are \"type:id\", like \"default:standup\"", truncate(cid, 80))
	}
	if err := CheckCallType(field, typ); err != nil {
		return "", err
	}
	if err := checkCallIDPart(field, id); err != nil {
		return "", err
	}
	return typ, nil
}

// checkCallIDPart checks the id part of a call id: 1 to 64 letters, digits
// or _-@. (the characters of user ids).
func checkCallIDPart(field, id string) error {
	if err := CheckUserID(field, id); err != nil {
		return Invalid(field, "the id part of a call id must be 1 to %d letters, digits or _-@.", MaxUserIDLen)
	}
	return nil
}

// CheckCallInput validates a new call before anything is written.
func CheckCallInput(in CallInput) error {
	if err := CheckCallType("input.type", in.Type); err != nil {
		return err
	}
	if in.ID != "" {
		if err := checkCallIDPart("input.id", in.ID); err != nil {
			return err
		}
	}
	if len(in.Members) > MaxBatch {
		return Invalid("input.members", "at most %d members per call, got %d", MaxBatch, len(in.Members))
	}
	seen := make(map[string]bool, len(in.Members))
	for i, m := range in.Members {
		field := fmt.Sprintf("input.members[%d]", i)
		if err := CheckUserID(field, m); err != nil {
			return err
		}
		if seen[m] {
			return Invalid(field, "user %q appears more than once", m)
		}
		seen[m] = true
	}
	return CheckData("input.data", in.Data)
}

const callColumns = `id, type, created_by, data, created_at, updated_at, starts_at, backstage`

func scanCall(row pgx.Row) (*Call, error) {
	var c Call
	if err := row.Scan(&c.ID, &c.Type, &c.CreatedByID, &c.Data, &c.CreatedAt, &c.UpdatedAt, &c.StartsAt, &c.Backstage); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateCall creates a call with the creator as host and the given members,
// or, when a call with the given id already exists, returns it unchanged
// (created is false). Members must be existing users.
func (s *Store) CreateCall(ctx context.Context, creator string, in CallInput) (call *Call, created bool, err error) {
	if err := CheckCallInput(in); err != nil {
		return nil, false, err
	}
	id := in.ID
	if id == "" {
		id = NewID().String()
	}
	cid := in.Type + ":" + id
	err = s.InTx(ctx, func(tx *Store) error {
		call, created = nil, false
		typ, err := tx.checkCallTypeExists(ctx, in.Type)
		if err != nil {
			return err
		}
		c, err := scanCall(tx.db.QueryRow(ctx, `
			INSERT INTO calls (id, type, created_by, data, starts_at, backstage) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO NOTHING
			RETURNING `+callColumns, cid, in.Type, creator, in.Data, in.StartsAt, typ.Backstage))
		if errors.Is(err, pgx.ErrNoRows) {
			existing, err := scanCall(tx.db.QueryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = $1`, cid))
			if err != nil {
				return err
			}
			call = existing
			return nil
		}
		if err != nil {
			return err
		}
		users := append([]string{creator}, in.Members...)
		roles := make([]string, len(users))
		for i := range roles {
			roles[i] = CallRoleMember
		}
		roles[0] = CallRoleHost
		var missing *string
		if err := tx.db.QueryRow(ctx, `
			SELECT u FROM unnest($1::text[]) AS u WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = u) LIMIT 1`,
			users).Scan(&missing); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if missing != nil {
			return NotFound("user", *missing)
		}
		if _, err := tx.db.Exec(ctx, `
			INSERT INTO call_members (call_id, user_id, role)
			SELECT $1, u, r FROM unnest($2::text[], $3::text[]) AS m (u, r)
			ON CONFLICT DO NOTHING`, cid, users, roles); err != nil {
			return err
		}
		call, created = c, true
		return nil
	})
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return nil, false, Invalid("input.members", "user %q does not exist; create it first with upsertUsers", nf.ID)
		}
		if errors.Is(err, ErrInvalid) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("store: create call: %w", err)
	}
	return call, created, nil
}

// CallsByID returns calls by id, in order, with nil where none exists.
func (s *Store) CallsByID(ctx context.Context, ids []string) ([]*Call, error) {
	rows, err := s.db.Query(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: calls by id: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Call, error) { return scanCall(r) })
	if err != nil {
		return nil, fmt.Errorf("store: calls by id: %w", err)
	}
	return inOrder(ids, found, func(c *Call) string { return c.ID }), nil
}

// CallMembersByCall returns the members of each call (host first, then by
// when they were added), at most MaxCallMembers per call.
func (s *Store) CallMembersByCall(ctx context.Context, callIDs []string) ([][]*CallMember, error) {
	rows, err := s.db.Query(ctx, `
		SELECT call_id, user_id, role, created_at FROM (
			SELECT m.*, row_number() OVER (PARTITION BY call_id ORDER BY role = 'host' DESC, created_at, user_id) AS n
			FROM call_members m WHERE call_id = ANY($1)
		) ranked WHERE n <= $2 ORDER BY call_id, n`, callIDs, MaxCallMembers)
	if err != nil {
		return nil, fmt.Errorf("store: call members: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallMember, error) {
		var m CallMember
		err := r.Scan(&m.CallID, &m.UserID, &m.Role, &m.CreatedAt)
		return &m, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: call members: %w", err)
	}
	return groupBy(callIDs, found, func(m *CallMember) string { return m.CallID }), nil
}

// CallMembership returns the caller's role in a call ("" when the user is
// not a member), or NotFound when there is no such call.
func (s *Store) CallMembership(ctx context.Context, callID, userID string) (string, error) {
	var role *string
	err := s.db.QueryRow(ctx, `
		SELECT m.role FROM calls c LEFT JOIN call_members m ON m.call_id = c.id AND m.user_id = $2
		WHERE c.id = $1`, callID, userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", NotFound("call", callID)
	}
	if err != nil {
		return "", fmt.Errorf("store: call membership: %w", err)
	}
	if role == nil {
		return "", nil
	}
	return *role, nil
}

// CallMemberChange sets a user's role in a call (adding the user).
type CallMemberChange struct {
	UserID string
	Role   string
}

// CheckCallRole checks a member role.
func CheckCallRole(field, role string) error {
	if role != CallRoleHost && role != CallRoleMember && role != CallRoleViewer {
		return Invalid(field, "%q is not a call role: use host, member or viewer", truncate(role, 40))
	}
	return nil
}

// UpdateCallMembers adds members or changes their roles (set) and removes
// members (remove), in one transaction. Removed members' participants
// leave the live session (reason "removed"), which ends when nobody is
// left. Users to set must exist; a call keeps at most MaxCallMembers.
func (s *Store) UpdateCallMembers(ctx context.Context, callID string, set []CallMemberChange, remove []string) (*CallDepartures, error) {
	if len(set)+len(remove) == 0 {
		return nil, Invalid("set", "give members to set or to remove")
	}
	if len(set) > MaxBatch || len(remove) > MaxBatch {
		return nil, Invalid("set", "at most %d members to set and %d to remove per call", MaxBatch, MaxBatch)
	}
	seen := map[string]string{}
	users := make([]string, len(set))
	roles := make([]string, len(set))
	for i, m := range set {
		field := fmt.Sprintf("set[%d]", i)
		if err := CheckUserID(field+".user", m.UserID); err != nil {
			return nil, err
		}
		if err := CheckCallRole(field+".role", m.Role); err != nil {
			return nil, err
		}
		if seen[m.UserID] != "" {
			return nil, Invalid(field+".user", "user %q appears more than once", m.UserID)
		}
		seen[m.UserID] = field
		users[i], roles[i] = m.UserID, m.Role
	}
	for i, u := range remove {
		field := fmt.Sprintf("remove[%d]", i)
		if err := CheckUserID(field, u); err != nil {
			return nil, err
		}
		if seen[u] != "" {
			return nil, Invalid(field, "user %q is both set and removed", u)
		}
		seen[u] = field
	}
	var d *CallDepartures
	err := s.InTx(ctx, func(tx *Store) error {
		d = nil
		var exists bool
		if err := tx.db.QueryRow(ctx, `SELECT true FROM calls WHERE id = $1 FOR UPDATE`, callID).Scan(&exists); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return NotFound("call", callID)
			}
			return err
		}
		var missing *string
		if err := tx.db.QueryRow(ctx, `
			SELECT u FROM unnest($1::text[]) AS u WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = u) LIMIT 1`,
			users).Scan(&missing); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if missing != nil {
			return Invalid(seen[*missing]+".user", "user %q does not exist; create it first with upsertUsers", *missing)
		}
		if _, err := tx.db.Exec(ctx, `
			INSERT INTO call_members (call_id, user_id, role)
			SELECT $1, u, r FROM unnest($2::text[], $3::text[]) AS m (u, r)
			ON CONFLICT (call_id, user_id) DO UPDATE SET role = excluded.role`, callID, users, roles); err != nil {
			return err
		}
		if _, err := tx.db.Exec(ctx, `DELETE FROM call_members WHERE call_id = $1 AND user_id = ANY($2)`, callID, remove); err != nil {
			return err
		}
		var n int
		if err := tx.db.QueryRow(ctx, `SELECT count(*) FROM call_members WHERE call_id = $1`, callID).Scan(&n); err != nil {
			return err
		}
		if n > MaxCallMembers {
			return Invalid("set", "a call has at most %d members; this would make %d", MaxCallMembers, n)
		}
		if _, err := tx.db.Exec(ctx, `UPDATE calls SET updated_at = now() WHERE id = $1`, callID); err != nil {
			return err
		}
		rows, err := tx.db.Query(ctx, `
			SELECT p.id FROM call_participants p JOIN call_sessions cs ON cs.id = p.session_id
			WHERE cs.call_id = $1 AND cs.ended_at IS NULL AND p.left_at IS NULL AND p.user_id = ANY($2)`, callID, remove)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return err
		}
		d, err = tx.RemoveCallParticipants(ctx, ids, CallLeftRemoved)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: update call members: %w", err)
	}
	return d, nil
}

// EndCall ends the call's live session for everyone: every participant
// leaves (reason "ended") and the session ends. It returns nil
// departures when no session was live.
func (s *Store) EndCall(ctx context.Context, callID string) (*CallDepartures, error) {
	var d *CallDepartures
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		d, err = tx.endLiveSession(ctx, callID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: end call: %w", err)
	}
	return d, nil
}

// endLiveSession takes every participant out of the call's live session
// (reason "ended"), which ends it; nil departures when none was live. Run
// it in a transaction.
func (s *Store) endLiveSession(ctx context.Context, callID string) (*CallDepartures, error) {
	// Lock the live session first, so no join slips in between.
	var sid uuid.UUID
	err := s.db.QueryRow(ctx, `SELECT id FROM call_sessions WHERE call_id = $1 AND ended_at IS NULL FOR UPDATE`, callID).Scan(&sid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE session_id = $1 AND left_at IS NULL`, sid)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.RemoveCallParticipants(ctx, ids, CallLeftEnded)
}
