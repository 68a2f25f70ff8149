// Package redisguard keeps a Redis that hangs from hanging Brook. It is a
// go-redis hook that gives every command a short deadline and opens a
// circuit after a few failures in a row: while it is open, commands fail
// at once with ErrUnavailable (callers fall back to PostgreSQL, which holds
// the truth), and a probe pings Redis until it answers. Before the circuit
// closes, the recovery hooks run, so state written while Redis was away is
// made right before anyone reads it again.
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
	rdb  *redis.Client
	// pinger has a connection of its own, so that the check measures
	// Redis, not the wait for a connection of the busy pool.
	pinger *redis.Client

	failures atomic.Int32
	open     atomic.Bool

	mu        sync.Mutex
	opened    chan struct{} // closed when the circuit next opens
	recovered []func(context.Context) error
	checking  bool
	closed    bool
	stop      chan struct{}
	checkDone sync.WaitGroup

	healthy prometheus.Gauge
	opens   prometheus.Counter
	failed  prometheus.Counter
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
		opts:   opts,
		log:    opts.Logger,
		opened: make(chan struct{}),
		stop:   make(chan struct{}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "brook_redis_healthy",
			Help: "1 while Redis answers; 0 while the circuit is open and reads go to PostgreSQL."}),
		opens: prometheus.NewCounter(prometheus.CounterOpts{Name: "brook_redis_circuit_opened_total",
			Help: "Times Redis stopped answering and the circuit opened."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "brook_redis_command_failures_total",
			Help: "Redis commands that failed for want of an answer (timeouts, broken connections, the open circuit)."}),
	}
	g.healthy.Set(1)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.healthy, g.opens, g.failed)
	}
	return g
}

// Attach installs the guard on rdb; the probe pings through it.
func (g *Guard) Attach(rdb *redis.Client) {
	g.rdb = rdb
	opts := *rdb.Options()
	opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns, opts.MaxRetries = 1, 0, 1, -1
	opts.ContextTimeoutEnabled = true
	// The options' maintenance-notification state belongs to rdb; the
	// pinger needs none.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	g.pinger = redis.NewClient(&opts)
	rdb.AddHook(g)
}

// OnRecover adds fn to what runs, after Redis answers a probe again and
// before the circuit closes. An error keeps the circuit open and the
// probe going.
func (g *Guard) OnRecover(fn func(context.Context) error) {
	g.mu.Lock()
	g.recovered = append(g.recovered, fn)
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

// Close stops the probe.
func (g *Guard) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.checkDone.Wait()
	if g.pinger != nil {
		_ = g.pinger.Close()
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
	if err == nil || errors.Is(err, redis.Nil) || isReply(err) {
		g.failures.Store(0)
		return err
	}
	if callerGaveUp(parent) || !isTransport(err) {
		return err
	}
	g.failed.Inc()
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

// suspect starts the check, unless one runs or the circuit is open.
func (g *Guard) suspect(cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checking || g.closed || g.rdb == nil {
		return
	}
	g.checking = true
	g.checkDone.Add(1)
	go g.check(cause)
}

// Suspect asks for a check that Redis answers at all, as a run of failed
// commands does: for callers that wait on Redis outside the hook (a
// subscription's confirmation).
func (g *Guard) Suspect() { g.suspect(errors.New("a subscription waits for its confirmation")) }

// check tells a slow Redis from one that does not answer: it pings with
// the longer VerifyTimeout, and a Redis that answers is left alone
// (commands that timed out meanwhile went to PostgreSQL one by one).
// One that does not gets the circuit opened, and is pinged every
// ProbeInterval until it answers; then the recovery hooks run and the
// circuit closes.
func (g *Guard) check(cause error) {
	defer g.checkDone.Done()
	defer func() {
		g.mu.Lock()
		g.checking = false
		g.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.VerifyTimeout)
	err := g.pinger.Ping(ctx).Err()
	cancel()
	if err == nil {
		g.failures.Store(0)
		return
	}
	g.open.Store(true)
	g.opens.Inc()
	g.healthy.Set(0)
	g.log.Warn("redis: not answering; circuit open, reads go to PostgreSQL until it recovers", "err", cause, "ping", err)
	g.mu.Lock()
	close(g.opened)
	g.mu.Unlock()
	tick := time.NewTicker(g.opts.ProbeInterval)
	defer tick.Stop()
	started := time.Now()
	for {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		if g.tryRecover() {
			g.log.Info("redis: answering again; circuit closed", "after", time.Since(started).Round(time.Millisecond))
			return
		}
	}
}

func (g *Guard) tryRecover() bool {
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), probeKey{}, true), max(g.opts.Timeout, 200*time.Millisecond))
	defer cancel()
	if err := g.pinger.Ping(ctx).Err(); err != nil {
		return false
	}
	g.mu.Lock()
	hooks := append([]func(context.Context) error(nil), g.recovered...)
	g.mu.Unlock()
	for _, fn := range hooks {
		if err := fn(ctx); err != nil {
			g.log.Warn("redis: recovery step failed; circuit stays open", "err", err)
			return false
		}
	}
	g.mu.Lock()
	g.failures.Store(0)
	g.open.Store(false)
	g.opened = make(chan struct{})
	g.mu.Unlock()
	g.healthy.Set(1)
	return true
}
