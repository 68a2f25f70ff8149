package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A ring is one user's incoming call: a member of a call rung by another.
// Its row is the state machine of the ring, and every decision (accept,
// reject, miss, cancel) is one conditional UPDATE out of RINGING, so that
// exactly one of racing decisions wins, on whichever node each runs.

// CallRingState is where a ring stands.
type CallRingState string

// Ring states: RINGING until the rung user accepts or rejects it, the
// timeout passes (MISSED) or its caller cancels it.
const (
	RingRinging   CallRingState = "RINGING"
	RingAccepted  CallRingState = "ACCEPTED"
	RingRejected  CallRingState = "REJECTED"
	RingMissed    CallRingState = "MISSED"
	RingCancelled CallRingState = "CANCELLED"
)

// MarshalGQL writes the state as its GraphQL enum value.
func (s CallRingState) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *CallRingState) UnmarshalGQL(v any) error {
	return UnmarshalEnum(s, v, "state", "ring state", RingRinging, RingAccepted, RingRejected, RingMissed, RingCancelled)
}

// CallRejectReason says why a ring was rejected.
type CallRejectReason string

// Reject reasons: the user declined, or was in another live call (BUSY,
// decided by Brook when the ring starts).
const (
	RejectDeclined CallRejectReason = "DECLINED"
	RejectBusy     CallRejectReason = "BUSY"
)

// MarshalGQL writes the reason as its GraphQL enum value.
func (r CallRejectReason) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(r))) }

// UnmarshalGQL reads a GraphQL enum value.
func (r *CallRejectReason) UnmarshalGQL(v any) error {
	return UnmarshalEnum(r, v, "reason", "reject reason", RejectDeclined, RejectBusy)
}

// CallRing is one ring of one user.
type CallRing struct {
	ID     uuid.UUID `json:"id"`
	CallID string    `json:"call"`
	UserID string    `json:"user"`
	// CallerID is who rang.
	CallerID string            `json:"caller"`
	State    CallRingState     `json:"state"`
	Reason   *CallRejectReason `json:"reason,omitempty"`
	// CreatedAt is when it started ringing; ExpiresAt when it is missed
	// if still ringing; DecidedAt when it left RINGING.
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt time.Time  `json:"expiresAt"`
	DecidedAt *time.Time `json:"decidedAt,omitempty"`
}

// CallRingTimeoutKind is the outbox job that marks a ring MISSED when
// nobody decided it before it expired. It is written with the ring, to run
// at its expiry on whichever node's worker claims it first.
const CallRingTimeoutKind = "calls.ring_timeout"

// CallRingTimeoutJob is the payload of a CallRingTimeoutKind job.
type CallRingTimeoutJob struct {
	Call  string      `json:"call"`
	Rings []uuid.UUID `json:"rings"`
}

// Errors of ringing, which the calls product turns into client errors.
var (
	// ErrNotRinging means no ring of the user's is ringing for the call.
	ErrNotRinging = errors.New("store: no ring is ringing")
	// ErrViewerRings means a viewer of the call tried to ring: viewers
	// watch, and ring nobody.
	ErrViewerRings = errors.New("store: viewers do not ring")
)

const ringColumns = `id, call_id, user_id, caller_id, state, reason, created_at, expires_at, decided_at`

func scanRing(row pgx.Row) (*CallRing, error) {
	var r CallRing
	if err := row.Scan(&r.ID, &r.CallID, &r.UserID, &r.CallerID, &r.State, &r.Reason, &r.CreatedAt, &r.ExpiresAt, &r.DecidedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

func collectRings(rows pgx.Rows, err error) ([]*CallRing, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallRing, error) { return scanRing(r) })
}

// RingParams say who rings whom in which call.
type RingParams struct {
	CallID   string
	CallerID string
	// Admin may ring in a call without being a member.
	Admin bool
	// Users are the members to ring; nil rings every member but the caller.
	Users []string
	// ExpiresAt is when rings still ringing are missed.
	ExpiresAt time.Time
	// RejectBusy rejects at once (BUSY) the ring of a user who is in
	// another call's live session.
	RejectBusy bool
}

// RingOutcome is what a ring operation changed, for what follows the
// commit: the events, and a one-to-one call's end.
type RingOutcome struct {
	Call *Call
	// Rings are the rings it started or decided.
	Rings []*CallRing
	// Ended is set when a one-to-one call ended because its callee
	// rejected or missed the ring; Members are then the call's members
	// and Departures the participants the end took out of its session.
	Ended      bool
	Members    []string
	Departures *CallDepartures
}

// StartCallRings rings members of a call in one transaction: users in
// the call's live session and users it already rings are skipped; a user
// in another live call is rejected at once (BUSY) when p.RejectBusy. The
// rings still ringing get one timeout job at p.ExpiresAt. A caller who is
// no member (nor admin) gets ErrNotCallMember; users who are not members,
// and the caller, are refused as invalid input.
func (s *Store) StartCallRings(ctx context.Context, p RingParams) (*RingOutcome, error) {
	for i, u := range p.Users {
		field := fmt.Sprintf("members[%d]", i)
		if err := CheckUserID(field, u); err != nil {
			return nil, err
		}
		if u == p.CallerID {
			return nil, Invalid(field, "you cannot ring yourself")
		}
	}
	var out *RingOutcome
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		out, err = tx.startRings(ctx, p)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotCallMember) || errors.Is(err, ErrViewerRings) {
			return nil, err
		}
		return nil, fmt.Errorf("store: ring: %w", err)
	}
	return out, nil
}

func (s *Store) startRings(ctx context.Context, p RingParams) (*RingOutcome, error) {
	// The call's row in share mode, as joins take it: a change of members
	// waits for the ring, or the ring sees the change.
	var role *string
	call, err := scanCallWithRole(s.db.QueryRow(ctx, `
		SELECT `+prefixed("c.", callColumns)+`, m.role FROM calls c
		LEFT JOIN call_members m ON m.call_id = c.id AND m.user_id = $2
		WHERE c.id = $1 FOR SHARE OF c`, p.CallID, p.CallerID), &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("call", p.CallID)
	}
	if err != nil {
		return nil, err
	}
	if role == nil && !p.Admin {
		return nil, ErrNotCallMember
	}
	if role != nil && *role == CallRoleViewer && !p.Admin {
		return nil, ErrViewerRings
	}
	out := &RingOutcome{Call: call}
	users := p.Users
	if users == nil {
		// Viewers are not rung: they watch when they choose to.
		rows, err := s.db.Query(ctx, `SELECT user_id FROM call_members WHERE call_id = $1 AND user_id <> $2 AND role <> 'viewer'
			ORDER BY created_at, user_id`, p.CallID, p.CallerID)
		if users, err = collectStrings(rows, err); err != nil {
			return nil, err
		}
	} else {
		var missing, missingRole *string
		if err := s.db.QueryRow(ctx, `
			SELECT u, m.role FROM unnest($2::text[]) WITH ORDINALITY AS x (u, i)
			LEFT JOIN call_members m ON m.call_id = $1 AND m.user_id = u
			WHERE m.user_id IS NULL OR m.role = 'viewer'
			ORDER BY i LIMIT 1`, p.CallID, users).Scan(&missing, &missingRole); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		if missing != nil {
			for i, u := range users {
				if u != *missing {
					continue
				}
				if missingRole != nil {
					return nil, Invalid(fmt.Sprintf("members[%d]", i), "user %q is a viewer of call %q, and viewers are not rung: make them a member to ring them", u, p.CallID)
				}
				return nil, Invalid(fmt.Sprintf("members[%d]", i), "user %q is not a member of call %q: add them with updateCallMembers first", u, p.CallID)
			}
		}
	}
	if len(users) == 0 {
		return out, nil
	}
	// Who is not to be rung: in this call's live session already, or
	// rung by it now. Who is busy: in another call's live session.
	rows, err := s.db.Query(ctx, `
		SELECT u,
			EXISTS (SELECT 1 FROM call_participants cp JOIN call_sessions cs ON cs.id = cp.session_id
				WHERE cp.user_id = u AND cp.left_at IS NULL AND cs.ended_at IS NULL AND cp.call_id <> $1) AS busy
		FROM unnest($2::text[]) AS u
		WHERE NOT EXISTS (SELECT 1 FROM call_participants cp JOIN call_sessions cs ON cs.id = cp.session_id
				WHERE cp.user_id = u AND cp.call_id = $1 AND cp.left_at IS NULL AND cs.ended_at IS NULL)
		  AND NOT EXISTS (SELECT 1 FROM call_rings r WHERE r.call_id = $1 AND r.user_id = u AND r.state = 'RINGING')`,
		p.CallID, users)
	if err != nil {
		return nil, err
	}
	type target struct {
		user string
		busy bool
	}
	targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var t target
		err := r.Scan(&t.user, &t.busy)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	var ringing []uuid.UUID
	rejected := false
	for _, t := range targets {
		state, reason := RingRinging, (*CallRejectReason)(nil)
		if t.busy && p.RejectBusy {
			busy := RejectBusy
			state, reason = RingRejected, &busy
		}
		// ON CONFLICT: a concurrent ring of the same user for this call
		// won; this one is skipped.
		r, err := scanRing(s.db.QueryRow(ctx, `
			INSERT INTO call_rings (id, call_id, user_id, caller_id, state, reason, expires_at, decided_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $5 <> 'RINGING' THEN now() END)
			ON CONFLICT (call_id, user_id) WHERE state = 'RINGING' DO NOTHING
			RETURNING `+ringColumns, NewID(), p.CallID, t.user, p.CallerID, state, reason, p.ExpiresAt))
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Rings = append(out.Rings, r)
		if r.State == RingRinging {
			ringing = append(ringing, r.ID)
		} else {
			rejected = true
		}
	}
	if len(ringing) > 0 {
		if _, err := s.EnqueueJobAt(ctx, CallRingTimeoutKind, CallRingTimeoutJob{Call: p.CallID, Rings: ringing}, p.ExpiresAt); err != nil {
			return nil, err
		}
	}
	if rejected {
		if err := s.endOneToOne(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DecideCallRing accepts or rejects the user's ring for a call, if it is
// still ringing (ErrNotRinging otherwise). A rejection of a one-to-one
// call ends it.
func (s *Store) DecideCallRing(ctx context.Context, callID, userID string, state CallRingState, reason *CallRejectReason) (*RingOutcome, error) {
	var out *RingOutcome
	err := s.InTx(ctx, func(tx *Store) error {
		out = nil
		rows, err := tx.db.Query(ctx, `
			UPDATE call_rings SET state = $3, reason = $4, decided_at = now()
			WHERE call_id = $1 AND user_id = $2 AND state = 'RINGING'
			RETURNING `+ringColumns, callID, userID, state, reason)
		rings, err := collectRings(rows, err)
		if err != nil {
			return err
		}
		if len(rings) == 0 {
			return ErrNotRinging
		}
		if out, err = tx.ringOutcome(ctx, callID, rings); err != nil {
			return err
		}
		if state == RingRejected {
			return tx.endOneToOne(ctx, out)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotRinging) {
			return nil, err
		}
		return nil, fmt.Errorf("store: decide ring: %w", err)
	}
	return out, nil
}

// CancelCallRings cancels the rings of a call that callerID started and
// that still ring, and returns them (none: no Rings).
func (s *Store) CancelCallRings(ctx context.Context, callID, callerID string) (*RingOutcome, error) {
	var out *RingOutcome
	err := s.InTx(ctx, func(tx *Store) error {
		rows, err := tx.db.Query(ctx, `
			UPDATE call_rings SET state = 'CANCELLED', decided_at = now()
			WHERE call_id = $1 AND caller_id = $2 AND state = 'RINGING'
			RETURNING `+ringColumns, callID, callerID)
		rings, err := collectRings(rows, err)
		if err != nil {
			return err
		}
		out, err = tx.ringOutcome(ctx, callID, rings)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: cancel rings: %w", err)
	}
	return out, nil
}

// MissCallRings marks the given rings of a call MISSED, those still
// ringing; a one-to-one call whose ring is missed ends. Run it in the
// timeout job's transaction: the job's deletion commits with the change,
// so each ring is missed once.
func (s *Store) MissCallRings(ctx context.Context, callID string, ids []uuid.UUID) (*RingOutcome, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE call_rings SET state = 'MISSED', decided_at = now()
		WHERE id = ANY($1) AND call_id = $2 AND state = 'RINGING'
		RETURNING `+ringColumns, ids, callID)
	rings, err := collectRings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: miss rings: %w", err)
	}
	out, err := s.ringOutcome(ctx, callID, rings)
	if err == nil && len(rings) > 0 {
		err = s.endOneToOne(ctx, out)
	}
	if err != nil {
		return nil, fmt.Errorf("store: miss rings: %w", err)
	}
	return out, nil
}

// ringOutcome reads the call for an outcome of rings (none: no read).
func (s *Store) ringOutcome(ctx context.Context, callID string, rings []*CallRing) (*RingOutcome, error) {
	out := &RingOutcome{Rings: rings}
	if len(rings) == 0 {
		return out, nil
	}
	call, err := scanCall(s.db.QueryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = $1`, callID))
	if err != nil {
		return nil, err
	}
	out.Call = call
	return out, nil
}

// endOneToOne ends a one-to-one call (exactly two members) whose callee
// rejected or missed its ring: its live session ends for everyone in it,
// as endCall would. A call of more members goes on.
func (s *Store) endOneToOne(ctx context.Context, out *RingOutcome) error {
	rows, err := s.db.Query(ctx, `SELECT user_id FROM call_members WHERE call_id = $1 ORDER BY role = 'host' DESC, created_at, user_id LIMIT 3`, out.Call.ID)
	members, err := collectStrings(rows, err)
	if err != nil || len(members) != 2 {
		return err
	}
	// The other member's rings of this call (the caller's, rung back)
	// stop too: the call is over.
	if _, err := s.db.Exec(ctx, `
		UPDATE call_rings SET state = 'CANCELLED', decided_at = now() WHERE call_id = $1 AND state = 'RINGING'`, out.Call.ID); err != nil {
		return err
	}
	d, err := s.endLiveSession(ctx, out.Call.ID)
	if err != nil {
		return err
	}
	out.Ended, out.Members, out.Departures = true, members, d
	return nil
}

// RingingCallRings returns the rings ringing for a user now, oldest first.
func (s *Store) RingingCallRings(ctx context.Context, userID string) ([]*CallRing, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+ringColumns+` FROM call_rings
		WHERE user_id = $1 AND state = 'RINGING' AND expires_at > now() ORDER BY id LIMIT $2`, userID, MaxBatch)
	rings, err := collectRings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: ringing rings: %w", err)
	}
	return rings, nil
}

// CallRingsByCall returns each call's newest rings (at most first), newest
// first, in one statement.
func (s *Store) CallRingsByCall(ctx context.Context, callIDs []string, first int) ([][]*CallRing, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+ringColumns+` FROM (
			SELECT r.*, row_number() OVER (PARTITION BY call_id ORDER BY id DESC) AS n
			FROM call_rings r WHERE call_id = ANY($1)
		) ranked WHERE n <= $2 ORDER BY call_id, n`, callIDs, first)
	found, err := collectRings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: rings by call: %w", err)
	}
	return groupBy(callIDs, found, func(r *CallRing) string { return r.CallID }), nil
}

// CallRingCount counts a call's rings that still ring, and those of them
// callerID started.
func (s *Store) CallRingCount(ctx context.Context, callID, callerID string) (ringing, mine int, err error) {
	err = s.db.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE caller_id = $2) FROM call_rings WHERE call_id = $1 AND state = 'RINGING'`,
		callID, callerID).Scan(&ringing, &mine)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count rings: %w", err)
	}
	return ringing, mine, nil
}
