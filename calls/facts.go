package calls

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// A participant's facts (user, session, call, join time) never change, and
// its departure is final. The signaling path reads them at three levels:
// this node's cache, then Redis (calls:p:<id>, see package ephemeral),
// then PostgreSQL, which holds the truth.

// watchDepartures listens on LeftTopic and keeps the facts cache honest,
// until ctx ends or the bus closes.
func (s *Service) watchDepartures(ctx context.Context, ready chan struct{}) {
	signalled := false
	defer func() {
		if !signalled {
			close(ready)
		}
	}()
	for {
		sub, err := s.bus.Subscribe(ctx, LeftTopic)
		if err != nil {
			if errors.Is(err, bus.ErrClosed) || ctx.Err() != nil {
				return
			}
			s.log.Warn("calls: subscribe to departures; facts cache off", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		s.cacheLive.Store(true)
		if !signalled {
			close(ready)
			signalled = true
		}
		for ev := range sub.C {
			if ev.Gap {
				s.purgeFacts()
				continue
			}
			for _, id := range DecodeLeft(ev.Data) {
				s.markLeft(id)
			}
		}
		s.cacheLive.Store(false)
		s.purgeFacts()
		if errors.Is(sub.Err(), bus.ErrClosed) || ctx.Err() != nil {
			return
		}
	}
}

func (s *Service) purgeFacts() {
	s.generation.Add(1)
	s.facts.Purge()
}

// markLeft records in the cache that a participant has left.
func (s *Service) markLeft(id uuid.UUID) {
	s.generation.Add(1)
	if p, ok := s.facts.Peek(id); ok && p.LeftAt == nil {
		left := *p
		now := time.Now().UTC()
		left.LeftAt = &now
		s.facts.Add(id, &left)
	}
}

// remember caches the facts of a participant that has just joined here,
// unless a departure arrived since gen (then it might be this one's).
func (s *Service) remember(p *store.CallParticipant, gen uint64) {
	if s.cacheLive.Load() && s.generation.Load() == gen {
		s.facts.Add(p.ID, p)
	}
}

// participants returns the facts of a and b (nil when unknown): from the
// cache, else from Redis in one round trip, else from PostgreSQL.
func (s *Service) participants(ctx context.Context, a, b uuid.UUID) (*store.CallParticipant, *store.CallParticipant, error) {
	pa, okA := s.facts.Get(a)
	pb, okB := s.facts.Get(b)
	if okA && okB {
		return pa, pb, nil
	}
	gen := s.generation.Load()
	var ids []uuid.UUID
	switch {
	case a == b:
		ids = []uuid.UUID{a}
	case !okA && !okB:
		ids = []uuid.UUID{a, b}
	case !okA:
		ids = []uuid.UUID{a}
	default:
		ids = []uuid.UUID{b}
	}
	found, err := s.participantFacts(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	cache := s.cacheLive.Load() && s.generation.Load() == gen
	for i, id := range ids {
		p := found[i]
		if p != nil && (p.LeftAt != nil || cache) {
			s.facts.Add(id, p)
		}
		if id == a {
			pa = p
		}
		if id == b {
			pb = p
		}
	}
	return pa, pb, nil
}

// participant returns one participant's facts, nil when unknown.
func (s *Service) participant(ctx context.Context, id uuid.UUID) (*store.CallParticipant, error) {
	p, _, err := s.participants(ctx, id, id)
	return p, err
}

// ownParticipant checks that the participant id names one of the caller's
// participants that is still in its call, and returns its facts.
func (s *Service) ownParticipant(ctx context.Context, caller auth.Identity, field, raw string) (*store.CallParticipant, error) {
	id, err := store.ParseID(field, raw)
	if err != nil {
		return nil, err
	}
	p, err := s.participant(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := checkOwnParticipant(caller, raw, p); err != nil {
		return nil, err
	}
	return p, nil
}

func checkOwnParticipant(caller auth.Identity, raw string, p *store.CallParticipant) error {
	if p == nil {
		return store.NotFound("participant", raw)
	}
	if p.UserID != caller.UserID {
		return auth.Forbidden("participant %q belongs to another user; use the participant id joinCall returned to you", raw)
	}
	if p.LeftAt != nil {
		return store.Conflict("participant %q has left the call; join it again for a new participant", raw)
	}
	return nil
}

// rememberParticipant puts a new participant's facts and first liveness
// deadline in Redis. A Redis failure only costs speed: facts fall back to
// PostgreSQL and the repair pass restores liveness entries.
func (s *Service) rememberParticipant(ctx context.Context, p *store.CallParticipant, until time.Time) {
	if err := s.state.RememberCallParticipant(ctx, p, until); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: remember participant in redis", "participant", p.ID, "err", err)
	}
}

// participantFacts returns what the signaling path needs to know about
// participants, in order, bypassing this node's cache: nil for an unknown
// id, LeftAt set for one that has left. Participants in the call are
// answered from Redis in one round trip; only ids Redis does not know are
// looked up in PostgreSQL (and put back in Redis when still in the call).
func (s *Service) participantFacts(ctx context.Context, ids []uuid.UUID) ([]*store.CallParticipant, error) {
	out, err := s.state.CallFacts(ctx, ids)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: participant facts from redis; reading postgres", "err", err)
		out = make([]*store.CallParticipant, len(ids))
	}
	var missing []uuid.UUID
	for i, p := range out {
		if p == nil {
			missing = append(missing, ids[i])
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := s.store.CallParticipantsByID(ctx, missing)
	if err != nil {
		return nil, err
	}
	if factsRead != nil {
		factsRead()
	}
	byID := make(map[uuid.UUID]*store.CallParticipant, len(found))
	var restored []uuid.UUID
	for _, p := range found {
		if p == nil {
			continue
		}
		byID[p.ID] = p
		if p.LeftAt == nil {
			if err := s.state.SetCallFacts(ctx, p); err != nil {
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

// factsRead, when set (by tests), runs between participantFacts'
// PostgreSQL read and its writing the facts back to Redis.
var factsRead func()

// dropFactsOfLeft deletes the facts just put back in Redis of participants
// that have left meanwhile. A leave deletes its participant's facts after
// it commits, which may be before the write that put them back from an
// older read; without this check such a participant would look live to
// the signaling path until the facts expired. Checking after the write
// closes the race: a leave that committed before the check is seen by
// it, and one that commits after it deletes the facts itself.
func (s *Service) dropFactsOfLeft(ctx context.Context, ids []uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	left, err := s.store.LeftCallParticipants(ctx, ids)
	if err == nil && len(left) > 0 {
		err = s.state.DropCallFacts(ctx, left)
	}
	if err != nil {
		// Drop them all: a missing key only costs a read of PostgreSQL.
		_ = s.state.DropCallFacts(ctx, ids)
		s.log.Warn("calls: check restored participant facts", "err", err)
	}
}
