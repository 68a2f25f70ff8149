package calls

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Webhook events of calls: each is emitted on the transaction of its
// change (the request's, or the job's that times out a ring, a
// participant or a session), keyed by the call so that a receiver gets one
// call's events in order. Signals are never events: sendSignal stays off
// PostgreSQL.

// Types of call events only webhooks receive (the ring events and
// call.ended are myCallEvents' too; session.started and session.ended
// callEvents').
const (
	EventCallCreated = "call.created"
)

// ringHookTypes are the types a ring change may emit.
var ringHookTypes = []string{EventRing, EventAccepted, EventRejected, EventMissed, EventRingCancelled, EventCallEnded, EventSessionEnded}

// departureHookTypes are the types a removal of participants may emit.
var departureHookTypes = []string{EventSessionEnded, EventCallEnded}

// callHook is the payload of the call events webhooks receive.
type callHook struct {
	Call string `json:"call"`
	// User made the change (created or ended the call), when a user did.
	User     string          `json:"user,omitempty"`
	Info     *callInfo       `json:"call_info,omitempty"`
	Ring     *store.CallRing `json:"ring,omitempty"`
	Session  *sessionHook    `json:"session,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Sessions []uuid.UUID     `json:"sessions,omitempty"`
}

// callInfo is a call as webhooks see it.
type callInfo struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedBy string          `json:"created_by"`
	Data      json.RawMessage `json:"data,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	StartsAt  *time.Time      `json:"starts_at,omitempty"`
	Backstage bool            `json:"backstage"`
}

// sessionHook is a call session as webhooks see it.
type sessionHook struct {
	ID        uuid.UUID  `json:"id"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

func infoOf(c *store.Call) *callInfo {
	if c == nil {
		return nil
	}
	return &callInfo{ID: c.ID, Type: c.Type, CreatedBy: c.CreatedByID, Data: c.Data, CreatedAt: c.CreatedAt, StartsAt: c.StartsAt,
		Backstage: c.Backstage}
}

func callEvent(typ, call string, at time.Time, p callHook) webhooks.Event {
	p.Call = call
	return webhooks.Event{Type: typ, Key: "call:" + call, At: at, Payload: p}
}

// createdHook is call.created's event.
func createdHook(c *store.Call, user string) webhooks.Event {
	return callEvent(EventCallCreated, c.ID, c.CreatedAt, callHook{User: user, Info: infoOf(c)})
}

// sessionHooks are the session.ended events of a removal of participants,
// and with ended (the call ended by a host) call.ended after them.
func sessionHooks(d *store.CallDepartures, ended bool, user string) []webhooks.Event {
	if d == nil || len(d.Ended) == 0 {
		return nil
	}
	var evs []webhooks.Event
	ids := map[string][]uuid.UUID{}
	var calls []string
	for _, sess := range d.Ended {
		at := time.Now().UTC()
		if sess.EndedAt != nil {
			at = *sess.EndedAt
		}
		evs = append(evs, callEvent(EventSessionEnded, sess.CallID, at, callHook{Reason: d.Reason,
			Session: &sessionHook{ID: sess.ID, StartedAt: sess.StartedAt, EndedAt: sess.EndedAt}}))
		if ids[sess.CallID] == nil {
			calls = append(calls, sess.CallID)
		}
		ids[sess.CallID] = append(ids[sess.CallID], sess.ID)
	}
	if ended {
		for _, c := range calls {
			evs = append(evs, callEvent(EventCallEnded, c, time.Now().UTC(), callHook{User: user, Reason: "ended", Sessions: ids[c]}))
		}
	}
	return evs
}

// ringHooks are the events of a ring change: one per ring, then, when a
// one-to-one call ended with it, its session's end and call.ended.
func ringHooks(out *store.RingOutcome) []webhooks.Event {
	if out == nil || len(out.Rings) == 0 {
		return nil
	}
	var evs []webhooks.Event
	for _, r := range out.Rings {
		at := r.CreatedAt
		if r.DecidedAt != nil {
			at = *r.DecidedAt
		}
		evs = append(evs, callEvent(ringEventType(r.State), r.CallID, at, callHook{Ring: r}))
	}
	if out.Ended {
		evs = append(evs, sessionHooks(out.Departures, false, "")...)
		r := out.Rings[0]
		evs = append(evs, callEvent(EventCallEnded, r.CallID, time.Now().UTC(), callHook{Reason: string(r.State), Ring: r}))
	}
	return evs
}

// ringEventType is the event type of a ring in state.
func ringEventType(state store.CallRingState) string {
	switch state {
	case store.RingAccepted:
		return EventAccepted
	case store.RingRejected:
		return EventRejected
	case store.RingMissed:
		return EventMissed
	case store.RingCancelled:
		return EventRingCancelled
	}
	return EventRing
}

// writeRings runs a ring change with its webhook events (see
// webhooks.Service.WriteEvents).
func (s *Service) writeRings(ctx context.Context, fn func(tx *store.Store) (*store.RingOutcome, error)) (*store.RingOutcome, error) {
	var out *store.RingOutcome
	write := func(tx *store.Store) ([]webhooks.Event, error) {
		var err error
		if out, err = fn(tx); err != nil {
			return nil, err
		}
		// Pushes to the offline users rung (or no longer rung), with
		// the rings.
		if err := s.push.Rings(ctx, tx, out); err != nil {
			return nil, err
		}
		return ringHooks(out), nil
	}
	if s.push.Enabled() {
		err := s.store.InTx(ctx, func(tx *store.Store) error {
			evs, err := write(tx)
			if err != nil {
				return err
			}
			return s.hooks.EmitAll(ctx, tx, evs)
		})
		return out, err
	}
	err := s.hooks.WriteEvents(ctx, s.store, ringHookTypes, write)
	return out, err
}

// writeDepartures runs a removal of participants with its webhook events;
// ended: a host ended the call (call.ended follows the sessions' end).
func (s *Service) writeDepartures(ctx context.Context, ended bool, user string, fn func(tx *store.Store) (*store.CallDepartures, error)) (*store.CallDepartures, error) {
	var d *store.CallDepartures
	err := s.hooks.WriteEvents(ctx, s.store, departureHookTypes, func(tx *store.Store) ([]webhooks.Event, error) {
		var err error
		d, err = fn(tx)
		if err != nil {
			return nil, err
		}
		return sessionHooks(d, ended, user), nil
	})
	return d, err
}
