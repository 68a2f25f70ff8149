package calls

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// departureTimeout bounds what follows a committed departure.
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
	ctx, cancel := context.WithTimeout(redisguard.Background(context.WithoutCancel(ctx)), departureTimeout)
	defer cancel()
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
func (s *Service) announceDepartures(ctx context.Context, d *store.CallDepartures) {
	if d == nil {
		return
	}
	if err := s.state.ForgetCallParticipants(ctx, d.IDs); err != nil {
		// The sweep finds the liveness entries again and retries.
		s.log.Warn("calls: forget participants", "err", err)
	}
	if len(d.Left) > 0 {
		left := make([]uuid.UUID, len(d.Left))
		for i, p := range d.Left {
			left[i] = p.ID
		}
		if err := s.bus.PublishRaw(ctx, LeftTopic, EncodeLeft(left)); err != nil {
			s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish left participants", "err", err)
		}
	}
	// A session that ended with these departures says so first: a
	// callEvents stream ends at the first event that ends it (the session's
	// end, or its own participant's departure), and its client should learn
	// that the session is over, not only that it left.
	for _, cs := range d.Ended {
		s.publishEvent(ctx, &CallEvent{Type: EventSessionEnded, Call: cs.CallID, Session: cs.ID, CreatedAt: *cs.EndedAt})
	}
	reason := d.Reason
	for _, p := range d.Left {
		s.publishEvent(ctx, &CallEvent{Type: EventLeft, Call: p.CallID, Session: p.SessionID,
			Participant: p, Reason: &reason, CreatedAt: *p.LeftAt})
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
