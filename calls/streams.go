package calls

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// CallEvents streams one of the caller's participants' events: ready
// (with who is in the session), the signals addressed to it (those sent
// before the stream started first), and the session's joins, leaves and
// end, until the session ends or the participant leaves. While it lasts it
// keeps the participant alive.
func (s *Service) CallEvents(ctx context.Context, participant string) (<-chan *CallEvent, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	s.runtime()
	p, err := s.ownParticipant(ctx, me, "participant", participant)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(stream.Context(ctx)) // kept by the stream for its life
	session, err := s.bus.Subscribe(ctx, SessionTopic(p.SessionID))
	if err != nil {
		cancel()
		return nil, err
	}
	own, err := s.bus.Subscribe(ctx, ParticipantTopic(p.ID))
	if err != nil {
		cancel()
		return nil, err
	}
	// Check again now that the subscriptions are live, bypassing the cache:
	// a leave between the first check and the subscriptions would otherwise
	// go unseen.
	now, err := s.participantFacts(ctx, []uuid.UUID{p.ID})
	if err == nil {
		err = checkOwnParticipant(me, participant, now[0])
	}
	if err == nil {
		err = s.liveness.hold(ctx, p.ID)
		if err != nil {
			s.liveness.release(p.ID)
		}
	}
	var start []*CallEvent
	if err == nil {
		if start, err = s.startOfStream(ctx, p); err != nil {
			s.liveness.release(p.ID)
		}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	out := stream.New[CallEvent](ctx)
	go s.streamEvents(ctx, cancel, p, session, own, start, out)
	return out.C, nil
}

// deliverHeld sends the signals the bus held for the participant, in
// order, and reports whether the stream goes on.
func (s *Service) deliverHeld(ctx context.Context, me *store.CallParticipant, out *stream.Out[CallEvent]) bool {
	held, err := s.heldSignals(ctx, me)
	if err != nil {
		s.log.Warn("callEvents: held signals", "participant", me.ID, "err", err)
	}
	for _, e := range held {
		if !out.Send(ctx, e) {
			return false
		}
	}
	return true
}

// heldSignals takes the signals the bus held for the participant while no
// node listened to it.
func (s *Service) heldSignals(ctx context.Context, me *store.CallParticipant) ([]*CallEvent, error) {
	held, err := s.bus.TakeHeld(ctx, ParticipantTopic(me.ID))
	if err != nil {
		return nil, err
	}
	events := make([]*CallEvent, 0, len(held))
	for _, data := range held {
		e, err := DecodeEvent(data)
		if err != nil {
			s.log.Warn("callEvents: bad held event", "err", err)
			continue
		}
		events = append(events, e)
	}
	return events, nil
}

// startOfStream returns what a callEvents stream starts with, once its
// subscriptions are live: ready, with the session's live participants,
// then the signals sent to the participant before (held by the bus).
func (s *Service) startOfStream(ctx context.Context, me *store.CallParticipant) ([]*CallEvent, error) {
	lists, err := s.store.CallParticipantsBySession(ctx, []uuid.UUID{me.SessionID})
	if err != nil {
		return nil, err
	}
	live := make([]*store.CallParticipant, 0, len(lists[0]))
	for _, p := range lists[0] {
		if p.LeftAt == nil {
			live = append(live, p)
		}
	}
	held, err := s.heldSignals(ctx, me)
	if err != nil {
		return nil, err
	}
	ready := &CallEvent{Type: EventReady, Call: me.CallID, Session: me.SessionID, Participant: me,
		Participants: live, CreatedAt: time.Now()}
	return append([]*CallEvent{ready}, held...), nil
}

// streamEvents relays a participant's events until the session ends, the
// participant leaves, or the client goes away.
func (s *Service) streamEvents(ctx context.Context, cancel context.CancelFunc, me *store.CallParticipant,
	session, own *bus.Subscription, start []*CallEvent, out *stream.Out[CallEvent]) {
	defer out.Close()
	defer cancel()
	defer s.liveness.release(me.ID)
	// The subscriptions are live: say so first (with who is there), so a
	// client knows that signals sent to this participant from now on will
	// arrive and can start negotiating (send its offers) without racing
	// its own stream; then what was sent before it started.
	for _, e := range start {
		if !out.Send(ctx, e) {
			return
		}
	}
	for {
		var ev *bus.Event
		var ok bool
		var sub *bus.Subscription
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-session.C:
			sub = session
		case ev, ok = <-own.C:
			sub = own
		}
		if !ok {
			stream.End(ctx, sub.Err())
			return
		}
		var e *CallEvent
		if ev.Gap {
			// Signals sent while this node's subscription was gone were
			// held (nobody listened): deliver them now, once per gap
			// (every topic of the stream reports it).
			if sub == own && !s.deliverHeld(ctx, me, out) {
				return
			}
			// Events may have been lost while Redis was away: if this
			// participant has left meanwhile, say so and end the stream.
			// (Other lost events are not replayed; WebRTC clients recover
			// with an ICE restart.)
			now, err := s.participantFacts(ctx, []uuid.UUID{me.ID})
			if err != nil || now[0] == nil || now[0].LeftAt == nil {
				continue
			}
			e = &CallEvent{Type: EventLeft, Call: me.CallID, Session: me.SessionID, Participant: now[0], CreatedAt: *now[0].LeftAt}
		} else {
			var err error
			if e, err = DecodeEvent(ev.Data); err != nil {
				s.log.Warn("callEvents: bad event", "err", err)
				continue
			}
			e = s.withSFUToken(ctx, me, e)
		}
		if !out.Send(ctx, e) {
			return
		}
		if e.Type == EventSessionEnded || (e.Type == EventLeft && e.Participant != nil && e.Participant.ID == me.ID) {
			return
		}
	}
}
