package ephemeral

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/store"
)

// Call participants' liveness and the signaling path's facts:
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

func (s *State) callLiveKey() string { return s.Key("calls", "live") }

func (s *State) callFactsKey(id uuid.UUID) string { return s.Key("calls", "p", id.String()) }

func (s *State) callFactsKeys(ids []uuid.UUID) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.callFactsKey(id)
	}
	return keys
}

// callFactsTTL bounds how long facts stay in Redis; a call longer than
// that reads them from PostgreSQL once and puts them back.
const callFactsTTL = 12 * time.Hour

func encodeFacts(p *store.CallParticipant) string {
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

func decodeFacts(id uuid.UUID, v string) (*store.CallParticipant, bool) {
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
	return &store.CallParticipant{ID: id, SessionID: sid, CallID: call, UserID: user, JoinedAt: time.UnixMicro(us).UTC()}, true
}

// RememberCallParticipant stores a new participant's facts and its first
// liveness deadline, in one round trip.
func (s *State) RememberCallParticipant(ctx context.Context, p *store.CallParticipant, until time.Time) error {
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Set(ctx, s.callFactsKey(p.ID), encodeFacts(p), callFactsTTL)
		pl.ZAdd(ctx, s.callLiveKey(), redis.Z{Score: float64(until.UnixMilli()), Member: p.ID.String()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("ephemeral: remember call participant: %w", err)
	}
	return nil
}

// CallFacts returns the facts Redis holds of participants, in order, in
// one round trip (MGET, or a GET per participant in a cluster, where each
// participant's key is in its own slot): nil where it holds none.
func (s *State) CallFacts(ctx context.Context, ids []uuid.UUID) ([]*store.CallParticipant, error) {
	vals, err := s.mget(ctx, s.callFactsKeys(ids))
	if err != nil {
		return nil, fmt.Errorf("ephemeral: call participant facts: %w", err)
	}
	out := make([]*store.CallParticipant, len(ids))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if p, ok := decodeFacts(ids[i], str); ok {
				out[i] = p
			}
		}
	}
	return out, nil
}

// SetCallFacts puts back the facts of a participant still in its call.
func (s *State) SetCallFacts(ctx context.Context, p *store.CallParticipant) error {
	if err := s.rdb.Set(ctx, s.callFactsKey(p.ID), encodeFacts(p), callFactsTTL).Err(); err != nil {
		return fmt.Errorf("ephemeral: set call participant facts: %w", err)
	}
	return nil
}

// DropCallFacts deletes participants' facts.
func (s *State) DropCallFacts(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.del(ctx, p, s.callFactsKeys(ids))
		return nil
	})
	if err != nil {
		return fmt.Errorf("ephemeral: drop call participant facts: %w", err)
	}
	return nil
}

// KeepCallParticipantsAlive pushes the liveness deadline of participants
// (whose callEvents subscriptions this node holds) to until, in one round
// trip. Only participants still in the sorted set are touched (XX), so a
// participant the sweep has removed is not brought back.
func (s *State) KeepCallParticipantsAlive(ctx context.Context, ids []uuid.UUID, until time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.rdb.ZAddXX(ctx, s.callLiveKey(), liveMembers(ids, until)...).Err(); err != nil {
		return fmt.Errorf("ephemeral: keep call participants alive: %w", err)
	}
	return nil
}

// RestoreCallLiveness gives participants missing from the liveness set
// (Redis lost them) a deadline of until, leaving those it has alone (NX).
// It returns how many entries it added.
func (s *State) RestoreCallLiveness(ctx context.Context, ids []uuid.UUID, until time.Time) (int, error) {
	n, err := s.rdb.ZAddNX(ctx, s.callLiveKey(), liveMembers(ids, until)...).Result()
	if err != nil {
		return 0, fmt.Errorf("ephemeral: restore call liveness: %w", err)
	}
	return int(n), nil
}

func liveMembers(ids []uuid.UUID, until time.Time) []redis.Z {
	score := float64(until.UnixMilli())
	members := make([]redis.Z, len(ids))
	for i, id := range ids {
		members[i] = redis.Z{Score: score, Member: id.String()}
	}
	return members
}

// ExpiredCallParticipants returns up to limit participants whose liveness
// deadline has passed.
func (s *State) ExpiredCallParticipants(ctx context.Context, now time.Time, limit int) ([]uuid.UUID, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.callLiveKey(), ByScore: true, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("ephemeral: expired call participants: %w", err)
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

// ForgetCallParticipants drops participants that have left: their
// liveness entries and their facts.
func (s *State) ForgetCallParticipants(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id.String()
	}
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZRem(ctx, s.callLiveKey(), members...)
		s.del(ctx, pl, s.callFactsKeys(ids))
		return nil
	})
	if err != nil {
		return fmt.Errorf("ephemeral: forget call participants: %w", err)
	}
	return nil
}
