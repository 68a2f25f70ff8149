package calls

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/stream"
)

// MyCallEvents streams the caller's ring events, on every device that
// subscribes: the rings that ring the caller when the stream starts come
// first (as call.ring, read from PostgreSQL once the subscription is
// live, so a device that connects during a ring still rings), then what
// happens live. Each ring's call.ring arrives once per stream.
func (s *Service) MyCallEvents(ctx context.Context) (<-chan *CallRingEvent, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(stream.Context(ctx)) // kept by the stream for its life
	sub, err := s.bus.Subscribe(ctx, UserTopic(me.UserID))
	if err != nil {
		cancel()
		return nil, err
	}
	rung := map[uuid.UUID]bool{}
	start, err := s.ringingNow(ctx, me.UserID, rung)
	if err != nil {
		cancel()
		return nil, err
	}
	out := stream.New[CallRingEvent](ctx)
	go s.streamRings(ctx, cancel, me.UserID, sub, start, rung, out)
	return out.C, nil
}

// ringingNow returns call.ring events for the user's rings that ring now
// and are not in rung yet, and adds them to rung.
func (s *Service) ringingNow(ctx context.Context, user string, rung map[uuid.UUID]bool) ([]*CallRingEvent, error) {
	rings, err := s.store.RingingCallRings(ctx, user)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(rings))
	for _, r := range rings {
		if !rung[r.ID] {
			ids = append(ids, r.CallID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	calls, err := s.store.CallsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []*CallRingEvent
	i := 0
	for _, r := range rings {
		if rung[r.ID] {
			continue
		}
		c := calls[i]
		i++
		if c == nil {
			continue
		}
		rung[r.ID] = true
		out = append(out, &CallRingEvent{Type: EventRing, Call: c, Ring: r, CreatedAt: r.CreatedAt})
	}
	return out, nil
}

// streamRings relays a user's ring events until the client goes away.
func (s *Service) streamRings(ctx context.Context, cancel context.CancelFunc, user string, sub *bus.Subscription,
	start []*CallRingEvent, rung map[uuid.UUID]bool, out *stream.Out[CallRingEvent]) {
	defer out.Close()
	defer cancel()
	for _, e := range start {
		if !out.Send(ctx, e) {
			return
		}
	}
	for {
		var ev *bus.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-sub.C:
		}
		if !ok {
			stream.End(ctx, sub.Err())
			return
		}
		if ev.Gap {
			// Rings may have been lost while Redis was away: those still
			// ringing ring now. (Decisions lost meanwhile are not replayed.)
			more, err := s.ringingNow(ctx, user, rung)
			if err != nil {
				s.log.Warn("myCallEvents: ringing rings after a gap", "user", user, "err", err)
			}
			for _, e := range more {
				if !out.Send(ctx, e) {
					return
				}
			}
			continue
		}
		e := new(CallRingEvent)
		if err := json.Unmarshal(ev.Data, e); err != nil || e.Call == nil {
			s.log.Warn("myCallEvents: bad event", "err", err)
			continue
		}
		if e.Type == EventRing && e.Ring != nil {
			if rung[e.Ring.ID] {
				continue // sent already, from PostgreSQL at the start
			}
			rung[e.Ring.ID] = true
		} else if e.Ring != nil {
			delete(rung, e.Ring.ID) // decided: it will not ring again
		}
		if !out.Send(ctx, e) {
			return
		}
	}
}
