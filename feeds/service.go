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
	"time"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Options are what the feeds Service works with.
type Options struct {
	product.Parts
	// PullThreshold is FEED_PULL_THRESHOLD: actors with more followers are
	// merged into timelines at read time instead of fanned out (0:
	// DefaultPullThreshold).
	PullThreshold int
	// CommentDepth is FEED_COMMENT_DEPTH: how deep replies nest, 1 for
	// comments without replies (0: DefaultCommentDepth).
	CommentDepth int
	// UpdateWindow is how often, at most, a feedUpdated stream sends an
	// update of one activity (0: DefaultUpdateWindow; tests set it).
	UpdateWindow time.Duration
	// Previews makes link previews of activities' URLs; nil: none.
	Previews *linkpreview.Service
}

// DefaultPullThreshold is FEED_PULL_THRESHOLD's default: actors with more
// followers than this are merged into timelines at read time.
const DefaultPullThreshold = 10_000

// Service is the feeds product.
type Service struct {
	store         *store.Store
	state         *ephemeral.State
	bus           *bus.Bus
	log           *slog.Logger
	hooks         *webhooks.Service
	pullThreshold int
	commentDepth  int
	updateWindow  time.Duration
	// watch is the node's watch of the activities its feedUpdated streams
	// show (updates.go).
	watch *activityWatch
	// wakeRunner wakes this node's job runner (RegisterJobs), for jobs that
	// leave more jobs; nil until the Service's jobs are registered.
	wakeRunner func()
	// previews is Options.Previews.
	previews *linkpreview.Service
}

// New returns the feeds Service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, state: opts.State, bus: opts.Bus, log: opts.Log(), hooks: opts.Hooks, pullThreshold: opts.PullThreshold}
	if s.pullThreshold <= 0 {
		s.pullThreshold = DefaultPullThreshold
	}
	s.updateWindow = opts.UpdateWindow
	if s.updateWindow <= 0 {
		s.updateWindow = DefaultUpdateWindow
	}
	s.previews = opts.Previews
	s.watch = newActivityWatch(s)
	s.commentDepth = min(opts.CommentDepth, MaxCommentDepth)
	if s.commentDepth <= 0 {
		s.commentDepth = DefaultCommentDepth
	}
	return s
}

// overThreshold is the push/pull rule, the one place it is written: an actor with
// more followers than the threshold is merged into its followers'
// timelines at read time; one with fewer is pushed into them on write.
func overThreshold(followers, threshold int) bool { return followers > threshold }

// pulled reports whether an actor with so many followers is merged at
// read time under this Service's threshold.
func (s *Service) pulled(followers int) bool { return overThreshold(followers, s.pullThreshold) }
