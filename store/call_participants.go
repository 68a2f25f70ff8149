package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
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

// Liveness and the signaling path's facts live in Redis:
//
//   - calls:live is a sorted set of live participants scored by the time
//     (Unix ms) they time out unless refreshed. The node holding a
//     participant's callEvents subscription pushes the time forward; when
//     the subscription ends (or its node dies), the time stays put and the
//     sweep removes the participant once it has passed. Each node scores
//     with its own CALL_PARTICIPANT_TIMEOUT, so the sweep needs none.
//   - calls:p:<id> holds a participant's immutable facts (user, session,
//     call, join time) while it is in the call, so sendSignal and
//     callEvents authorize without PostgreSQL. Leaving deletes it; a
//     missing key falls back to PostgreSQL, so Redis can be lost.

func (s *Store) callLiveKey() string { return s.Key("calls", "live") }

func (s *Store) callFactsKey(id uuid.UUID) string { return s.Key("calls", "p", id.String()) }

func (s *Store) callFactsKeys(ids []uuid.UUID) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.callFactsKey(id)
	}
	return keys
}

// callFactsTTL bounds how long facts stay in Redis; a call longer than
// that reads them from PostgreSQL once and puts them back.
const callFactsTTL = 12 * time.Hour

func encodeFacts(p *CallParticipant) string {
	var b strings.Builder
	b.Grow(len(p.UserID) + len(p.CallID) + 64)
	b.WriteString(p.UserID)
	b.WriteByte(' ')
	b.WriteString(p.SessionID.String())
	b.WriteByte(' ')
	b.WriteString(p.CallID)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(p.JoinedAt.UnixMicro(), 10))
	return b.String()
}

func decodeFacts(id uuid.UUID, v string) (*CallParticipant, bool) {
	user, rest, ok1 := strings.Cut(v, " ")
	session, rest, ok2 := strings.Cut(rest, " ")
	call, joined, ok3 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	sid, err := uuid.Parse(session)
	if err != nil {
		return nil, false
	}
	us, err := strconv.ParseInt(joined, 10, 64)
	if err != nil {
		return nil, false
	}
	return &CallParticipant{ID: id, SessionID: sid, CallID: call, UserID: user, JoinedAt: time.UnixMicro(us).UTC()}, true
}

// rememberCallParticipant stores a new participant's facts and first
// liveness deadline. A Redis failure only costs speed: facts fall back to
// PostgreSQL and the repair pass restores liveness entries.
func (s *Store) rememberCallParticipant(ctx context.Context, p *CallParticipant, until time.Time) {
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Set(ctx, s.callFactsKey(p.ID), encodeFacts(p), callFactsTTL)
		pl.ZAdd(ctx, s.callLiveKey(), redis.Z{Score: float64(until.UnixMilli()), Member: p.ID.String()})
		return nil
	})
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: remember participant in redis", "participant", p.ID, "err", err)
	}
}

// CallParticipantFacts returns what the signaling path needs to know about
// participants, in order: nil for an unknown id, LeftAt set for one that
// has left. Participants in the call are answered from Redis in one round
// trip; only ids Redis does not know are looked up in PostgreSQL (and put
// back in Redis when still in the call).
func (s *Store) CallParticipantFacts(ctx context.Context, ids []uuid.UUID) ([]*CallParticipant, error) {
	out := make([]*CallParticipant, len(ids))
	vals, err := s.rdb.MGet(ctx, s.callFactsKeys(ids)...).Result()
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: participant facts from redis; reading postgres", "err", err)
		vals = make([]any, len(ids))
	}
	var missing []uuid.UUID
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if p, ok := decodeFacts(ids[i], str); ok {
				out[i] = p
				continue
			}
		}
		missing = append(missing, ids[i])
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+participantColumns+` FROM call_participants WHERE id = ANY($1)`, missing)
	if err != nil {
		return nil, fmt.Errorf("store: call participant facts: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*CallParticipant, error) { return scanParticipant(r) })
	if err != nil {
		return nil, fmt.Errorf("store: call participant facts: %w", err)
	}
	if factsRead != nil {
		factsRead()
	}
	byID := make(map[uuid.UUID]*CallParticipant, len(found))
	var restored []uuid.UUID
	for _, p := range found {
		byID[p.ID] = p
		if p.LeftAt == nil {
			if err := s.rdb.Set(ctx, s.callFactsKey(p.ID), encodeFacts(p), callFactsTTL).Err(); err != nil {
				s.log.Warn("calls: restore participant facts", "err", err)
				continue
			}
			restored = append(restored, p.ID)
		}
	}
	s.dropFactsOfLeft(ctx, restored)
	for i, id := range ids {
		if out[i] == nil {
			out[i] = byID[id]
		}
	}
	return out, nil
}

// factsRead, when set (by tests), runs between CallParticipantFacts'
// PostgreSQL read and its writing the facts back to Redis.
var factsRead func()

// dropFactsOfLeft deletes the facts just put back in Redis of participants
// that have left meanwhile. A leave deletes its participant's facts after
// it commits, which may be before the write that put them back from an
// older read; without this check such a participant would look live to
// the signaling path until the facts expired. Checking after the write
// closes the race: a leave that committed before the check is seen by
// it, and one that commits after it deletes the facts itself.
func (s *Store) dropFactsOfLeft(ctx context.Context, ids []uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE id = ANY($1) AND left_at IS NOT NULL`, ids)
	var left []uuid.UUID
	if err == nil {
		left, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	}
	if err == nil && len(left) > 0 {
		err = s.rdb.Del(ctx, s.callFactsKeys(left)...).Err()
	}
	if err != nil {
		// Drop them all: a missing key only costs a read of PostgreSQL.
		_ = s.rdb.Del(ctx, s.callFactsKeys(ids)...).Err()
		s.log.Warn("calls: check restored participant facts", "err", err)
	}
}

// KeepCallParticipantsAlive pushes the liveness deadline of participants
// (whose callEvents subscriptions this node holds) to until, in one round
// trip. Only participants still in the sorted set are touched (XX), so a
// participant the sweep has removed is not brought back.
func (s *Store) KeepCallParticipantsAlive(ctx context.Context, ids []uuid.UUID, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	score := float64(until.UnixMilli())
	members := make([]redis.Z, len(ids))
	for i, id := range ids {
		members[i] = redis.Z{Score: score, Member: id.String()}
	}
	if err := s.rdb.ZAddXX(ctx, s.callLiveKey(), members...).Err(); err != nil {
		return fmt.Errorf("store: keep call participants alive: %w", err)
	}
	return nil
}

// ExpiredCallParticipants returns up to limit participants whose liveness
// deadline has passed.
func (s *Store) ExpiredCallParticipants(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.callLiveKey(), ByScore: true, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: expired call participants: %w", err)
	}
	out := make([]uuid.UUID, 0, len(ids))
	var stray []any
	for _, v := range ids {
		id, err := uuid.Parse(v)
		if err != nil {
			stray = append(stray, v)
			continue
		}
		out = append(out, id)
	}
	if len(stray) > 0 {
		_ = s.rdb.ZRem(ctx, s.callLiveKey(), stray...).Err()
	}
	return out, nil
}

// ForgetCallParticipants drops participants that have left from Redis:
// their liveness entries and their facts.
func (s *Store) ForgetCallParticipants(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id.String()
	}
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZRem(ctx, s.callLiveKey(), members...)
		pl.Del(ctx, s.callFactsKeys(ids)...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: forget call participants: %w", err)
	}
	return nil
}

// RestoreCallLiveness gives every participant still in a call in
// PostgreSQL but missing from Redis's liveness set (Redis lost it) a
// deadline of until, so it times out unless a subscription keeps it
// alive. It pages through live participants in batches; it returns how
// many entries it restored.
func (s *Store) RestoreCallLiveness(ctx context.Context, until time.Time) (int, error) {
	restored := 0
	after := uuid.Nil
	score := float64(until.UnixMilli())
	for {
		rows, err := s.db.Query(ctx, `SELECT id FROM call_participants WHERE left_at IS NULL AND id > $1 ORDER BY id LIMIT 1000`, after)
		if err != nil {
			return restored, fmt.Errorf("store: restore call liveness: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return restored, fmt.Errorf("store: restore call liveness: %w", err)
		}
		if len(ids) == 0 {
			return restored, nil
		}
		members := make([]redis.Z, len(ids))
		for i, id := range ids {
			members[i] = redis.Z{Score: score, Member: id.String()}
		}
		n, err := s.rdb.ZAddNX(ctx, s.callLiveKey(), members...).Result()
		if err != nil {
			return restored, fmt.Errorf("store: restore call liveness: %w", err)
		}
		restored += int(n)
		after = ids[len(ids)-1]
	}
}
