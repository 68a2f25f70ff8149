// Package feeds is Brook's activity feeds product: users post activities
// to their feeds, the timelines that follow them receive them (pushed by
// workers for ordinary actors, merged at read time for actors with more
// followers than the pull threshold), aggregated and notification feeds
// group them, with reactions, seen and read state and live updates. Its
// Service owns the product's rules: who may do what, validation, the
// transaction, and what follows the commit; its outbox jobs call the same
// Service.
package feeds

import (
	"log/slog"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Options are what the feeds Service works with.
type Options struct {
	Store *store.Store
	State *ephemeral.State
	Bus   *bus.Bus
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// PullThreshold is FEED_PULL_THRESHOLD: actors with more followers are
	// merged into timelines at read time instead of fanned out (0: the
	// default).
	PullThreshold int
}

// Service is the feeds product.
type Service struct {
	store *store.Store
	state *ephemeral.State
	bus   *bus.Bus
	log   *slog.Logger
}

// New returns the feeds Service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, state: opts.State, bus: opts.Bus, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// RegisterJobs gives the workers the feeds product's jobs.
func (s *Service) RegisterJobs(r *workers.Runner) {}
