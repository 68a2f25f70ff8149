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
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
