package bus

// Subscribing: Subscription and Park, Subscribe and its confirmation by
// Redis, and the removal of a subscriber.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/brookhq/brook/internal/redisguard"
)

// Subscription is one local subscriber's stream of events.
type Subscription struct {
	// C delivers the events. It is closed when the subscription ends: when
	// its context is done, when it falls behind, or when the bus closes.
	// Every local subscriber of a topic receives the same *Event: treat it
	// as read-only. (Pointers keep an idle subscriber's buffer small: 8
	// bytes a slot rather than a whole Event.) Nil for a subscription made
	// by SubscribeParked: read Events instead.
	C <-chan *Event

	c     chan *Event
	bus   *Bus
	topic string
	err   error
	stop  func() bool
	// wakeMu guards wake, set by Park to run on a goroutine of its own
	// at the next event or at the end, and ended, set when C is closed.
	// (A mutex, not atomics alone: whether C holds an event is read with
	// len, which orders nothing by itself.)
	wakeMu sync.Mutex
	wake   func()
	ended  bool
}

// closedEvents is the channel of a parked subscription that ended before
// its first event: closed, as C would be.
var closedEvents = func() chan *Event {
	c := make(chan *Event)
	close(c)
	return c
}()

// Events returns the channel of the subscription's events: C, or for a
// subscription made by SubscribeParked, the channel made at its next
// event (nil while it has none, which blocks; after Park reported false it
// is never nil, and the same until the reader parks again).
func (s *Subscription) Events() <-chan *Event {
	if s.C != nil {
		return s.C
	}
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	return s.c
}

// offer puts ev in the subscription's buffer, made now if the
// subscription has none (SubscribeParked; Park gives it back drained);
// false: the buffer is full. The caller holds b.mu; s.c changes under
// wakeMu.
func (s *Subscription) offer(ev *Event) bool {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.c == nil {
		s.c = make(chan *Event, s.bus.buffer)
	}
	select {
	case s.c <- ev:
		return true
	default:
		return false
	}
}

// Park arranges for wake to run, on a goroutine of its own, when the next
// event arrives or the subscription ends, and reports true. It reports
// false, arranging nothing, when an event is already waiting in C or C is
// closed: the caller reads C instead.
//
// It lets an idle subscriber hold no goroutine: a reader that would block
// on C parks and returns, and wake takes up reading where it left off.
// Call it only from the subscription's one reader.
func (s *Subscription) Park(wake func()) bool {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	// A sender puts its event in C before it takes wakeMu (woken): if it
	// took it first, the event is seen here; if after, it finds wake.
	if len(s.c) > 0 || s.ended {
		return false
	}
	if s.C == nil {
		// A parked subscription gives its drained buffer back: a gap
		// after a reconnect wakes every subscriber of the node, and each
		// would otherwise keep a buffer made for one event for hours.
		s.c = nil
	}
	s.wake = wake
	return true
}

// woken starts a parked subscriber's wake, after an event was put in C,
// or after C was closed (end set).
func (s *Subscription) woken(end bool) {
	s.wakeMu.Lock()
	w := s.wake
	s.wake = nil
	if end {
		s.ended = true
	}
	s.wakeMu.Unlock()
	if w != nil {
		go w()
	}
}

// Close ends the subscription at once, as the end of its context would:
// C is closed and Err reports nil. A subscriber that ends on its own
// closes it rather than keep a context of its own to cancel.
func (s *Subscription) Close() { s.bus.remove(s, nil) }

// Err says why C was closed: nil after the context ended, ErrSlowSubscriber,
// or ErrClosed. Call it only after C is closed.
func (s *Subscription) Err() error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.err
}

// subscribeTimeout bounds how long Subscribe waits for Redis to confirm.
const subscribeTimeout = 5 * time.Second

// Subscribe starts receiving events published on topic. It returns once the
// subscription is live in Redis, so every event published after it returns
// is delivered. The subscription ends when ctx is done.
func (b *Bus) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return b.subscribe(ctx, topic, false)
}

// SubscribeParked is Subscribe for a subscriber that reads its events
// through Park and Events (stream.Follow): the subscription's buffer is
// made at its first event, so one that never gets any (an idle
// subscriber, most of a big node's) holds none; a 64-event buffer was
// two thirds of an idle subscription's bus memory. C is nil.
func (b *Bus) SubscribeParked(ctx context.Context, topic string) (*Subscription, error) {
	return b.subscribe(ctx, topic, true)
}

func (b *Bus) subscribe(ctx context.Context, topic string, parked bool) (*Subscription, error) {
	var down <-chan struct{}
	if b.health != nil {
		if err := b.health.Err(); err != nil {
			return nil, fmt.Errorf("bus: subscribe to %s: %w", topic, err)
		}
		down = b.health.Opened()
	}
	s := &Subscription{bus: b, topic: topic}
	if !parked {
		c := make(chan *Event, b.buffer)
		s.C, s.c = c, c
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	subs := b.topics[topic]
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		b.topics[topic] = subs
		b.topicsOpen.Inc()
		// Issued under b.mu, so SUBSCRIBE and UNSUBSCRIBE for a topic reach
		// Redis in the order the topic's state changed here.
		c, err := b.connForLocked(ctx, topic)
		if err == nil {
			b.route[topic] = c
			err = b.subscribeOn(ctx, c, topic)
		}
		if err != nil {
			if c != nil {
				delete(c.topics, topic)
				if b.cluster != nil && len(c.topics) == 0 {
					b.retireLocked(c)
				}
			}
			delete(b.route, topic)
			delete(b.topics, topic)
			b.topicsOpen.Dec()
			b.mu.Unlock()
			return nil, fmt.Errorf("bus: subscribe to %s: %w", topic, &redisguard.UnavailableError{Err: err})
		}
	}
	subs[s] = struct{}{}
	b.subscribers.Inc()
	// Redis answers commands on a connection in order, so the answer to a
	// PING sent now proves the topic's SUBSCRIBE (sent by this or an earlier
	// subscriber) has taken effect.
	token, ready := b.newPing()
	pingErr := b.route[topic].ps.Ping(ctx, token)
	b.mu.Unlock()

	if pingErr == nil {
		pingErr = b.awaitConfirmation(ctx, ready, down)
		if pingErr == nil {
			b.mu.Lock()
			if _, live := b.topics[topic][s]; live {
				s.stop = context.AfterFunc(ctx, func() { b.remove(s, nil) })
			}
			b.mu.Unlock()
			return s, nil
		}
	} else if ctx.Err() == nil && !errors.Is(pingErr, redisguard.ErrUnavailable) {
		pingErr = &redisguard.UnavailableError{Err: pingErr}
	}
	b.forgetPing(token)
	b.remove(s, nil)
	return nil, fmt.Errorf("bus: subscribe to %s: %w", topic, pingErr)
}

// confirmProbeEvery is how long a subscription waits for Redis to confirm
// before it asks the guard to check that Redis answers at all: a Redis
// that hangs then has the guard's circuit opened, which ends every waiting
// subscription at once (down).
const confirmProbeEvery = 250 * time.Millisecond

// awaitConfirmation waits for the answer to a subscription's PING.
func (b *Bus) awaitConfirmation(ctx context.Context, ready, down <-chan struct{}) error {
	timer := time.NewTimer(subscribeTimeout)
	defer timer.Stop()
	probe := time.NewTicker(confirmProbeEvery)
	defer probe.Stop()
	for {
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-down:
			return &redisguard.UnavailableError{Err: errors.New("redis stopped answering")}
		case <-probe.C:
			if b.health != nil {
				b.health.Suspect()
			}
		case <-timer.C:
			return &redisguard.UnavailableError{Err: errors.New("redis did not confirm the subscription in time")}
		}
	}
}

func (b *Bus) newPing() (string, chan struct{}) {
	token := "brook-bus-" + strconv.FormatUint(b.pingSeq.Add(1), 10)
	ready := make(chan struct{})
	b.pings[token] = func() { close(ready) }
	return token, ready
}

func (b *Bus) forgetPing(token string) {
	b.mu.Lock()
	delete(b.pings, token)
	b.mu.Unlock()
}

// remove ends s with err, and unsubscribes from Redis when s was the
// topic's last local subscriber.
func (b *Bus) remove(s *Subscription, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(s, err)
}

func (b *Bus) removeLocked(s *Subscription, err error) {
	subs := b.topics[s.topic]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	b.subscribers.Dec()
	s.err = err
	s.wakeMu.Lock()
	if s.c == nil {
		s.c = closedEvents
	} else {
		close(s.c)
	}
	s.ended = true // with the close: Park must not give the channel back now
	s.wakeMu.Unlock()
	s.woken(true)
	if s.stop != nil {
		s.stop()
	}
	if len(subs) == 0 {
		delete(b.topics, s.topic)
		b.topicsOpen.Dec()
		c := b.route[s.topic]
		delete(b.route, s.topic)
		if !b.closed && c != nil {
			uerr := b.unsubscribeOn(context.Background(), c, s.topic)
			if b.cluster != nil && len(c.topics) == 0 {
				// A master's connection lives as long as topics need it.
				b.retireLocked(c)
			} else if uerr != nil {
				// The connection is broken; the receive loop replaces it and
				// subscribes afresh to the topics still wanted.
				b.log.Warn("bus: unsubscribe failed", "topic", s.topic, "err", uerr)
			}
		}
	}
}
