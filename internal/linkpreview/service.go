package linkpreview

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// ServiceOptions tune a Service. Zero values take the defaults.
type ServiceOptions struct {
	Fetch Options
	// CacheTTL is how long what a URL gave is reused (1 day,
	// BROOK_PREVIEW_CACHE_TTL), a page without preview included.
	CacheTTL time.Duration
	// Attempts is how many times a job tries a URL that fails
	// transiently (timeouts, 5xx) before it gives up without a preview
	// (5: about 15 s of retries with the workers' backoff).
	Attempts int
	// Workers is how many preview jobs a node runs at once, on workers of
	// their own so a slow site delays no other job (2,
	// BROOK_PREVIEW_WORKERS).
	Workers int
	Logger  *slog.Logger
	// Registerer receives brook_link_previews_total; nil: none.
	Registerer prometheus.Registerer
}

// Service makes the link previews of the products' preview jobs: from the
// cache, or by fetching.
type Service struct {
	fetcher *Fetcher
	opts    ServiceOptions
	log     *slog.Logger
	wake    func()
	results *prometheus.CounterVec
}

// New returns a Service.
func New(opts ServiceOptions) *Service {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 24 * time.Hour
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{fetcher: NewFetcher(opts.Fetch), opts: opts, log: opts.Logger, wake: func() {},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brook_link_previews_total",
			Help: "Link preview lookups by outcome: cached, fetched, none (the page gives none), failed (transient), gave_up."},
			[]string{"outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.results)
	}
	return s
}

// Runner returns the preview workers of a node: apart from the node's
// other workers, claiming one job per transaction, woken by the products
// on this node (not through the bus, which every sent message would
// reach) and polling every second meanwhile. Register the products'
// preview jobs on it.
func (s *Service) Runner(st *store.Store) *workers.Runner {
	r := workers.New(st, nil, workers.Options{Concurrency: s.opts.Workers, BatchSize: 1, PollInterval: time.Second,
		MaxAttempts: 2 * s.opts.Attempts, Logger: s.log})
	s.RegisterJobs(r)
	return r
}

// cleanupKind is the periodic job that deletes cached previews older than
// the TTL.
const cleanupKind = "preview.cache_cleanup"

// RegisterJobs gives r, the preview workers, the cache cleanup; the
// products' jobs wake r (Wake) once they commit a preview job.
func (s *Service) RegisterJobs(r *workers.Runner) {
	s.wake = r.Wake
	every := min(s.opts.CacheTTL, time.Hour)
	r.Every(cleanupKind, every, func(ctx context.Context, tx *store.Store, _ store.Job) (func(context.Context), error) {
		_, err := tx.DeleteOldPreviews(ctx, time.Now().Add(-s.opts.CacheTTL), 1000)
		return nil, err
	})
}

// Drop gives r handlers that end the preview jobs without a preview: for
// nodes with previews off, so jobs queued while they were on do not wait
// in the outbox forever (nor count as its lag).
func Drop(r *workers.Runner) {
	for _, kind := range []string{store.PreviewMessageKind, store.PreviewActivityKind, cleanupKind} {
		r.Handle(kind, func(context.Context, *store.Store, store.Job) (func(context.Context), error) { return nil, nil })
	}
}

// Wake makes this node's preview workers look for jobs now. A nil
// Service does nothing.
func (s *Service) Wake() {
	if s != nil {
		s.wake()
	}
}

// Target is what a product does with a preview job's message or activity.
type Target struct {
	// Wants reports whether the message or activity still wants a preview
	// of the URL (it exists, still has the URL, has no preview yet): a
	// job whose target does not is dropped before anything is fetched.
	Wants func(ctx context.Context, tx *store.Store, p store.PreviewJob) (bool, error)
	// Add adds the preview (under the same conditions, checked again in
	// its statement) and returns what to publish after the commit.
	Add func(ctx context.Context, tx *store.Store, p store.PreviewJob, a store.Attachment) (func(context.Context), error)
}

// Handler is the job handler of a product's preview job kind (payload
// store.PreviewJob). A transient failure fails the job, which the workers
// retry with backoff, until Attempts: then it ends without a preview. A
// page that gives none ends it at once.
func (s *Service) Handler(t Target) workers.Handler {
	return func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		var p store.PreviewJob
		if err := job.Decode(&p); err != nil {
			return nil, err
		}
		if ok, err := t.Wants(ctx, tx, p); err != nil || !ok {
			return nil, err
		}
		a, err := s.Preview(ctx, tx, p.URL)
		if err != nil {
			if job.Attempts+1 >= s.opts.Attempts {
				s.results.WithLabelValues("gave_up").Inc()
				s.log.Info("link preview: giving up", "url", p.URL, "attempts", job.Attempts+1, "err", err)
				return nil, nil
			}
			return nil, err
		}
		if a == nil {
			return nil, nil
		}
		return t.Add(ctx, tx, p, *a)
	}
}

// Preview returns the LINK attachment of url, from the cache when it was
// fetched within the TTL, or nil when the page gives none. An error is
// transient: trying again later may give one.
func (s *Service) Preview(ctx context.Context, tx *store.Store, url string) (*store.Attachment, error) {
	a, found, err := tx.CachedPreview(ctx, url, time.Now().Add(-s.opts.CacheTTL))
	if err != nil {
		return nil, err
	}
	if found {
		s.results.WithLabelValues("cached").Inc()
		return a, nil
	}
	p, err := s.fetcher.Fetch(ctx, url)
	switch {
	case errors.Is(err, ErrPermanent):
		s.results.WithLabelValues("none").Inc()
		s.log.Debug("link preview: none", "url", url, "err", err)
		return nil, tx.SavePreview(ctx, url, nil)
	case err != nil:
		s.results.WithLabelValues("failed").Inc()
		return nil, err
	}
	s.results.WithLabelValues("fetched").Inc()
	a = &store.Attachment{Type: store.AttachmentLink, URL: url, Title: &p.Title,
		Description: nonEmpty(p.Description), ImageURL: nonEmpty(p.ImageURL)}
	return a, tx.SavePreview(ctx, url, a)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
