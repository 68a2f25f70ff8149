// Package resolvers implements Brook's GraphQL schema. Resolvers are thin:
// they parse and authorize, call the store or bus, and map the result.
package resolvers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Resolver holds what every resolver needs.
type Resolver struct {
	Store *store.Store
	Bus   *bus.Bus
	Log   *slog.Logger
	// Present turns an error into the GraphQL error a client sees; it is
	// used for errors that end a subscription after it has started.
	Present func(ctx context.Context, err error) *gqlerror.Error
	// SubscriptionFailed makes err the reason the subscription in ctx
	// ends, which its client gets in place of a normal end.
	SubscriptionFailed func(ctx context.Context, err *gqlerror.Error)
	// SubscriptionDelivery returns, for the subscription being resolved in
	// ctx, how its stream hands events to the transport; nil: the
	// transport waits on the stream's channel itself.
	SubscriptionDelivery func(ctx context.Context) Delivery

	// SFUNodes are the SFU media servers call sessions are assigned to
	// (SFU_NODES); none means sfu.Default.
	SFUNodes []sfu.Node
	// CallParticipantTimeout is how long a call participant stays without
	// a callEvents subscription (CALL_PARTICIPANT_TIMEOUT; 0: 30 s).
	CallParticipantTimeout time.Duration

	callOnce sync.Once
	callRT   *callRuntime
}

// caller returns the signed-in identity; the API lets no request without
// one reach a resolver, so this fails only if that wiring breaks.
func caller(ctx context.Context) (auth.Identity, error) { return auth.Caller(ctx) }

// wakeWorkers tells the workers of every node that the transaction just
// committed left them a job. It only saves the wait until they next poll.
func (r *Resolver) wakeWorkers(ctx context.Context) { workers.Wake(ctx, r.Bus) }

// endSubscription reports why a subscription stopped early to its client.
func (r *Resolver) endSubscription(ctx context.Context, err error) {
	if err != nil && r.Present != nil && r.SubscriptionFailed != nil {
		r.SubscriptionFailed(ctx, r.Present(ctx, err))
	}
}

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

// stream is a subscription's channel of events and its delivery.
type stream[T any] struct {
	ch chan *T
	d  Delivery
}

// newStream makes the stream of the subscription being resolved in ctx.
// Make it once nothing can fail any more: the resolver's next step is to
// start the goroutine that sends to it and closes it.
func newStream[T any](r *Resolver, ctx context.Context) *stream[T] {
	s := &stream[T]{ch: make(chan *T, 1)}
	if r.SubscriptionDelivery != nil {
		s.d = r.SubscriptionDelivery(ctx)
	}
	return s
}

// send delivers v, or reports false when ctx ends first.
func (s *stream[T]) send(ctx context.Context, v *T) bool {
	if s.d != nil && s.d.Take(v) {
		return true
	}
	select {
	case s.ch <- v:
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

// close ends the stream; call it last, after any endSubscription.
func (s *stream[T]) close() {
	close(s.ch)
	if s.d != nil {
		s.d.Ready()
	}
}
