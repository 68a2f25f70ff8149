// Package bus is the real-time event bus every subscription uses.
//
// Events are published to Redis pub/sub, so a client on node A receives what
// a mutation on node B published. Each node holds at most one Redis
// subscription per topic, on a single connection (with a Redis Cluster, one
// connection per master, using sharded pub/sub: shard.go), and fans each
// event out in process to all its local subscribers. A slow subscriber never blocks the
// publisher or the others: its buffer fills, and then it alone is dropped.
package bus

// This file holds the Bus itself: its errors, Event, Options, Health, New,
// Close and Stats. Publishing is in publish.go, subscribing in
// subscribe.go and the receive loop in receive.go.

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/brookhq/brook/internal/tracing"
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
	// Tracer, if set, makes events carry the trace of the span that
	// published them and their delivery a span in it
	// (tracing.Provider.TracerProvider).
	Tracer trace.TracerProvider
}

// Health is what the bus asks of the guard on its Redis client. While
// Redis does not answer, Subscribe fails at once; when it answers again,
// every subscriber gets one Gap event, as publishes may have failed
// meanwhile.
type Health interface {
	// Err is non-nil while Redis is known not to answer.
	Err() error
	// Opened is closed when Redis is next found not answering.
	Opened() <-chan struct{}
	// AfterRecover adds what to run once Redis answers again and commands
	// pass.
	AfterRecover(func())
	// Suspect asks for a check that Redis answers at all.
	Suspect()
}

// Bus publishes events and fans them out to local subscribers.
type Bus struct {
	rdb redis.UniversalClient
	// cluster is rdb when it is a cluster client: events then use sharded
	// pub/sub (shard.go).
	cluster *redis.ClusterClient
	prefix  string
	buffer  int
	log     *slog.Logger
	health  Health
	tracer  trace.Tracer

	mu sync.Mutex
	// single is the one subscription connection with a single Redis (nil
	// in a cluster); conns are every connection, route each topic's.
	single *conn
	conns  map[*conn]struct{}
	route  map[string]*conn
	topics map[string]map[*Subscription]struct{}
	// pings are what to run when the answer to a PING token arrives.
	pings  map[string]func()
	closed bool

	pingSeq atomic.Uint64
	// ctx ends when the bus closes; the receive loops run until then.
	ctx     context.Context
	stop    context.CancelFunc
	running sync.WaitGroup

	subscribers prometheus.Gauge
	topicsOpen  prometheus.Gauge
	delivered   prometheus.Counter
	dropped     prometheus.Counter
	gaps        prometheus.Counter
}

// New starts a bus on rdb, a *redis.Client or a *redis.ClusterClient.
// Close it to end every subscription.
func New(rdb redis.UniversalClient, opts Options) *Bus {
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
		conns:  map[*conn]struct{}{},
		route:  map[string]*conn{},
		topics: map[string]map[*Subscription]struct{}{},
		pings:  map[string]func(){},
		ctx:    ctx,
		stop:   cancel,
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
	if opts.Tracer != nil {
		b.tracer = opts.Tracer.Tracer(tracing.Name)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(b.subscribers, b.topicsOpen, b.delivered, b.dropped, b.gaps)
	}
	if b.health != nil {
		// After the circuit closed, not as a recovery step before: a
		// subscriber answers a gap with reads, from PostgreSQL and from
		// Redis (held signals), which the open circuit would refuse; and
		// once, whatever the steps do (a step retried at every probe
		// made a gap every 50 ms).
		b.health.AfterRecover(b.signalGap)
	}
	b.cluster, _ = rdb.(*redis.ClusterClient)
	b.mu.Lock()
	if b.cluster == nil {
		b.single = &conn{ps: rdb.Subscribe(ctx), topics: map[string]struct{}{}}
		b.startLocked(b.single)
	}
	b.mu.Unlock()
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
	var err error
	for c := range b.conns {
		if cerr := c.ps.Close(); cerr != nil && err == nil {
			err = cerr
		}
		c.retired = true
	}
	b.mu.Unlock()
	b.stop()
	b.running.Wait()
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
