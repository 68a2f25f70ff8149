// Package node assembles one Brook node from its parts, in the one place
// the whole process and the test nodes share: PostgreSQL (store), Redis
// (ephemeral state and the bus), the products and their resolvers, and
// the workers that run the products' jobs. The API in front is the
// caller's (server.go serves it; tests serve it with httptest).
package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/internal/tracing"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/resolvers"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/uploadjobs"
	"github.com/brookhq/brook/uploads"
	"github.com/brookhq/brook/users"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

// Options say where the data lives and how the products behave.
type Options struct {
	DatabaseURL string
	RedisURL    string
	// RedisPrefix namespaces every Redis key and bus topic.
	RedisPrefix string
	// RedisTimeout is REDIS_TIMEOUT (0: 50 ms).
	RedisTimeout time.Duration
	// MaxConns caps the PostgreSQL pool (0: the store's default).
	MaxConns int32
	Logger   *slog.Logger
	// Registerer receives every part's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Tracing traces SQL, Redis, jobs and events (nil: off); the caller
	// owns it and shuts it down after Close.
	Tracing *tracing.Provider

	// FeedPullThreshold is FEED_PULL_THRESHOLD (0: the default).
	FeedPullThreshold int
	// FeedCommentDepth is FEED_COMMENT_DEPTH (0: the default).
	FeedCommentDepth int
	// FeedUpdateWindow is how often, at most, feedUpdated sends an update
	// of one activity (0: feeds.DefaultUpdateWindow); tests lengthen it.
	FeedUpdateWindow time.Duration
	// ChatPushMemberLimit is CHAT_PUSH_MEMBER_LIMIT (0: the default).
	ChatPushMemberLimit int
	// SFUNodes are SFU_NODES (none: sfu.Default).
	SFUNodes []sfu.Node
	// CallParticipantTimeout is CALL_PARTICIPANT_TIMEOUT (0: 30 s).
	CallParticipantTimeout time.Duration
	// CallRingTimeout is CALL_RING_TIMEOUT (0: 30 s).
	CallRingTimeout time.Duration
	// CallSFUTokenTTL is CALL_SFU_TOKEN_TTL (0: 10 minutes).
	CallSFUTokenTTL time.Duration
	// CallEventRate limits each call participant's sendCallEvent (zero:
	// calls.DefaultEventRate).
	CallEventRate ephemeral.Rate
	// CallSweepInterval is how often the call participant-timeout sweep
	// runs, on one node of the cluster (0: every second).
	CallSweepInterval time.Duration

	// Workers tunes the job runner; Workers.Concurrency 0 runs no
	// workers on this node.
	Workers workers.Options
	// Webhooks tunes webhook delivery (BROOK_WEBHOOK_*); its Store, Bus
	// and Logger are the node's.
	Webhooks webhooks.Options
	// Push configures pushes to offline devices (BROOK_FCM_*, ...); its
	// Store, State, Logger and Registerer are the node's. No Senders:
	// push is off.
	Push push.Options
	// Previews tunes link previews (BROOK_PREVIEW_*; its Logger and
	// Registerer are the node's); nil makes none.
	Previews *linkpreview.ServiceOptions
	// Uploads configures file uploads; with no Uploads.Blob they are off
	// (createUpload refuses). Its Store and Logger are the node's.
	Uploads uploads.Options
	// UploadOrphanAge is BROOK_UPLOAD_ORPHAN_AGE: uploads never attached
	// are deleted this long after their creation (0: 24 hours).
	UploadOrphanAge time.Duration
	// ChatRepairInterval is how often the chat unread repair pass runs
	// (0: every minute).
	ChatRepairInterval time.Duration

	// ReplicaURLs (DATABASE_REPLICA_URLS) and ReplicaMaxLag
	// (BROOK_REPLICA_MAX_LAG) are the read replicas; see store.Options.
	ReplicaURLs   []string
	ReplicaMaxLag time.Duration
}

// Node is one Brook node's parts.
type Node struct {
	Store  *store.Store
	State  *ephemeral.State
	Bus    *bus.Bus
	People *users.Service
	Feeds  *feeds.Service
	Chat   *chat.Service
	Calls  *calls.Service
	Hooks  *webhooks.Service
	Push   *push.Service
	// Uploads is nil when uploads are off (no blob store configured).
	Uploads  *uploads.Service
	Resolver *resolvers.Resolver
	// Runner runs the products' jobs; nil when this node runs none.
	Runner *workers.Runner
	// Previews makes link previews (nil: off); PreviewRunner runs their
	// jobs apart from Runner's (nil when this node runs no jobs).
	Previews      *linkpreview.Service
	PreviewRunner *workers.Runner

	log     *slog.Logger
	stop    context.CancelFunc
	running sync.WaitGroup
}

// Open connects to PostgreSQL and Redis and assembles the node. Start it
// to run its workers and engines; Close it when done.
func Open(ctx context.Context, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	state, err := ephemeral.Open(ctx, ephemeral.Options{RedisURL: opts.RedisURL, Prefix: opts.RedisPrefix, Timeout: opts.RedisTimeout,
		Logger: log, Registerer: opts.Registerer})
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Options{DatabaseURL: opts.DatabaseURL, MaxConns: opts.MaxConns, Logger: log, Tracer: opts.Tracing.PGX(),
		ReplicaURLs: opts.ReplicaURLs, ReplicaMaxLag: opts.ReplicaMaxLag})
	if err != nil {
		state.Close()
		return nil, err
	}
	if err := opts.Tracing.InstrumentRedis(state.Redis()); err != nil {
		state.Close()
		st.Close()
		return nil, err
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "brook_sql_statements_total",
			Help: "SQL statements this process has sent to PostgreSQL."}, func() float64 { return float64(st.Statements()) })); err != nil {
			state.Close()
			st.Close()
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	if err := registerReplicaMetrics(opts.Registerer, st); err != nil {
		state.Close()
		st.Close()
		return nil, err
	}
	b := bus.New(state.Redis(), bus.Options{Prefix: opts.RedisPrefix + "bus:", Logger: log, Registerer: opts.Registerer, Health: state.Guard(),
		Tracer: opts.Tracing.TracerProvider()})
	n := &Node{Store: st, State: state, Bus: b, log: log}
	wo := opts.Webhooks
	wo.Store, wo.Bus, wo.Logger = st, b, log
	n.Hooks = webhooks.New(wo)
	if err := n.Hooks.Load(ctx); err != nil {
		state.Close()
		st.Close()
		return nil, err
	}
	po := opts.Push
	po.Store, po.State, po.Logger, po.Registerer = st, state, log, opts.Registerer
	n.Push = push.New(po)
	parts := product.Parts{Store: st, State: state, Bus: b, Hooks: n.Hooks, Push: n.Push, Logger: log}
	if opts.Previews != nil {
		lo := *opts.Previews
		lo.Logger, lo.Registerer = log, opts.Registerer
		n.Previews = linkpreview.New(lo)
	}
	n.People = users.New(parts)
	n.Feeds = feeds.New(feeds.Options{Parts: parts, PullThreshold: opts.FeedPullThreshold, CommentDepth: opts.FeedCommentDepth,
		UpdateWindow: opts.FeedUpdateWindow, Previews: n.Previews})
	n.Chat = chat.New(chat.Options{Parts: parts, PushMemberLimit: opts.ChatPushMemberLimit,
		ReadActivity: func(ctx context.Context, id string) (*store.Activity, error) { return n.Feeds.Activity(ctx, id, nil) },
		Previews:     n.Previews})
	n.Calls = calls.New(calls.Options{Parts: parts,
		SFUNodes: opts.SFUNodes, ParticipantTimeout: opts.CallParticipantTimeout, SweepInterval: opts.CallSweepInterval,
		RingTimeout: opts.CallRingTimeout, SFUTokenTTL: opts.CallSFUTokenTTL, EventRate: opts.CallEventRate})
	if opts.Uploads.Blob != nil {
		uo := opts.Uploads
		uo.Store, uo.Logger = st, log
		n.Uploads = uploads.New(uo)
	}
	n.Resolver = &resolvers.Resolver{People: n.People, Feeds: n.Feeds, Chat: n.Chat, Calls: n.Calls, Hooks: n.Hooks, Push: n.Push, Uploads: n.Uploads, Log: log}
	if opts.Workers.Concurrency > 0 {
		wo := opts.Workers
		if wo.Logger == nil {
			wo.Logger = log
		}
		if wo.Registerer == nil {
			wo.Registerer = opts.Registerer
		}
		if wo.Tracer == nil {
			wo.Tracer = opts.Tracing.TracerProvider()
		}
		n.Runner = workers.New(st, b, wo)
		n.Feeds.RegisterJobs(n.Runner)
		n.Chat.RegisterJobs(n.Runner, opts.ChatRepairInterval)
		n.Calls.RegisterJobs(n.Runner)
		n.Hooks.RegisterJobs(n.Runner)
		n.Push.RegisterJobs(n.Runner)
		if n.Previews != nil {
			n.PreviewRunner = n.Previews.Runner(st)
			n.Chat.RegisterPreviewJobs(n.PreviewRunner)
			n.Feeds.RegisterPreviewJobs(n.PreviewRunner)
		} else {
			linkpreview.Drop(n.Runner)
		}
		if n.Uploads != nil {
			n.Uploads.RegisterJobs(n.Runner)
			// After uploads' own registration: the thumbnail handler here
			// replaces its placeholder for upload.thumbnail.
			uploadjobs.New(uploadjobs.Options{Store: st, Blob: opts.Uploads.Blob, Chat: n.Chat, Feeds: n.Feeds, Logger: log,
				OrphanAge: opts.UploadOrphanAge}).RegisterJobs(n.Runner)
		}
	}
	return n, nil
}

// Start runs the node's workers and the products' engines until Stop.
func (n *Node) Start(ctx context.Context) {
	ctx, n.stop = context.WithCancel(context.WithoutCancel(ctx))
	n.Calls.Start(ctx)
	n.Hooks.Start(ctx, n.Runner != nil)
	for _, r := range []*workers.Runner{n.Runner, n.PreviewRunner} {
		if r == nil {
			continue
		}
		n.running.Add(1)
		go func() {
			defer n.running.Done()
			if err := r.Run(ctx); err != nil {
				n.log.Error("workers stopped", "err", err)
			}
		}()
	}
}

// Stop stops the workers after the batch in hand and the products'
// engines, and waits for them.
func (n *Node) Stop() {
	if n.stop == nil {
		return
	}
	n.stop()
	n.running.Wait()
	n.Hooks.Stop()
	n.Calls.Stop()
}

// Close stops the node and releases its connections.
func (n *Node) Close() {
	n.Stop()
	_ = n.Bus.Close()
	n.State.Close()
	n.Store.Close()
}
