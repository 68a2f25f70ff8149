// Package stream is how a product's subscription streams hand events to
// the transport that serves them: each stream is a channel of events, a
// Delivery the transport gives it (so that the transport writes an event
// from the stream's own goroutine), and a way to say why the stream ended
// early. An idle stream holds no goroutine: it parks on its bus
// subscription (Follow) and is started again at the next event.
package stream

import (
	"context"
	"log/slog"

	"github.com/brookhq/brook/internal/bus"
)

// Delivery is how a subscription's stream hands its events to the
// transport, which delivers them from the stream's own goroutine: a
// goroutine and a hand-off less per subscription than a transport
// goroutine waiting on the channel.
type Delivery interface {
	// Take delivers ev with a response already made for the same event
	// (shared by the streams of a channel's subscribers), if it can.
	Take(ev any) bool
	// Ready delivers the event just put in the stream's channel, or the
	// end of the stream after it was closed.
	Ready()
	// Abandon follows a Take that returned false when the stream ends
	// before it puts the event in its channel.
	Abandon()
}

// Transport is what a transport puts in the context of a subscription it
// serves (WithTransport).
type Transport interface {
	// Delivery returns how the subscription's stream hands its events
	// over; nil: the transport waits on the stream's channel itself.
	Delivery() Delivery
	// Fail makes err the reason the subscription ends: its client gets it
	// in place of a normal end.
	Fail(ctx context.Context, err error)
	// Context is the subscription's context without the state of its
	// execution (see Context); nil: the stream keeps the resolver's.
	Context() context.Context
}

type transportKey struct{}

// WithTransport returns a context of a subscription served by t.
func WithTransport(ctx context.Context, t Transport) context.Context {
	return context.WithValue(ctx, transportKey{}, t)
}

// TransportFrom returns the transport serving the subscription of ctx,
// or nil.
func TransportFrom(ctx context.Context) Transport { return transportFrom(ctx) }

func transportFrom(ctx context.Context) Transport {
	t, _ := ctx.Value(transportKey{}).(Transport)
	return t
}

// Context returns the context a subscription's stream keeps for its life
// (its bus subscription, its goroutine, its checks): the transport's, when
// it offers one, which ends with the subscription and carries the caller
// but none of the executor's per-operation state. The resolver's context
// holds that state (the operation, its collected fields, the field's
// arguments and result) through its values, and an idle stream holding it
// kept all of it alive for hours. Use ctx itself for the work before the
// stream starts.
func Context(ctx context.Context) context.Context {
	if t := transportFrom(ctx); t != nil {
		if c := t.Context(); c != nil {
			return c
		}
	}
	return ctx
}

// End reports why a subscription stopped early to its client.
func End(ctx context.Context, err error) {
	if t := transportFrom(ctx); err != nil && t != nil {
		t.Fail(ctx, err)
	}
}

// Out is a subscription's channel of events and its delivery.
type Out[T any] struct {
	// C is the channel the subscription resolver returns.
	C chan *T
	d Delivery
}

// New makes the stream of the subscription being resolved in ctx. Make it
// once nothing can fail any more: the next step is to start what sends to
// it and closes it.
func New[T any](ctx context.Context) *Out[T] {
	s := &Out[T]{C: make(chan *T, 1)}
	if t := transportFrom(ctx); t != nil {
		s.d = t.Delivery()
	}
	return s
}

// Send delivers v, or reports false when ctx ends first.
func (s *Out[T]) Send(ctx context.Context, v *T) bool {
	if s.d != nil && s.d.Take(v) {
		return true
	}
	select {
	case s.C <- v:
		if s.d != nil {
			s.d.Ready()
		}
		return true
	case <-ctx.Done():
		if s.d != nil {
			s.d.Abandon()
		}
		return false
	}
}

// Close ends the stream; call it last, after any End.
func (s *Out[T]) Close() {
	close(s.C)
	if s.d != nil {
		s.d.Ready()
	}
}

// Follower is a stream that Follow drives.
type Follower interface {
	// CanPark reports whether the stream may park: it waits on nothing
	// but the bus.
	CanPark() bool
	// Next handles one event of the bus; false: the stream has ended.
	Next() bool
	// Stop runs once, after Next reported the end.
	Stop()
}

// Follow runs f.Next, which handles one event of sub, until it reports
// the stream's end, then runs f.Stop. An idle stream holds no goroutine:
// when f.CanPark allows, it parks on sub rather than wait on it, and the
// bus starts it again, on a goroutine of its own, at the next event or at
// the end of the subscription.
func Follow(sub *bus.Subscription, f Follower) {
	var run func()
	run = func() {
		for {
			if f.CanPark() && sub.Park(run) {
				return
			}
			if !f.Next() {
				f.Stop()
				return
			}
		}
	}
	run()
}

// Relay delivers decoded bus events until ctx ends or the bus drops the
// subscription. allowed, when set, is asked before each event and after
// each gap (with nil) whether the subscriber may go on: its error ends the
// stream, after the event when deliver is set (so that a subscriber sees
// its own removal), before it otherwise. Events relayed are live only: a
// gap in the bus is not replayed.
func Relay[T any](ctx context.Context, log *slog.Logger, sub *bus.Subscription, out *Out[T], decode func([]byte) (*T, error),
	allowed func(*T) (deliver bool, err error)) {
	Follow(sub, &relay[T]{ctx: ctx, log: log, sub: sub, out: out, decode: decode, allowed: allowed})
}

// relay is the state of one relayed stream (see Relay).
type relay[T any] struct {
	ctx     context.Context
	log     *slog.Logger
	sub     *bus.Subscription
	out     *Out[T]
	decode  func([]byte) (*T, error)
	allowed func(*T) (deliver bool, err error)
}

func (s *relay[T]) CanPark() bool { return true }

func (s *relay[T]) Stop() { s.out.Close() }

// Next handles one event; false: the stream has ended.
func (s *relay[T]) Next() bool {
	select {
	case <-s.ctx.Done():
		return false
	case ev, ok := <-s.sub.Events():
		if !ok {
			End(s.ctx, s.sub.Err())
			return false
		}
		if ev.Gap {
			// Relayed events are not replayed: clients re-read state
			// (unreadCounts, messages) after a reconnect.
			if s.allowed != nil {
				if _, err := s.allowed(nil); err != nil {
					End(s.ctx, err)
					return false
				}
			}
			return true
		}
		v, err := s.decode(ev.Data)
		if err != nil {
			s.log.Warn("stream: bad event", "topic", ev.Topic, "err", err)
			return true
		}
		deliver, end := true, error(nil)
		if s.allowed != nil {
			deliver, end = s.allowed(v)
		}
		if deliver && !s.out.Send(s.ctx, v) {
			return false
		}
		if end != nil {
			End(s.ctx, end)
			return false
		}
	}
	return true
}
