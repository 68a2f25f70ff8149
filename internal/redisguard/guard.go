// Package redisguard keeps a Redis that hangs from hanging Brook. It is a
// go-redis hook that gives every command a short deadline and opens a
// circuit after a few failures in a row: while it is open, commands fail
// at once with ErrUnavailable (callers fall back to PostgreSQL, which holds
// the truth), and a probe pings Redis until it answers. Before the circuit
// closes, the recovery steps run, so state written while Redis was away is
// made right before anyone reads it again; after it has closed, the
// announcements run, so those who wait for Redis hear it is back (recover.go).
//
// A killed Redis refuses connections and fails fast by itself; a stopped
// one accepts them and never answers, which without this made every
// request wait for the client's read timeout. A Redis merely slowed by
// load is told apart by a PING with a longer timeout before the circuit
// opens: its slow commands go to PostgreSQL one by one, but nothing is
// refused wholesale.
package redisguard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrUnavailable matches every error of a command that Redis did not
// answer in time, whose connection failed, or that the open circuit
// refused.
var ErrUnavailable = errors.New("redis unavailable")

// UnavailableError is a Redis failure. It matches ErrUnavailable and
// unwraps to the cause.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return "redis unavailable"
	}
	return "redis unavailable: " + e.Err.Error()
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// errOpen is the cause of commands refused while the circuit is open.
var errOpen = errors.New("circuit open after Redis stopped answering; waiting for it to recover")

// Options tune a Guard. Zero values take the defaults.
type Options struct {
	// Timeout bounds one command (or pipeline) on the request path
	// (default 50 ms; REDIS_TIMEOUT).
	Timeout time.Duration
	// BackgroundTimeout bounds commands whose context is marked with
	// Background: workers' bookkeeping, which may be larger (default 1 s).
	BackgroundTimeout time.Duration
	// Failures is how many failures in a row make the guard check Redis
	// (default 3).
	Failures int
	// VerifyTimeout is how long that check waits for Redis to answer a
	// PING before it opens the circuit (default 500 ms): a Redis slowed by
	// load answers within it, a hung one does not.
	VerifyTimeout time.Duration
	// ProbeInterval is how often an open circuit pings Redis (default 50 ms).
	ProbeInterval time.Duration
	// Logger receives state changes; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Guard is the hook. Attach it to a client, and Close it when done.
type Guard struct {
	opts Options
	log  *slog.Logger
	rdb  redis.UniversalClient
	// pinger has a connection of its own, so that the check measures
	// Redis, not the wait for a connection of the busy pool.
	pinger *redis.Client
	// cluster is set when rdb is a cluster client (cluster.go); pinger is
	// nil then.
	cluster *clusterState

	failures atomic.Int32
	open     atomic.Bool

	mu     sync.Mutex
	opened chan struct{} // closed when the circuit next opens
	// repairs are the recovery steps: the slice is guarded by mu, each
	// step's state belongs to the guard's goroutine (run).
	repairs  []*repair
	announce []func()
	closed   bool
	stop     chan struct{}
	// suspects wakes the guard's goroutine (run) for a check; one
	// waiting is enough.
	suspects chan error
	running  sync.WaitGroup

	healthy      prometheus.Gauge
	opens        prometheus.Counter
	failed       prometheus.Counter
	pending      prometheus.Gauge
	stepFailures prometheus.Counter
}

// New returns a guard; Attach it to the client it guards.
func New(opts Options) *Guard {
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.BackgroundTimeout <= 0 {
		opts.BackgroundTimeout = time.Second
	}
	if opts.Failures <= 0 {
		opts.Failures = 3
	}
	if opts.VerifyTimeout <= 0 {
		opts.VerifyTimeout = 500 * time.Millisecond
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Guard{
		opts:     opts,
		log:      opts.Logger,
		opened:   make(chan struct{}),
		stop:     make(chan struct{}),
		suspects: make(chan error, 1),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brook_redis_healthy",
			Help: "1 while Redis answers; 0 while the circuit is open and reads go to PostgreSQL."}),
		opens: prometheus.NewCounter(prometheus.CounterOpts{Name: "brook_redis_circuit_opened_total",
			Help: "Times Redis stopped answering and the circuit opened."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "brook_redis_command_failures_total",
			Help: "Redis commands that failed for want of an answer (timeouts, broken connections, the open circuit)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brook_redis_recovery_steps_pending",
			Help: "Recovery steps that failed after Redis answered again and are retried with backoff; what they repair is not trusted meanwhile."}),
		stepFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "brook_redis_recovery_step_failures_total",
			Help: "Attempts of a recovery step that failed."}),
	}
	g.healthy.Set(1)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.healthy, g.opens, g.failed, g.pending, g.stepFailures)
	}
	return g
}

// Attach installs the guard on rdb, a *redis.Client or a
// *redis.ClusterClient; the probe pings through it.
func (g *Guard) Attach(rdb redis.UniversalClient) {
	g.rdb = rdb
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		g.cluster = &clusterState{client: cc, pinger: newClusterPinger(cc)}
	} else {
		opts := *rdb.(*redis.Client).Options()
		opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns, opts.MaxRetries = 1, 0, 1, -1
		opts.ContextTimeoutEnabled = true
		// The options' maintenance-notification state belongs to rdb; the
		// pinger needs none.
		opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		g.pinger = redis.NewClient(&opts)
	}
	rdb.AddHook(g)
	g.mu.Lock()
	if !g.closed {
		g.running.Add(1)
		go g.run()
	}
	g.mu.Unlock()
}

// OnRecover adds a recovery step: fn runs once after each outage, when
// Redis answers a probe again and before the circuit closes. A step that
// fails does not hold the circuit open (Redis answers; one write it
// refuses, out of memory or read-only, must not refuse everything else):
// it is retried alone, with backoff, until it succeeds, and whoever relies
// on what it repairs must check for themselves meanwhile (as chat's unread
// counts do, reading PostgreSQL until SettleUnread succeeds).
func (g *Guard) OnRecover(fn func(context.Context) error) {
	g.mu.Lock()
	// A step added during an outage is owed for it, as if it had been
	// there when the circuit opened.
	g.repairs = append(g.repairs, &repair{fn: fn, owed: g.open.Load()})
	g.mu.Unlock()
}

// AfterRecover adds an announcement: fn runs once after each outage,
// just after the circuit closed, and after the recovery steps. It is for
// telling others that Redis is back (the bus's gap to its subscribers),
// who may then use Redis at once: before the circuit closes they would be
// refused. It runs on the guard's goroutine, and must not block.
func (g *Guard) AfterRecover(fn func()) {
	g.mu.Lock()
	g.announce = append(g.announce, fn)
	g.mu.Unlock()
}

// Healthy reports whether the circuit is closed.
func (g *Guard) Healthy() bool { return !g.open.Load() }

// Opened returns a channel closed when the circuit next opens (at once
// closed, if it is open now).
func (g *Guard) Opened() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// Err returns ErrUnavailable while the circuit is open, nil otherwise:
// for callers that talk to Redis outside the hook (pub/sub).
func (g *Guard) Err() error {
	if g.open.Load() {
		return &UnavailableError{Err: errOpen}
	}
	return nil
}

// LogLevel is the level to log a failed command's error at: Debug for one
// the open circuit refused (the guard logged the outage once), Warn
// otherwise.
func LogLevel(err error) slog.Level {
	if errors.Is(err, errOpen) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// Close stops the probe and the retries of recovery steps.
func (g *Guard) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.running.Wait()
	if g.pinger != nil {
		_ = g.pinger.Close()
	}
	if g.cluster != nil {
		_ = g.cluster.pinger.Close()
	}
}

type backgroundKey struct{}

// Background marks ctx as background work: its commands get the longer
// BackgroundTimeout.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

type probeKey struct{}

// DialHook is go-redis's dial hook; dials are bounded by the command's
// deadline already.
func (g *Guard) DialHook(next redis.DialHook) redis.DialHook { return next }

// ping sends the guard's PING: to the one server, or to every master of
// a cluster.
func (g *Guard) ping(ctx context.Context) error {
	if g.cluster != nil {
		return g.cluster.ping(ctx)
	}
	return g.pinger.Ping(ctx).Err()
}

// ProcessHook bounds one command and counts its failure.
func (g *Guard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(parent context.Context, cmd redis.Cmder) error {
		ctx, cancel, err := g.begin(parent)
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		defer cancel()
		err = g.end(parent, next(ctx, cmd))
		if err != nil {
			cmd.SetErr(err)
		}
		return err
	}
}

// ProcessPipelineHook bounds one pipeline (or MULTI) as one command.
func (g *Guard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(parent context.Context, cmds []redis.Cmder) error {
		ctx, cancel, err := g.begin(parent)
		if err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		defer cancel()
		err = g.end(parent, next(ctx, cmds))
		if errors.Is(err, ErrUnavailable) {
			for _, c := range cmds {
				if c.Err() != nil && !errors.Is(c.Err(), ErrUnavailable) {
					c.SetErr(&UnavailableError{Err: c.Err()})
				}
			}
		}
		return err
	}
}

// begin refuses a command while the circuit is open (but for the probe's)
// and gives it the guard's deadline, unless the caller's is sooner.
func (g *Guard) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if g.open.Load() && ctx.Value(probeKey{}) == nil {
		g.failed.Inc()
		return ctx, nil, &UnavailableError{Err: errOpen}
	}
	timeout := g.opts.Timeout
	if ctx.Value(backgroundKey{}) != nil {
		timeout = g.opts.BackgroundTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	return tctx, cancel, nil
}

// end classifies a command's result. A failure for want of an answer is
// wrapped in UnavailableError and counted towards opening the circuit;
// any answer from Redis (redis.Nil and error replies included) resets the
// count. When the caller gave up first (its request ended, its own
// deadline passed), nothing is known about Redis.
func (g *Guard) end(parent context.Context, err error) error {
	clusterDown := g.cluster != nil && isClusterDown(err)
	if err == nil || errors.Is(err, redis.Nil) || (isReply(err) && !clusterDown) {
		g.failures.Store(0)
		return err
	}
	if callerGaveUp(parent) || !(isTransport(err) || clusterDown) {
		return err
	}
	g.failed.Inc()
	if g.cluster != nil {
		g.cluster.failed()
	}
	if int(g.failures.Add(1)) >= g.opts.Failures {
		g.suspect(err)
	}
	return &UnavailableError{Err: err}
}

// callerGaveUp reports whether the caller's context has ended, or its
// deadline passed (the socket's deadline can fire before the context's
// timer does).
func callerGaveUp(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !isTransport(err)
}

func isTransport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || isEOF(err)
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// suspect asks the guard's goroutine for a check, unless one is asked
// for already or the circuit is open.
func (g *Guard) suspect(cause error) {
	if g.open.Load() {
		return
	}
	select {
	case g.suspects <- cause:
	default:
	}
}

// Suspect asks for a check that Redis answers at all, as a run of failed
// commands does: for callers that wait on Redis outside the hook (a
// subscription's confirmation).
func (g *Guard) Suspect() { g.suspect(errors.New("a subscription waits for its confirmation")) }
