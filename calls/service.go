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
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Options are what the calls Service works with.
type Options struct {
	product.Parts
	// SFUNodes are the SFU media servers sessions are assigned to
	// (SFU_NODES); none means sfu.Default.
	SFUNodes []sfu.Node
	// ParticipantTimeout is how long a participant stays without a
	// callEvents subscription (CALL_PARTICIPANT_TIMEOUT; 0:
	// DefaultParticipantTimeout). The repair pass gives participants Redis
	// lost this long too.
	ParticipantTimeout time.Duration
	// SweepInterval is how often the participant-timeout sweep runs, on
	// one node of the cluster (0: every second).
	SweepInterval time.Duration
	// RingTimeout is how long a ring rings before it is missed
	// (CALL_RING_TIMEOUT; 0: DefaultRingTimeout).
	RingTimeout time.Duration
	// RingPolicy, when set, adjusts a call's ring settings after its call
	// type has given them (the defaults passed in).
	RingPolicy func(callType string, defaults RingSettings) RingSettings
	// SFUTokenTTL is how long a participant's SFU token is valid
	// (CALL_SFU_TOKEN_TTL; 0: DefaultSFUTokenTTL).
	SFUTokenTTL time.Duration
	// EventRate limits each participant's sendCallEvent
	// (BROOK_RATE_CALL_EVENT; zero: DefaultEventRate; a negative Rate: no
	// limit).
	EventRate ephemeral.Rate
}

// DefaultParticipantTimeout is how long a participant stays in a call
// without a callEvents subscription (CALL_PARTICIPANT_TIMEOUT).
const DefaultParticipantTimeout = 30 * time.Second

// Service is the calls product.
type Service struct {
	store *store.Store
	// hooks takes the calls' webhook events (hooks.go).
	hooks *webhooks.Service
	// push queues ring pushes to offline devices (writeRings).
	push       *push.Service
	state      *ephemeral.State
	bus        *bus.Bus
	log        *slog.Logger
	nodes      []sfu.Node
	timeout    time.Duration
	sweepEvery time.Duration
	// ringTimeout and ringPolicy give calls their RingSettings.
	ringTimeout time.Duration
	ringPolicy  func(string, RingSettings) RingSettings
	// sfuTokenTTL is how long SFU tokens are valid.
	sfuTokenTTL time.Duration
	// eventRate limits each participant's custom events.
	eventRate ephemeral.Rate

	// facts caches participants' immutable facts (user, session, call) so
	// the signaling path authorizes without any round trip. Entries of
	// participants still in the call are cached only while the node hears
	// LeftTopic (cacheLive), and only if no departure arrived during the
	// lookup (generation), so a departure is never missed; a departed
	// participant is cached for good (leaving is final).
	facts      *lru.Cache[uuid.UUID, *store.CallParticipant]
	cacheLive  atomic.Bool
	generation atomic.Uint64

	liveness liveness

	// watching is set once the watch on departures has started (runtime).
	watching atomic.Bool
	// mu guards runCtx (what Start gave, nil before) and stopped (set by
	// Stop), so that nothing starts once Stop waits; stop ends what Start
	// started and running counts its goroutines.
	mu      sync.Mutex
	runCtx  context.Context
	stopped bool
	stop    context.CancelFunc
	running sync.WaitGroup
}

// factsCacheSize bounds the in-process facts cache (about 200 bytes each).
const factsCacheSize = 100_000

// New returns the calls Service. Start it to run the call runtime.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, state: opts.State, bus: opts.Bus, log: opts.Log(), hooks: opts.Hooks, push: opts.Push,
		nodes: opts.SFUNodes, timeout: opts.ParticipantTimeout, sweepEvery: opts.SweepInterval,
		ringTimeout: opts.RingTimeout, ringPolicy: opts.RingPolicy, sfuTokenTTL: opts.SFUTokenTTL, eventRate: opts.EventRate}
	if s.eventRate == (ephemeral.Rate{}) {
		s.eventRate = DefaultEventRate
	}
	if len(s.nodes) == 0 {
		s.nodes = sfu.Default
	}
	if s.timeout <= 0 {
		s.timeout = DefaultParticipantTimeout
	}
	if s.ringTimeout <= 0 {
		s.ringTimeout = DefaultRingTimeout
	}
	if s.sfuTokenTTL <= 0 {
		s.sfuTokenTTL = DefaultSFUTokenTTL
	}
	if s.sweepEvery <= 0 {
		s.sweepEvery = time.Second
	}
	s.facts, _ = lru.New[uuid.UUID, *store.CallParticipant](factsCacheSize)
	s.liveness = liveness{state: s.state, timeout: s.timeout, log: s.log, held: map[uuid.UUID]int{}, ctx: context.Background()}
	return s
}

// Start starts the call runtime: the watch on departures that keeps the
// facts cache honest, from the first use of the product on this node (a
// node that serves no calls holds no subscription for them), and, while
// this node holds callEvents streams, the refresher of their
// participants' liveness. Both end with ctx or Stop.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx != nil || s.stopped {
		return
	}
	s.runCtx, s.stop = context.WithCancel(ctx)
	s.liveness.start(s.runCtx, &s.running)
}

// Stop stops the call runtime and waits for it.
func (s *Service) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.liveness.stopped()
	if s.stop != nil {
		s.stop()
	}
	s.running.Wait()
}

// runtime starts the watch on departures when the product is first used
// on this node, and waits briefly for it to be live, so the cache works
// from the first signal; without it lookups just skip the cache. Before
// Start and after Stop it starts nothing (the cache stays off).
func (s *Service) runtime() {
	if s.watching.Load() {
		return
	}
	s.mu.Lock()
	if s.watching.Load() || s.runCtx == nil || s.stopped {
		s.mu.Unlock()
		return
	}
	s.watching.Store(true)
	ctx := s.runCtx
	s.running.Add(1)
	s.mu.Unlock()
	ready := make(chan struct{})
	go func() {
		defer s.running.Done()
		s.watchDepartures(ctx, ready)
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Second):
	}
}
