// Package calls is Brook's video-call signaling product: calls with
// members and hosts, sessions that start with the first join, an SFU media
// server assigned per session, and WebRTC signaling relayed between
// participants. Its Service owns the product's rules, the transaction and
// what follows the commit, and the call runtime (participants' liveness
// and their signal streams), started and stopped with the node.
package calls

import (
	"context"
	"log/slog"
	"time"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Options are what the calls Service works with.
type Options struct {
	Store *store.Store
	State *ephemeral.State
	Bus   *bus.Bus
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// SFUNodes are the SFU media servers sessions are assigned to
	// (SFU_NODES); none means sfu.Default.
	SFUNodes []sfu.Node
	// ParticipantTimeout is how long a participant stays without a
	// callEvents subscription (CALL_PARTICIPANT_TIMEOUT; 0: 30 s).
	ParticipantTimeout time.Duration
}

// Service is the calls product.
type Service struct {
	store *store.Store
	state *ephemeral.State
	bus   *bus.Bus
	log   *slog.Logger
	opts  Options
}

// New returns the calls Service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, state: opts.State, bus: opts.Bus, log: opts.Logger, opts: opts}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// RegisterJobs gives the workers the calls product's jobs.
func (s *Service) RegisterJobs(r *workers.Runner) {}

// Start starts the call runtime.
func (s *Service) Start(ctx context.Context) {}

// Stop stops the call runtime and waits for it.
func (s *Service) Stop() {}
