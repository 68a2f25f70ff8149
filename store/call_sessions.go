package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/sfu"
)

// CallSession is one run of a call, from its first join to its last leave.
// A call has at most one live session (EndedAt nil) at a time; every
// participant of a session uses the session's SFU node.
type CallSession struct {
	ID        uuid.UUID
	CallID    string
	SFU       *SFUNode
	StartedAt time.Time
	EndedAt   *time.Time
}

// CallJoin is the result of joining a call.
type CallJoin struct {
	Call        *Call
	Session     *CallSession
	Participant *CallParticipant
	// Others are the session's other live participants, in join order.
	Others []*CallParticipant
	// Started is true when this join started the session.
	Started bool
	// Role is the joiner's role in the call: host, member or viewer, "" for an
	// admin who is no member.
	Role string
}

// ErrNotCallMember means the user is not a member of the call.
var ErrNotCallMember = errors.New("store: not a member of the call")

// ErrNoSFU means every configured SFU node is drained.
var ErrNoSFU = errors.New("store: no SFU node available")

// MaxCallParticipantsListed caps the participants listed per session.
const MaxCallParticipantsListed = 1000

const sessionColumns = `id, call_id, sfu_id, sfu_url, sfu_region, started_at, ended_at`

func scanSession(row pgx.Row) (*CallSession, error) {
	var cs CallSession
	cs.SFU = new(SFUNode)
	if err := row.Scan(&cs.ID, &cs.CallID, &cs.SFU.ID, &cs.SFU.URL, &cs.SFU.Region, &cs.StartedAt, &cs.EndedAt); err != nil {
		return nil, err
	}
	return &cs, nil
}

// JoinCallParams says who joins which call.
type JoinCallParams struct {
	CallID string
	UserID string
	// Admin may join a call without being a member.
	Admin bool
	// Nodes are the configured SFU nodes; a new session gets one of the
	// non-drained ones by rendezvous hashing of the call id.
	Nodes []sfu.Node
	// ParticipantID is the new participant's id (made by the caller, so a
	// retried transaction keeps it).
	ParticipantID uuid.UUID
}

// JoinCall adds a participant to the call's live session, starting one if
// none is live. Concurrent joins on any number of nodes start exactly one
// session: the partial unique index on live sessions makes the second
// INSERT a no-op, and the loser joins the winner's session. The live
// session's row is locked for the rest of the transaction, so a concurrent
// last leave cannot end it under a join. Run it on a Store bound to a
// transaction (InTx), which holds those locks until it commits.
func (s *Store) JoinCall(ctx context.Context, p JoinCallParams) (*CallJoin, error) {
	out := &CallJoin{}
	if err := s.joinCall(ctx, p, out); err != nil {
		if errors.Is(err, ErrNotCallMember) || errors.Is(err, ErrNoSFU) || errors.Is(err, ErrNotFound) ||
			errors.Is(err, ErrCallFull) || errors.Is(err, ErrBackstage) {
			return nil, err
		}
		return nil, fmt.Errorf("store: join call: %w", err)
	}
	return out, nil
}

func (s *Store) joinCall(ctx context.Context, p JoinCallParams, out *CallJoin) error {
	// Shares the call's row lock with other joins, so that a change of
	// members (which takes it FOR UPDATE) waits for this join and then
	// sees its participant, or this join sees the change (a statement
	// of its own, read after the lock, with a fresh snapshot).
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT true FROM calls WHERE id = $1 FOR SHARE`, p.CallID).Scan(&exists); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return NotFound("call", p.CallID)
		}
		return err
	}
	var role *string
	call, err := scanCallWithRole(s.db.QueryRow(ctx, `
		SELECT `+prefixed("c.", callColumns)+`, m.role FROM calls c
		LEFT JOIN call_members m ON m.call_id = c.id AND m.user_id = $2
		WHERE c.id = $1`, p.CallID, p.UserID), &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return NotFound("call", p.CallID)
	}
	if err != nil {
		return err
	}
	if role == nil && !p.Admin {
		return ErrNotCallMember
	}
	if call.Backstage && !p.Admin && *role != CallRoleHost {
		return ErrBackstage
	}
	out.Call = call
	if role != nil {
		out.Role = *role
	}
	for attempt := 0; out.Session == nil; attempt++ {
		if attempt == 3 {
			return errors.New("live session vanished three times")
		}
		cs, err := scanSession(s.db.QueryRow(ctx, `
			SELECT `+sessionColumns+` FROM call_sessions
			WHERE call_id = $1 AND ended_at IS NULL FOR UPDATE`, p.CallID))
		if err == nil {
			out.Session = cs
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		drained, err := s.DrainedSFUs(ctx)
		if err != nil {
			return err
		}
		node, ok := sfu.Pick(p.Nodes, p.CallID, func(id string) bool { return drained[id] })
		if !ok {
			return ErrNoSFU
		}
		api := sfuNode(node)
		cs, err = scanSession(s.db.QueryRow(ctx, `
			INSERT INTO call_sessions (id, call_id, sfu_id, sfu_url, sfu_region) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (call_id) WHERE ended_at IS NULL DO NOTHING
			RETURNING `+sessionColumns, NewID(), p.CallID, api.ID, api.URL, api.Region))
		if errors.Is(err, pgx.ErrNoRows) {
			continue // another join started it first: lock and join that one
		}
		if err != nil {
			return err
		}
		out.Session, out.Started = cs, true
		if err := s.scheduleMaxDuration(ctx, call, cs); err != nil {
			return err
		}
	}
	if err := s.checkJoinLimits(ctx, call, out.Session); err != nil {
		return err
	}
	part, err := scanParticipant(s.db.QueryRow(ctx, `
		INSERT INTO call_participants (id, session_id, call_id, user_id) VALUES ($1, $2, $3, $4)
		RETURNING `+participantColumns, p.ParticipantID, out.Session.ID, p.CallID, p.UserID))
	if err != nil {
		return err
	}
	out.Participant = part
	rows, err := s.db.Query(ctx, `
		SELECT `+participantColumns+` FROM call_participants
		WHERE session_id = $1 AND left_at IS NULL AND id <> $2 ORDER BY id LIMIT $3`,
		out.Session.ID, p.ParticipantID, MaxCallParticipantsListed)
	if err != nil {
		return err
	}
	if out.Others, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) }); err != nil {
		return err
	}
	return nil
}

func scanCallWithRole(row pgx.Row, role **string) (*Call, error) {
	var c Call
	if err := row.Scan(&c.ID, &c.Type, &c.CreatedByID, &c.Data, &c.CreatedAt, &c.UpdatedAt, &c.StartsAt, &c.Backstage, role); err != nil {
		return nil, err
	}
	return &c, nil
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	out := make([]byte, 0, len(columns)*2)
	out = append(out, alias...)
	for i := 0; i < len(columns); i++ {
		out = append(out, columns[i])
		if columns[i] == ' ' && i > 0 && columns[i-1] == ',' {
			out = append(out, alias...)
		}
	}
	return string(out)
}

// LiveCallSessions returns each call's live session, or nil.
func (s *Store) LiveCallSessions(ctx context.Context, callIDs []string) ([]*CallSession, error) {
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM call_sessions WHERE call_id = ANY($1) AND ended_at IS NULL`, callIDs)
	if err != nil {
		return nil, fmt.Errorf("store: live call sessions: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallSession, error) { return scanSession(r) })
	if err != nil {
		return nil, fmt.Errorf("store: live call sessions: %w", err)
	}
	byCall := make(map[string]*CallSession, len(found))
	for _, cs := range found {
		byCall[cs.CallID] = cs
	}
	out := make([]*CallSession, len(callIDs))
	for i, id := range callIDs {
		out[i] = byCall[id]
	}
	return out, nil
}

// CallSessionsByCall returns each call's newest sessions (at most first),
// newest first, in one statement for all calls.
func (s *Store) CallSessionsByCall(ctx context.Context, callIDs []string, first int) ([][]*CallSession, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+sessionColumns+` FROM (
			SELECT cs.*, row_number() OVER (PARTITION BY call_id ORDER BY id DESC) AS n
			FROM call_sessions cs WHERE call_id = ANY($1)
		) ranked WHERE n <= $2 ORDER BY call_id, n`, callIDs, first)
	if err != nil {
		return nil, fmt.Errorf("store: call sessions by call: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallSession, error) { return scanSession(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call sessions by call: %w", err)
	}
	return groupBy(callIDs, found, func(cs *CallSession) string { return cs.CallID }), nil
}
