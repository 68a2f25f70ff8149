// Package workers runs Brook's background work: the jobs that mutations
// write to the outbox (fan-out, unread bookkeeping, timeouts) and periodic
// repair passes. Any number of worker processes on any number of nodes share
// the queue; every job is idempotent, so a retry after a crash neither
// duplicates nor misses anything.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/internal/tracing"
	"github.com/brookhq/brook/store"
)

// Handler does one job inside the transaction that claimed it: its writes
// commit together with the job's deletion, or not at all. It may return a
// function to run after the commit, for effects outside PostgreSQL
// (publishing events, Redis bookkeeping).
type Handler func(ctx context.Context, tx *store.Store, job store.Job) (after func(context.Context), err error)

// WakeTopic is the bus topic that tells workers on every node that new jobs
// are waiting. It only shortens the wait: workers poll anyway.
const WakeTopic = "jobs:wake"

// Wake tells the workers of every node to look for new jobs now.
func Wake(ctx context.Context, b *bus.Bus) {
	_ = b.PublishRaw(ctx, WakeTopic, nil)
}

// Options tunes a Runner.
type Options struct {
	// Concurrency is the number of jobs run at once (default 2).
	Concurrency int
	// BatchSize is how many jobs one transaction claims (default 16).
	BatchSize int
	// PollInterval is the longest a worker waits before looking for jobs
	// when it has not been woken (default 250ms).
	PollInterval time.Duration
	// MaxAttempts is how often a job may fail before it is parked (default 10).
	MaxAttempts int
	// Logger receives job failures; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the queue metrics; nil means none.
	Registerer prometheus.Registerer
	// Tracer, if set, makes a span of every job run, in the trace of the
	// request or job that enqueued it (tracing.Provider.TracerProvider).
	Tracer trace.TracerProvider
}

// Runner claims and runs jobs.
type Runner struct {
	store *store.Store
	bus   *bus.Bus
	opts  Options
	log   *slog.Logger

	tracer    trace.Tracer
	handlers  map[string]Handler
	alone     map[string]bool
	schedules map[string]time.Duration
	wake      chan struct{}

	ready  prometheus.Gauge
	lag    prometheus.Gauge
	parked prometheus.Gauge
	runs   *prometheus.CounterVec
}

// New returns a Runner with every job kind Brook knows registered.
func New(s *store.Store, b *bus.Bus, opts Options) *Runner {
	setDefault(&opts.Concurrency, 2)
	setDefault(&opts.BatchSize, 16)
	setDefault(&opts.PollInterval, 250*time.Millisecond)
	setDefault(&opts.MaxAttempts, 10)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Runner{
		store:     s,
		bus:       b,
		opts:      opts,
		log:       opts.Logger,
		handlers:  map[string]Handler{},
		alone:     map[string]bool{},
		schedules: map[string]time.Duration{},
		wake:      make(chan struct{}, 1),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_jobs_ready", Help: "Outbox jobs waiting to run now."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_jobs_lag_seconds", Help: "How long the oldest ready job has waited."}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brook_jobs_parked", Help: "Jobs that failed too often and wait for a person."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brook_jobs_runs_total", Help: "Job runs by kind and outcome."}, []string{"kind", "outcome"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.ready, r.lag, r.parked, r.runs)
	}
	if opts.Tracer != nil {
		r.tracer = opts.Tracer.Tracer(tracing.Name)
	}
	return r
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Handle registers the handler of a job kind.
func (r *Runner) Handle(kind string, h Handler) { r.handlers[kind] = h }

// HandleAlone registers the handler of a kind of large job (a page of a
// fan-out, say): such jobs are claimed one per transaction, so the pages
// of one fan-out run in parallel on every free worker rather than in one
// worker's batch.
func (r *Runner) HandleAlone(kind string, h Handler) {
	r.handlers[kind] = h
	r.alone[kind] = true
}

// Every registers a periodic job: fn runs about every interval, on one node
// of the cluster at a time (the job is a single row in the outbox).
func (r *Runner) Every(kind string, interval time.Duration, fn Handler) {
	r.schedules[kind] = interval
	id := PeriodicJobID(kind)
	r.handlers[kind] = func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		after, err := fn(ctx, tx, job)
		if err != nil {
			return nil, err
		}
		if err := tx.RescheduleJob(ctx, id, time.Now().Add(interval)); err != nil {
			return nil, err
		}
		return after, errKeepJob
	}
}

// errKeepJob tells run that the handler rescheduled its job rather than
// finished it.
var errKeepJob = errors.New("workers: keep job")

// PeriodicJobID is the fixed job id of a periodic job kind: its one row
// in the outbox, always waiting for its next run.
func PeriodicJobID(kind string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("brook-periodic:"+kind))
}

// Wake makes an idle worker of this runner look for jobs now.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run runs jobs until ctx ends, then finishes the batch in hand and returns.
func (r *Runner) Run(ctx context.Context) error {
	// Jobs' Redis bookkeeping may be large (counters of a thousand
	// members): it gets the longer background timeout.
	ctx = redisguard.Background(ctx)
	for kind, interval := range r.schedules {
		if err := r.store.ScheduleJob(ctx, PeriodicJobID(kind), kind, time.Now().Add(interval)); err != nil {
			return err
		}
	}
	var kinds, large []string
	for k := range r.handlers {
		if r.alone[k] {
			large = append(large, k)
		} else {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	slices.Sort(large)

	var wg sync.WaitGroup
	if r.bus != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.listenForWake(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watchQueue(ctx)
	}()
	for i := 0; i < r.opts.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, kinds, large)
		}()
	}
	wg.Wait()
	return nil
}

// loop claims and runs batches until ctx ends: a batch of ordinary jobs,
// then one large job.
func (r *Runner) loop(ctx context.Context, kinds, large []string) {
	for ctx.Err() == nil {
		// A batch in hand finishes even when ctx ends during it: shutdown
		// drains work rather than abandoning it half done.
		n, err := r.runBatch(context.WithoutCancel(ctx), kinds, r.opts.BatchSize)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("workers: claim failed", "err", err)
		}
		m := 0
		if len(large) > 0 && ctx.Err() == nil {
			var lerr error
			m, lerr = r.runBatch(context.WithoutCancel(ctx), large, 1)
			if lerr != nil && ctx.Err() == nil {
				r.log.Warn("workers: claim failed", "err", lerr)
				err = lerr
			}
		}
		if n == r.opts.BatchSize || m > 0 {
			continue
		}
		wait := r.opts.PollInterval
		if err != nil {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(wait):
		}
	}
}

// RunOnce claims one batch of ready jobs of the given kinds and runs it in
// one transaction, each job under its own savepoint. It returns how many
// jobs it claimed.
func (r *Runner) RunOnce(ctx context.Context, kinds []string) (int, error) {
	return r.runBatch(redisguard.Background(ctx), kinds, r.opts.BatchSize)
}

// runBatch claims up to limit ready jobs of the given kinds and runs them.
func (r *Runner) runBatch(ctx context.Context, kinds []string, limit int) (int, error) {
	if len(kinds) == 0 {
		return 0, nil
	}
	var afters []func(context.Context)
	var claimed int
	err := r.store.InTx(ctx, func(tx *store.Store) error {
		afters = afters[:0]
		jobs, err := tx.ClaimJobs(ctx, kinds, limit)
		if err != nil {
			return err
		}
		claimed = len(jobs)
		for _, job := range jobs {
			after, err := r.run(ctx, tx, job)
			if err != nil {
				return err
			}
			if after != nil {
				afters = append(afters, after)
			}
		}
		return nil
	})
	if err != nil {
		return claimed, fmt.Errorf("workers: %w", err)
	}
	for _, after := range afters {
		after(ctx)
	}
	return claimed, nil
}

// run runs one claimed job under a savepoint. A failing job is rolled back
// alone and rescheduled with backoff (or parked), and the batch goes on;
// only a failure to record that aborts the batch.
func (r *Runner) run(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	h := r.handlers[job.Kind]
	start := time.Now()
	var after func(context.Context)
	var span trace.Span
	if r.tracer != nil {
		ctx, span = r.startSpan(ctx, job)
		defer span.End()
	}
	err := tx.InTx(ctx, func(sp *store.Store) error {
		var err error
		after, err = safely(ctx, h, sp, job)
		if errors.Is(err, errKeepJob) {
			return nil
		}
		if err != nil {
			return err
		}
		return sp.CompleteJob(ctx, job.ID)
	})
	if span != nil {
		endSpan(span, err)
		after = traceAfter(ctx, after)
	}
	if err == nil {
		r.runs.WithLabelValues(job.Kind, "done").Inc()
		r.log.Debug("job done", "kind", job.Kind, "id", job.ID, "ms", time.Since(start).Milliseconds())
		return after, nil
	}
	if tx.ConnClosed() {
		return nil, err
	}
	park := job.Attempts+1 >= r.opts.MaxAttempts
	retryAt := time.Now().Add(backoff(job.Attempts))
	if park {
		r.runs.WithLabelValues(job.Kind, "parked").Inc()
		r.log.Error("job failed too often; parked", "kind", job.Kind, "id", job.ID, "attempts", job.Attempts+1, "err", err)
	} else {
		r.runs.WithLabelValues(job.Kind, "failed").Inc()
		r.log.Warn("job failed; will retry", "kind", job.Kind, "id", job.ID, "attempt", job.Attempts+1, "retry_at", retryAt, "err", err)
	}
	return nil, tx.FailJob(ctx, job.ID, err.Error(), retryAt, park)
}

// safely runs a handler, turning a panic into an error so one bad job
// cannot take the worker down.
func safely(ctx context.Context, h Handler, tx *store.Store, job store.Job) (after func(context.Context), err error) {
	if h == nil {
		return nil, fmt.Errorf("no handler for job kind %q", job.Kind)
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return h(ctx, tx, job)
}

// backoff is the delay before retry n+1: exponential from 1s, capped at 10
// minutes, with jitter so failed jobs do not retry in lockstep.
func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 10)
	d = min(d, 10*time.Minute)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// listenForWake wakes this runner when any node publishes on WakeTopic.
func (r *Runner) listenForWake(ctx context.Context) {
	for ctx.Err() == nil {
		sub, err := r.bus.Subscribe(ctx, WakeTopic)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for range sub.C {
			for i := 0; i < r.opts.Concurrency; i++ {
				r.Wake()
			}
		}
	}
}

// watchQueue keeps the queue gauges current.
func (r *Runner) watchQueue(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if st, err := r.store.JobStats(ctx); err == nil {
			r.ready.Set(float64(st.Ready))
			r.lag.Set(st.Lag.Seconds())
			r.parked.Set(float64(st.Parked))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
