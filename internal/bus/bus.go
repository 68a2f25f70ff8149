// Package bus is the real-time event bus every subscription uses.
//
// Events are published to Redis pub/sub, so a client on node A receives what
// a mutation on node B published. Each node holds at most one Redis
// subscription per topic, on a single connection, and fans each event out in
// process to all its local subscribers. A slow subscriber never blocks the
// publisher or the others: its buffer fills, and then it alone is dropped.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
)

// Errors a subscription can end with.
var (
	// ErrSlowSubscriber ends a subscription whose buffer was full when an
	// event arrived: it fell behind and was dropped.
	ErrSlowSubscriber = errors.New("bus: subscriber fell behind and was dropped")
	// ErrClosed ends subscriptions when the bus shuts down.
	ErrClosed = errors.New("bus: closed")
)

// Event is one delivery on a subscription.
type Event struct {
	// Topic is the topic the event was published on.
	Topic string
	// Data is the published payload. Every local subscriber of the topic
	// shares the same slice: treat it as read-only.
	Data []byte
	// Gap marks an event without data that says events may have been lost:
	// the connection to Redis dropped and has just been re-established.
	// Streams with an order re-read what they missed from PostgreSQL.
	Gap bool
}

// Options tunes a Bus.
type Options struct {
	// Prefix is prepended to every Redis channel name.
	Prefix string
	// Buffer is each subscriber's event buffer (default 64).
	Buffer int
	// Logger receives connection problems; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the bus metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Health says whether Redis answers (a *redisguard.Guard); nil means
	// always assume it does.
	Health Health
}

// Health is what the bus asks of the guard on its Redis client. While
// Redis does not answer, Subscribe fails at once; when it answers again,
// every subscriber gets a Gap event, as publishes may have failed
// meanwhile.
type Health interface {
	// Err is non-nil while Redis is known not to answer.
	Err() error
	// Opened is closed when Redis is next found not answering.
	Opened() <-chan struct{}
	// OnRecover adds what to run when Redis answers again.
	OnRecover(func(context.Context) error)
	// Suspect asks for a check that Redis answers at all.
	Suspect()
}

// Bus publishes events and fans them out to local subscribers.
type Bus struct {
	rdb    *redis.Client
	prefix string
	buffer int
	log    *slog.Logger
	health Health

	mu     sync.Mutex
	ps     *redis.PubSub
	topics map[string]map[*Subscription]struct{}
	pings  map[string]chan struct{}
	closed bool

	pingSeq atomic.Uint64
	stop    context.CancelFunc
	done    chan struct{}

	subscribers prometheus.Gauge
	topicsOpen  prometheus.Gauge
	delivered   prometheus.Counter
	dropped     prometheus.Counter
	gaps        prometheus.Counter
}

// Subscription is one local subscriber's stream of events.
type Subscription struct {
	// C delivers the events. It is closed when the subscription ends: when
	// its context is done, when it falls behind, or when the bus closes.
	// Every local subscriber of a topic receives the same *Event: treat it
	// as read-only. (Pointers keep an idle subscriber's buffer small: 8
	// bytes a slot rather than a whole Event.)
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

// New starts a bus on rdb. Close it to end every subscription.
func New(rdb *redis.Client, opts Options) *Bus {
	buffer := opts.Buffer
	if buffer <= 0 {
		buffer = 64
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		rdb:    rdb,
		prefix: opts.Prefix,
		buffer: buffer,
		log:    logger,
		health: opts.Health,
		ps:     rdb.Subscribe(ctx),
		topics: map[string]map[*Subscription]struct{}{},
		pings:  map[string]chan struct{}{},
		stop:   cancel,
		done:   make(chan struct{}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_bus_subscribers", Help: "Local subscribers of the event bus."}),
		topicsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_bus_topics", Help: "Topics this node holds a Redis subscription for."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brook_bus_events_received_total", Help: "Events received from Redis by this node."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brook_bus_slow_subscribers_dropped_total", Help: "Subscribers dropped because their buffer was full."}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brook_bus_reconnects_total", Help: "Times the Redis subscription connection was re-established."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(b.subscribers, b.topicsOpen, b.delivered, b.dropped, b.gaps)
	}
	if b.health != nil {
		b.health.OnRecover(func(context.Context) error {
			b.signalGap()
			return nil
		})
	}
	go b.receive(ctx)
	return b
}

// subscribeTimeout bounds how long Subscribe waits for Redis to confirm.
const subscribeTimeout = 5 * time.Second

// Subscribe starts receiving events published on topic. It returns once the
// subscription is live in Redis, so every event published after it returns
// is delivered. The subscription ends when ctx is done.
func (b *Bus) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	var down <-chan struct{}
	if b.health != nil {
		if err := b.health.Err(); err != nil {
			return nil, fmt.Errorf("bus: subscribe to %s: %w", topic, err)
		}
		down = b.health.Opened()
	}
	c := make(chan *Event, b.buffer)
	s := &Subscription{C: c, c: c, bus: b, topic: topic}

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
		if err := b.ps.Subscribe(ctx, b.prefix+topic); err != nil {
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
	pingErr := b.ps.Ping(ctx, token)
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
	b.pings[token] = ready
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
	close(s.c)
	s.woken(true)
	if s.stop != nil {
		s.stop()
	}
	if len(subs) == 0 {
		delete(b.topics, s.topic)
		b.topicsOpen.Dec()
		if !b.closed {
			if uerr := b.ps.Unsubscribe(context.Background(), b.prefix+s.topic); uerr != nil {
				// The connection is broken; the receive loop replaces it and
				// subscribes afresh to the topics still wanted.
				b.log.Warn("bus: unsubscribe failed", "topic", s.topic, "err", uerr)
			}
		}
	}
}

// Close ends every subscription with ErrClosed and stops the bus.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, subs := range b.topics {
		for s := range subs {
			b.removeLocked(s, ErrClosed)
		}
	}
	err := b.ps.Close()
	b.mu.Unlock()
	b.stop()
	<-b.done
	return err
}

// Stats reports how many topics and local subscribers the bus holds.
func (b *Bus) Stats() (topics, subscribers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subs := range b.topics {
		subscribers += len(subs)
	}
	return len(b.topics), subscribers
}

// Health-check timing of the subscription connection.
const (
	receiveTimeout = 5 * time.Second
	deadAfter      = 3 * receiveTimeout
)

// receive reads from the Redis subscription connection and dispatches
// events until the bus closes. When the connection fails it is replaced, the
// wanted topics are subscribed again, and every subscriber gets a Gap event.
func (b *Bus) receive(ctx context.Context) {
	defer close(b.done)
	lastHeard := time.Now()
	backoff := 50 * time.Millisecond
	// broken: the connection failed and events may have been missed since;
	// resyncing: the resync PING is on its way, and its answer ends that.
	broken, resyncing := false, false
	for ctx.Err() == nil {
		b.mu.Lock()
		ps := b.ps
		b.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, receiveTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isTimeout(err) && !broken && time.Since(lastHeard) < deadAfter {
				// Quiet: ask for a sign of life. A ping that fails means the
				// connection broke, and go-redis dials a new one unseen:
				// events may have been lost, so resync as for any failure.
				if err = ps.Ping(ctx, ""); err == nil {
					continue
				}
			}
			if !broken {
				if isTimeout(err) {
					b.log.Warn("bus: redis subscription connection is silent; reconnecting")
				} else {
					b.log.Warn("bus: redis subscription connection failed; reconnecting", "err", err)
				}
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			resyncing = b.reconnect(ctx)
			continue
		}
		lastHeard = time.Now()
		backoff = 50 * time.Millisecond
		if broken && !resyncing {
			// The resync PING failed (Redis was still away) but go-redis has
			// since dialed and subscribed again on its own: events flow, so
			// ask again for the answer that proves it and signals the gap.
			resyncing = ps.Ping(ctx, resyncPing) == nil
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.mu.Lock()
			if ready, ok := b.pings[m.Payload]; ok {
				delete(b.pings, m.Payload)
				close(ready)
			}
			b.mu.Unlock()
			if m.Payload == resyncPing && broken {
				broken, resyncing = false, false
				b.signalGap()
			}
		}
	}
}

// resyncPing is the payload of the PING sent after reconnecting; its answer
// proves that the re-issued SUBSCRIBEs have taken effect.
const resyncPing = "brook-bus-resync"

// reconnect replaces the subscription connection with a new one subscribed
// to every wanted topic, then sends the resync PING. It reports whether the
// PING was sent.
func (b *Bus) reconnect(ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	_ = b.ps.Close()
	channels := make([]string, 0, len(b.topics))
	for topic := range b.topics {
		channels = append(channels, b.prefix+topic)
	}
	b.ps = b.rdb.Subscribe(ctx, channels...)
	b.gaps.Inc()
	// Pending subscribers waited on the old connection; they time out and
	// report an error rather than wait for an answer that will not come.
	if err := b.ps.Ping(ctx, resyncPing); err != nil {
		b.log.Debug("bus: resync ping failed; will retry", "err", err)
		return false
	}
	return true
}

// signalGap tells every subscriber that events may have been missed.
func (b *Bus) signalGap() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, subs := range b.topics {
		gap := &Event{Topic: topic, Gap: true}
		for s := range subs {
			select {
			case s.c <- gap:
				s.woken(false)
			default:
				b.dropped.Inc()
				b.removeLocked(s, ErrSlowSubscriber)
			}
		}
	}
}

// dispatch hands an event to every local subscriber of its topic without
// ever blocking: a subscriber whose buffer is full is dropped.
func (b *Bus) dispatch(m *redis.Message) {
	if len(m.Channel) < len(b.prefix) {
		return
	}
	ev := &Event{Topic: m.Channel[len(b.prefix):], Data: []byte(m.Payload)}
	b.delivered.Inc()
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.topics[ev.Topic] {
		select {
		case s.c <- ev:
			s.woken(false)
		default:
			b.dropped.Inc()
			b.removeLocked(s, ErrSlowSubscriber)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
