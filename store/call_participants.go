package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CallParticipant is one join of a call session: a user on two devices is
// two participants. Its id is what callEvents, sendSignal and leaveCall use.
type CallParticipant struct {
	ID        uuid.UUID  `json:"id"`
	SessionID uuid.UUID  `json:"session"`
	CallID    string     `json:"call"`
	UserID    string     `json:"user"`
	JoinedAt  time.Time  `json:"joinedAt"`
	LeftAt    *time.Time `json:"leftAt,omitempty"`
	// KnownState is the participant's track state when the read or event
	// that made it carried it (nil: look it up). Not named State, so the
	// GraphQL state field goes through a resolver that looks it up.
	KnownState *CallParticipantState `json:"state,omitempty"`
}

// Why a participant left.
const (
	CallLeftByRequest = "left"
	CallLeftTimeout   = "timeout"
	// CallLeftRemoved: a host removed the participant's user from the call.
	CallLeftRemoved = "removed"
	// CallLeftEnded: a host ended the call for everyone.
	CallLeftEnded = "ended"
)

const participantColumns = `id, session_id, call_id, user_id, joined_at, left_at`

func scanParticipant(row pgx.Row) (*CallParticipant, error) {
	var p CallParticipant
	if err := row.Scan(&p.ID, &p.SessionID, &p.CallID, &p.UserID, &p.JoinedAt, &p.LeftAt); err != nil {
		return nil, err
	}
	return &p, nil
}

// CallParticipantsBySession returns each session's participants in join
// order, in one statement. A session lists at most
// MaxCallParticipantsListed: every live participant first, then those who
// left most recently (a long session of many rejoins keeps its live ones).
func (s *Store) CallParticipantsBySession(ctx context.Context, sessionIDs []uuid.UUID) ([][]*CallParticipant, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+participantColumns+` FROM (
			SELECT p.*, row_number() OVER (PARTITION BY session_id ORDER BY left_at IS NOT NULL, id DESC) AS n
			FROM call_participants p WHERE session_id = ANY($1)
		) ranked WHERE n <= $2 ORDER BY session_id, id`, sessionIDs, MaxCallParticipantsListed)
	if err != nil {
		return nil, fmt.Errorf("store: call participants: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call participants: %w", err)
	}
	return groupBy(sessionIDs, found, func(p *CallParticipant) uuid.UUID { return p.SessionID }), nil
}

// CallDepartures is what removing participants did: who left, and which
// sessions ended because their last participant left.
type CallDepartures struct {
	Left   []*CallParticipant
	Ended  []*CallSession
	Reason string
	// IDs are all the participant ids asked about, left now or before.
	IDs []uuid.UUID
}

// RemoveCallParticipants marks the given participants as left (those still
// in their session) and ends every session they leave empty, in tx. It
// locks the sessions first, in id order, so it serializes with joins (which
// lock the live session) and with other removals without deadlocks. Ids
// that are unknown or already left are skipped, so it is idempotent.
func (s *Store) RemoveCallParticipants(ctx context.Context, ids []uuid.UUID, reason string) (*CallDepartures, error) {
	d := &CallDepartures{Reason: reason, IDs: ids}
	if len(ids) == 0 {
		return d, nil
	}
	rows, err := s.db.Query(ctx, `
		SELECT id FROM call_sessions WHERE ended_at IS NULL AND id IN (
			SELECT session_id FROM call_participants WHERE id = ANY($1) AND left_at IS NULL)
		ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: remove call participants: %w", err)
	}
	sessions, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: remove call participants: %w", err)
	}
	if len(sessions) == 0 {
		return d, nil
	}
	rows, err = s.db.Query(ctx, `
		UPDATE call_participants SET left_at = now(), left_reason = $2
		WHERE id = ANY($1) AND left_at IS NULL
		RETURNING `+participantColumns, ids, reason)
	if err != nil {
		return nil, fmt.Errorf("store: remove call participants: %w", err)
	}
	if d.Left, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) }); err != nil {
		return nil, fmt.Errorf("store: remove call participants: %w", err)
	}
	rows, err = s.db.Query(ctx, `
		UPDATE call_sessions cs SET ended_at = now()
		WHERE cs.id = ANY($1) AND cs.ended_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM call_participants p WHERE p.session_id = cs.id AND p.left_at IS NULL)
		RETURNING `+sessionColumns, sessions)
	if err != nil {
		return nil, fmt.Errorf("store: end call sessions: %w", err)
	}
	if d.Ended, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallSession, error) { return scanSession(r) }); err != nil {
		return nil, fmt.Errorf("store: end call sessions: %w", err)
	}
	return d, nil
}

// LeaveCall removes one participant in its own transaction.
func (s *Store) LeaveCall(ctx context.Context, id uuid.UUID, reason string) (*CallDepartures, error) {
	var d *CallDepartures
	err := s.InTx(ctx, func(tx *Store) error {
		var err error
		d, err = tx.RemoveCallParticipants(ctx, []uuid.UUID{id}, reason)
		return err
	})
	return d, err
}

// EndEmptyCallSessions ends live sessions that have no live participant
// left (a repair pass: joins and removals never leave such a session).
func (s *Store) EndEmptyCallSessions(ctx context.Context, limit int) ([]*CallSession, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE call_sessions cs SET ended_at = now()
		WHERE cs.id IN (
			SELECT s.id FROM call_sessions s
			WHERE s.ended_at IS NULL AND s.started_at < now() - interval '1 minute'
			  AND NOT EXISTS (SELECT 1 FROM call_participants p WHERE p.session_id = s.id AND p.left_at IS NULL)
			ORDER BY s.id LIMIT $1 FOR UPDATE SKIP LOCKED)
		  AND cs.ended_at IS NULL
		RETURNING `+sessionColumns, limit)
	if err != nil {
		return nil, fmt.Errorf("store: end empty sessions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallSession, error) { return scanSession(r) })
}

// CallParticipantsByID returns participants by id, in order, with nil
// where none exists.
func (s *Store) CallParticipantsByID(ctx context.Context, ids []uuid.UUID) ([]*CallParticipant, error) {
	rows, err := s.db.Query(ctx, `SELECT `+participantColumns+` FROM call_participants WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: call participants by id: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call participants by id: %w", err)
	}
	return inOrder(ids, found, func(p *CallParticipant) uuid.UUID { return p.ID }), nil
}

// LeftCallParticipants returns the ids of those of the given participants
// that have left their call.
func (s *Store) LeftCallParticipants(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE id = ANY($1) AND left_at IS NOT NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: left call participants: %w", err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: left call participants: %w", err)
	}
	return left, nil
}

// LiveCallParticipantIDs returns, in id order, up to limit ids of
// participants still in a call that come after the id after: a page of
// them all.
func (s *Store) LiveCallParticipantIDs(ctx context.Context, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE left_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: live call participants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("store: live call participants: %w", err)
	}
	return ids, nil
}
