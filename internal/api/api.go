// Package api serves Brook's GraphQL API over HTTP and WebSocket: the gqlgen
// handler with its transports, limits and caches, sign-in, GraphiQL,
// health and metrics. It sits between the HTTP server and the resolvers.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	gqllru "github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/gorilla/websocket"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/fastpath"
	"github.com/brookhq/brook/internal/tracing"
	"github.com/brookhq/brook/resolvers"
	"github.com/brookhq/brook/store"
)

// Options configures the API. Zero limits take the defaults below.
type Options struct {
	// Resolver is the products as GraphQL resolves them.
	Resolver *resolvers.Resolver
	// State holds rate-limit budgets, presence and persisted queries.
	State *ephemeral.State
	// Store is PostgreSQL, for the health check.
	Store *store.Store
	Keys  *auth.Keys
	// Logger receives request logs; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives metrics and is served at /metrics; nil makes one.
	Registry *prometheus.Registry

	// Dev allows browser pages on any localhost origin.
	Dev bool
	// Addr is the address the server was told to listen on (BROOK_ADDR).
	// In dev mode, POST /dev/token accepts its host in the Host header,
	// besides localhost and loopback addresses.
	Addr string
	// AllowedOrigins lists browser origins allowed to call the API ("*": any).
	AllowedOrigins string
	// Introspection and Playground turn on schema introspection and GraphiQL.
	Introspection bool
	Playground    bool
	// NoFastPath leaves every operation to gqlgen's execution, for the
	// differential test (see package fastpath).
	NoFastPath bool
	// WebDir holds the built web app (web/dist): the demo app served at
	// /app/ and a self-hosted GraphiQL (graphiql.html) served at /. Without
	// it, / serves GraphiQL from a CDN.
	WebDir string
	// Files, if set, serves the local file store's signed URLs at
	// blob.FilesPath (uploads and downloads).
	Files http.Handler
	// Tracing makes a span of every HTTP request, WebSocket connection
	// and GraphQL operation (nil: off).
	Tracing *tracing.Provider

	ComplexityLimit int
	DepthLimit      int
	TokenLimit      int
	// WebsocketWriteTimeout bounds one write to a client that stopped reading.
	WebsocketWriteTimeout time.Duration
	// PingInterval is how often the server pings graphql-transport-ws
	// clients; a client that misses two pongs is disconnected.
	PingInterval time.Duration

	Limits
}

// Limits are the abuse limits the API enforces (configured from the
// environment; see docs/operations.md). Zero values take the defaults.
type Limits struct {
	// MaxBodyBytes caps an HTTP request body.
	MaxBodyBytes int64
	// MaxWebsocketMessage caps one WebSocket message from a client, in bytes.
	MaxWebsocketMessage int64
	// AliasLimit caps the aliased fields of one operation.
	AliasLimit int
	// BatchLimit caps the operations of one batched HTTP request.
	BatchLimit int
	// MaxSubscriptionsPerConnection caps the operations running at once on
	// one WebSocket connection.
	MaxSubscriptionsPerConnection int
	// MaxConnectionsPerUser caps a user's open WebSocket connections across
	// all nodes (0: no cap).
	MaxConnectionsPerUser int
	// RatePerIP and RatePerUser are request budgets shared by all nodes
	// (zero: off). SendRates are the budgets of mutations that send
	// (messages, signals, activities), per user, by root field name.
	RatePerIP   ephemeral.Rate
	RatePerUser ephemeral.Rate
	SendRates   map[string]ephemeral.Rate
}

// Defaults for the limits.
const (
	DefaultComplexityLimit               = 5000
	DefaultDepthLimit                    = 12
	DefaultTokenLimit                    = 10000
	DefaultMaxWebsocketMessage           = 256 << 10
	DefaultMaxBodyBytes                  = 1 << 20
	DefaultAliasLimit                    = 50
	DefaultBatchLimit                    = 10
	DefaultMaxSubscriptionsPerConnection = 100
)

// Server is the HTTP handler of one Brook node.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	gql      *handler.Server
	auth     *authenticator
	present  graphql.ErrorPresenterFunc
	metrics  *metrics
	presence *presence
	pinger   *pinger
	upgrader *websocket.Upgrader
	shared   sharedResponses
	plans    plans
	apqLocal *lru.Cache[string, string]
	origins  *originPolicy
	blocks   addressBlocks

	shuttingDown atomic.Bool
	wsMu         sync.Mutex
	wsConns      sync.WaitGroup
	wsCtx        context.Context
	wsCancel     context.CancelFunc
	stopPresence context.CancelFunc
	presenceDone chan struct{}
}

// New builds the API. Call Shutdown to close its WebSocket connections.
func New(opts Options) (*Server, error) {
	if opts.Resolver == nil || opts.State == nil || opts.Store == nil || opts.Keys == nil {
		return nil, errors.New("api: Resolver, State, Store and Keys are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	setDefault(&opts.ComplexityLimit, DefaultComplexityLimit)
	setDefault(&opts.DepthLimit, DefaultDepthLimit)
	setDefault(&opts.TokenLimit, DefaultTokenLimit)
	setDefault(&opts.MaxWebsocketMessage, DefaultMaxWebsocketMessage)
	setDefault(&opts.WebsocketWriteTimeout, 10*time.Second)
	setDefault(&opts.PingInterval, 20*time.Second)
	setDefault(&opts.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&opts.AliasLimit, DefaultAliasLimit)
	setDefault(&opts.BatchLimit, DefaultBatchLimit)
	setDefault(&opts.MaxSubscriptionsPerConnection, DefaultMaxSubscriptionsPerConnection)

	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		auth:    newAuthenticator(opts.Keys, opts.Resolver.People),
		present: presentError(opts.Logger),
		metrics: newMetrics(opts.Registry),
		origins: newOriginPolicy(opts.AllowedOrigins, opts.Dev),
	}
	s.apqLocal, _ = lru.New[string, string](1000)
	s.wsCtx, s.wsCancel = context.WithCancel(context.Background())

	res := opts.Resolver
	s.presence = &presence{state: opts.State, log: opts.Logger, conns: map[string]string{}, announce: res.People.AnnouncePresence}
	cfg := graph.Config{Resolvers: res}
	resolvers.SetComplexity(&cfg.Complexity)
	s.pinger = newPinger(opts.PingInterval, 15*time.Second)
	s.upgrader = s.newUpgrader()
	s.gql = s.newGraphQLHandler(graph.NewExecutableSchema(cfg))

	presenceCtx, stop := context.WithCancel(context.Background())
	s.stopPresence, s.presenceDone = stop, make(chan struct{})
	go func() {
		defer close(s.presenceDone)
		s.presence.run(presenceCtx)
	}()

	s.mux = http.NewServeMux()
	if opts.Playground {
		if hasFile(opts.WebDir, "graphiql.html") {
			page := filepath.Join(opts.WebDir, "graphiql.html")
			s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, page) })
		} else {
			s.mux.Handle("GET /{$}", playground.Handler("Brook", "/query"))
		}
	}
	if hasFile(opts.WebDir, "index.html") {
		s.mux.Handle("GET /app/", s.serveApp())
		s.mux.Handle("GET /app", http.RedirectHandler("/app/", http.StatusMovedPermanently))
	}
	if opts.Dev {
		s.mux.HandleFunc("POST /dev/token", s.serveDevToken)
	}
	s.mux.Handle("/query", s.cors(withErrorCodes(http.HandlerFunc(s.serveGraphQL))))
	if opts.Files != nil {
		s.mux.Handle(blob.FilesPath, opts.Files)
	}
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// newGraphQLHandler assembles gqlgen's handler with explicit transports and
// extensions, in the order gqlgen runs them.
func (s *Server) newGraphQLHandler(schema graphql.ExecutableSchema) *handler.Server {
	srv := handler.New(schema)
	srv.AddTransport(wsTransport{s})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postTransport{}) // transport.POST's, writing data-only responses as they are

	srv.SetQueryCache(gqllru.New[*ast.QueryDocument](1000))
	srv.SetErrorPresenter(s.present)
	srv.SetRecoverFunc(recoverPanic(s.log))
	srv.SetParserTokenLimit(s.opts.TokenLimit)

	if s.opts.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(persistedQueries{extension.AutomaticPersistedQuery{Cache: apqCache{server: s}}})
	srv.Use(numberLiterals{})
	srv.Use(&complexityLimit{max: s.opts.ComplexityLimit})
	srv.Use(depthLimit{max: s.opts.DepthLimit})
	srv.Use(aliasLimit{max: s.opts.AliasLimit})

	if ext := s.opts.Tracing.GraphQL(); ext != nil {
		if op, ok := ext.(graphql.OperationInterceptor); ok {
			ext = untracedEvents{HandlerExtension: ext, op: op}
		}
		srv.Use(ext)
	}
	srv.AroundOperations(s.aroundOperation)
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(withLookupStops(ctx))
	})
	srv.AroundOperations(s.readYourWrites)
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		// Fresh dataloaders for every response: per query or mutation, and per
		// subscription event, never one cache for a connection's whole life.
		resp := next(resolvers.WithLoaders(ctx, s.opts.Resolver.NewLoaders()))
		s.metrics.observeResponse(ctx, resp, s.log)
		return resp
	})
	if !s.opts.NoFastPath {
		// Inside the loaders' interceptor: the resolvers it calls use them.
		srv.AroundResponses(fastpath.New(s.opts.Resolver, schema.Schema(), s.opts.Registry).AroundResponses)
	}
	// Outermost: an event executed from a subscription's plan skips the
	// resolver (ws_replay.go).
	srv.AroundFields(subscriptionSource)
	srv.AroundFields(markResolverErrors)
	return srv
}

// withLookupStops ends gqlgen's context lookups at the operation. For every
// object it marshals, gqlgen asks the context for an input path context and
// a field context; at the root of a response there is neither, so each
// lookup walked the whole chain above the operation (about 20 layers on a
// WebSocket, each a cache miss once a thousand connections share the cores:
// 7% of the CPU of delivering chat messages). An empty path context and an
// empty root field context, like the one gqlgen itself pushes for each root
// type, answer those lookups here and change no path.
func withLookupStops(ctx context.Context) context.Context {
	if graphql.GetFieldContext(ctx) != nil {
		return ctx
	}
	ctx = graphql.WithPathContext(ctx, nil)
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{})
}

// RefuseAtCapacity answers a request that arrived on a connection past the
// total connection cap: 503 UNAVAILABLE with Retry-After.
func (s *Server) RefuseAtCapacity() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errAtConnectionCap) })
}

// Handler returns the HTTP handler: GraphiQL at /, the API at /query,
// /healthz and /metrics.
func (s *Server) Handler() http.Handler { return s.opts.Tracing.HTTP(logRequests(s.log, s.mux)) }

// serveGraphQL routes /query: WebSocket upgrades authenticate in their
// connection_init message, every other request needs a token up front
// (but for introspection in dev mode: see requireTokenOrDevIntrospection).
func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	address := ephemeral.Budget{Key: "ip:" + clientIP(r), Rate: s.opts.RatePerIP, What: "requests from your address"}
	if websocket.IsWebSocketUpgrade(r) {
		if err := s.opts.State.AllowAll(r.Context(), address); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.serveWebsocket(w, r)
		return
	}
	if err := s.blocks.check(address); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Not a WebSocket upgrade: any other Upgrade header (curl --http2 sends
	// "h2c") must not steer the request to gqlgen's WebSocket transport.
	r.Header.Del("Upgrade")
	charge := &addressCharge{address: address}
	r = r.WithContext(context.WithValue(r.Context(), addressChargeKey{}, charge))
	w = &refusalWriter{ResponseWriter: w, charge: charge}
	defer s.settle(r.Context(), w, charge)
	if r.Method == http.MethodPost {
		body, err := readBody(w, r, s.opts.MaxBodyBytes)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if isBatch(body) {
			s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveBatch(w, r, body) })).ServeHTTP(w, r)
			return
		}
	}
	s.requireTokenOrDevIntrospection(s.gql).ServeHTTP(w, r)
}

// serveWebsocket hands a WebSocket upgrade to the transport (wsTransport),
// which serves the connection from a goroutine of its own. The connection's
// context ends when the client leaves or when the server shuts down:
// http.Server.Shutdown does not touch hijacked connections, so Shutdown
// cancels them itself and waits for them.
func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !s.origins.allowWebsocket(r) {
		// Cross-site WebSocket hijacking: a page on a foreign origin is
		// trying to use the visitor's connection.
		s.writeError(w, r, auth.Forbidden("WebSocket connections from origin %q are not allowed; add it to BROOK_ALLOWED_ORIGINS", r.Header.Get("Origin")))
		return
	}
	s.wsMu.Lock()
	if s.shuttingDown.Load() {
		s.wsMu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	// The connection's goroutine is done with it when it ends.
	s.wsConns.Add(1)
	s.wsMu.Unlock()

	acc := &wsAccept{}
	s.gql.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsAcceptKey{}, acc)))
	if !acc.accepted {
		s.wsConns.Done()
	}
}

// Shutdown closes every WebSocket connection with a close frame (1001,
// going away) and waits for their handlers to finish or ctx to end. Call it
// alongside http.Server.Shutdown, which drains the other requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.wsMu.Lock()
	s.shuttingDown.Store(true)
	s.wsMu.Unlock()
	s.wsCancel()
	s.stopPresence()
	done := make(chan struct{})
	go func() {
		s.wsConns.Wait()
		<-s.presenceDone
		s.pinger.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cors lets allowed browser origins call /query.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && s.origins.allows(origin, r.Host) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Max-Age", "600")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveHealth answers 200 when PostgreSQL and Redis both answer, 503 otherwise.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	pg, rd := "ok", "ok"
	if err := s.opts.Store.Ping(ctx); err != nil {
		pg = "unreachable"
	}
	if err := s.opts.State.Ping(ctx); err != nil {
		rd = "unreachable"
	}
	status := "ok"
	if pg != "ok" || rd != "ok" {
		status = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(`{"status":"` + status + `","postgres":"` + pg + `","redis":"` + rd + `"}` + "\n"))
}
