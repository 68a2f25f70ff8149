package calls

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// departureTimeout bounds what follows a committed departure, its retries
// included.
const departureTimeout = 10 * time.Second

// departuresCommitted, when set (by tests), runs with the request's context
// after a removal of participants commits and before what follows it.
var departuresCommitted func(ctx context.Context)

// finishDepartures follows a removal of participants a request committed:
// this node's cache learns at once, then Redis, the other nodes and the
// sessions' subscribers.
func (s *Service) finishDepartures(ctx context.Context, d *store.CallDepartures) {
	if d == nil {
		return
	}
	if departuresCommitted != nil {
		departuresCommitted(ctx)
	}
	// The removal has committed: what follows must happen even when the
	// request that made it ends now (a client that leaves and closes its
	// tab at once), as nothing would repeat it later. For the same reason
	// its Redis commands get the workers' budget, not the request path's
	// (REDIS_TIMEOUT, 50 ms), which a short stall outlasts without the
	// guard seeing an outage or the other nodes a gap.
	ctx = redisguard.Background(context.WithoutCancel(ctx))
	s.runtime()
	for _, p := range d.Left {
		s.markLeft(p.ID)
	}
	s.announceDepartures(ctx, d)
}

// announceDepartures does what follows any committed removal of
// participants (a request's or the sweep's): it drops them from Redis,
// tells every node to forget their cached facts, and announces
// session.ended and participant.left to the sessions' subscribers.
//
// Dropping them from Redis and telling the nodes are retried while Redis
// does not answer, for up to departureTimeout: nothing else would repeat
// them, and until they land the other nodes relay the departed
// participants' signals (their caches have no TTL, and a stall short
// enough for the guard's check to see Redis answer signals no bus gap).
// A stall that opens this node's circuit makes its commands fail at once
// until the probe finds Redis answering; the retries outlast that too.
func (s *Service) announceDepartures(ctx context.Context, d *store.CallDepartures) {
	if d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, departureTimeout)
	defer cancel()
	// Redis first: a node that hears of the departure and then misses its
	// cache must not find the participant live in Redis.
	if err := retryRedis(ctx, func(ctx context.Context) error {
		return s.state.ForgetCallParticipants(ctx, d.IDs)
	}); err != nil {
		// Retried until the deadline: worth a warning even when the open
		// circuit refused the last try. The sweep drops the liveness
		// entries once they expire.
		s.log.Warn("calls: forget participants", "err", err)
	}
	if len(d.Left) > 0 {
		left := make([]uuid.UUID, len(d.Left))
		for i, p := range d.Left {
			left[i] = p.ID
		}
		data := EncodeLeft(left)
		if err := retryRedis(ctx, func(ctx context.Context) error {
			return s.bus.PublishRaw(ctx, LeftTopic, data)
		}); err != nil {
			s.log.Warn("calls: publish left participants; other nodes may relay their signals", "err", err)
		}
	}
	// A session that ended with these departures says so first: a
	// callEvents stream ends at the first event that ends it (the session's
	// end, or its own participant's departure), and its client should learn
	// that the session is over, not only that it left.
	for _, cs := range d.Ended {
		ev := &CallEvent{Type: EventSessionEnded, Call: cs.CallID, Session: cs.ID, CreatedAt: *cs.EndedAt}
		if d.Reason == store.CallLeftMaxDuration {
			// The session itself ended for this reason (call types).
			ev.Reason = &d.Reason
		}
		s.publishEvent(ctx, ev)
	}
	reason := d.Reason
	for _, p := range d.Left {
		s.publishEvent(ctx, &CallEvent{Type: EventLeft, Call: p.CallID, Session: p.SessionID,
			Participant: p, Reason: &reason, CreatedAt: *p.LeftAt})
	}
}

// retryRedis runs fn until it succeeds, fails for another reason than
// Redis not answering, or ctx ends; it returns fn's last error. A command
// that timed out may have run all the same, so fn must be idempotent.
func retryRedis(ctx context.Context, fn func(context.Context) error) error {
	wait := 20 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || !errors.Is(err, redisguard.ErrUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		// Short waits: the circuit closes within a probe interval (50 ms)
		// of Redis answering again.
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// publishEvent publishes a session-wide event on the session's topic.
func (s *Service) publishEvent(ctx context.Context, ev *CallEvent) {
	data, err := EncodeEvent(ev)
	if err == nil {
		err = s.bus.PublishRaw(ctx, SessionTopic(ev.Session), data)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish event", "type", ev.Type, "session", ev.Session, "err", err)
	}
}

// signalBufs are encoding buffers for signals: the bus is done with one
// when PublishOrHold returns, so the signaling path encodes without
// allocating.
var signalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxHeldSignals bounds the signals kept for a participant whose stream
// has not started: an offer and its trickled ICE candidates fit.
const maxHeldSignals = 256

// publishSignal sends a signal event to its addressee's topic.
func (s *Service) publishSignal(ctx context.Context, sig *Signal) error {
	buf := signalBufs.Get().(*[]byte)
	data := AppendEvent((*buf)[:0], &CallEvent{
		Type: EventSignal, Call: sig.From.CallID, Session: sig.From.SessionID, Signal: sig, CreatedAt: sig.SentAt})
	// Held when the addressee's stream has not started yet: it starts
	// within the participant timeout or the participant is gone.
	err := s.bus.PublishOrHold(ctx, ParticipantTopic(sig.To), data, s.timeout, maxHeldSignals)
	if cap(data) <= 128<<10 {
		*buf = data[:0]
		signalBufs.Put(buf)
	}
	return err
}
