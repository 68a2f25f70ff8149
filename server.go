// Brook is an open-source backend for activity feeds, chat and video-call
// signaling: one Go server with a GraphQL API, on PostgreSQL and Redis.
//
// Usage:
//
//	brook                      serve the API (the default)
//	brook token <user> [--admin] [--ttl 24h]
//	                           print a signed token for a user
//	brook migrate              apply database migrations and exit
//	brook worker               run background workers only, no HTTP
//
// Configuration comes from the environment; see README.md. With
// DATABASE_URL and REDIS_URL unset, Brook starts private PostgreSQL and
// Redis servers under BROOK_DATA_DIR (./.data).
package main

//go:generate go run ./internal/listloop/gen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/migrations"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/uploads"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

func main() {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brook: configuration:", err)
		os.Exit(2)
	}
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		err = run(ctx, cfg, os.Stdout, nil)
	case "worker":
		cfg.Serve = false
		err = run(ctx, cfg, os.Stdout, nil)
	case "token":
		err = printToken(cfg, args, os.Stdout)
	case "migrate":
		err = migrate(ctx, cfg)
	default:
		err = fmt.Errorf("unknown command %q; use serve, worker, token or migrate", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "brook:", err)
		os.Exit(1)
	}
}

// newLogger returns the process logger. Tokens and secrets are never logged.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// jwtSecret returns the configured secret or, with none configured, one
// generated once and kept in the data directory, so `brook token` and the
// server agree without any setup.
func jwtSecret(cfg Config) ([]byte, error) {
	if cfg.JWTSecret != "" {
		return []byte(cfg.JWTSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= auth.MinSecretLen {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(buf)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.DataDir, err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return []byte(secret), nil
}

// printToken implements `brook token <user_id> [--admin] [--ttl 24h]`.
func printToken(cfg Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	admin := fs.Bool("admin", false, "give the token the admin role")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid (0: forever)")
	var user string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		user, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if user == "" && fs.NArg() > 0 {
		user = fs.Arg(0)
	}
	if user == "" {
		return errors.New("usage: brook token <user_id> [--admin] [--ttl 24h]")
	}
	if err := store.CheckUserID("user_id", user); err != nil {
		return err
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(secret)
	if err != nil {
		return err
	}
	tok, err := keys.Issue(user, *admin, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

// migrate implements `brook migrate`: it migrates DATABASE_URL, or the
// private server under the data directory when that is unset.
func migrate(ctx context.Context, cfg Config) error {
	url := cfg.DatabaseURL
	if url == "" {
		pg, err := local.StartPostgres(ctx, filepath.Join(cfg.DataDir, "postgres"), true)
		if err != nil {
			return err
		}
		defer pg.Stop()
		if err := pg.CreateDatabase(ctx, "brook"); err != nil {
			return err
		}
		url = pg.URL("brook")
	}
	if err := migrations.Apply(ctx, url); err != nil {
		return err
	}
	v, err := migrations.Version(ctx, url)
	if err != nil {
		return err
	}
	fmt.Printf("database is at migration %d\n", v)
	return nil
}

// run starts a Brook node and serves until ctx ends, then shuts down
// gracefully. ready, if set, gets the listening address once serving.
func run(ctx context.Context, cfg Config, out io.Writer, ready func(addr string)) error {
	log := newLogger(cfg, out)
	if cfg.HeapFloor > 0 {
		floorCtx, stopFloor := context.WithCancel(ctx)
		floorDone := make(chan struct{})
		go func() {
			defer close(floorDone)
			keepHeapFloor(floorCtx, cfg.HeapFloor, log)
		}()
		defer func() {
			stopFloor()
			<-floorDone
		}()
	}
	secret, err := jwtSecret(cfg)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeys(secret)
	if err != nil {
		return fmt.Errorf("BROOK_JWT_SECRET: %w", err)
	}

	env, err := local.Dev(ctx, cfg.DataDir, cfg.DatabaseURL, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer env.Close()
	if env.Postgres != nil || env.Redis != nil {
		log.Info("started private servers", "dir", cfg.DataDir, "postgres", env.Postgres != nil, "redis", env.Redis != nil)
	}
	if err := migrations.Apply(ctx, env.DatabaseURL); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	files, err := openFiles(cfg.Uploads, secret)
	if err != nil {
		return err
	}
	traces, err := openTracing(ctx, log)
	if err != nil {
		return err
	}
	// Deferred before the node's Close, so it runs after it: the spans of
	// the last jobs are flushed too.
	defer shutdownTracing(traces, log)
	n, err := node.Open(ctx, node.Options{DatabaseURL: env.DatabaseURL, ReplicaURLs: cfg.ReplicaURLs, ReplicaMaxLag: cfg.ReplicaMaxLag, RedisURL: env.RedisURL, RedisPrefix: cfg.RedisPrefix,
		RedisTimeout: cfg.RedisTimeout, Logger: log, Registerer: reg, Tracing: traces,
		FeedPullThreshold: cfg.FeedPullThreshold, FeedCommentDepth: cfg.FeedCommentDepth, ChatPushMemberLimit: cfg.ChatPushMemberLimit,
		SFUNodes: cfg.SFUNodes, CallParticipantTimeout: cfg.CallParticipantTimeout, CallRingTimeout: cfg.CallRingTimeout, CallSFUTokenTTL: cfg.CallSFUTokenTTL, CallEventRate: cfg.CallEventRate,
		Workers: workers.Options{Concurrency: cfg.Workers},
		Webhooks: webhooks.Options{Timeout: cfg.WebhookTimeout, MaxAttempts: cfg.WebhookMaxAttempts, Concurrency: cfg.WebhookConcurrency,
			Retention: cfg.WebhookRetention, BeforeSend: cfg.BeforeSend},
		Push:     push.Options{Senders: cfg.PushSenders},
		Previews: cfg.Previews,

		Uploads:         uploads.Options{Blob: files, Limits: cfg.Uploads.Limits},
		UploadOrphanAge: cfg.Uploads.OrphanAge})
	if err != nil {
		return err
	}
	// Close runs on every return, after the workers drained (Stop, below):
	// no worker outlives the store it uses.
	defer n.Close()
	n.Start(ctx)
	defer n.Stop()

	if !cfg.Serve {
		log.Info("worker running", "concurrency", cfg.Workers)
		<-ctx.Done()
		log.Info("worker stopping")
		return nil
	}

	srv, err := api.New(api.Options{
		Resolver: n.Resolver, State: n.State, Store: n.Store, Keys: keys, Logger: log, Registry: reg, Dev: cfg.Dev, Addr: cfg.Addr,
		AllowedOrigins: cfg.AllowedOrigins, Introspection: cfg.Introspection, Playground: cfg.Playground, WebDir: cfg.WebDir,
		ComplexityLimit: cfg.ComplexityLimit, DepthLimit: cfg.DepthLimit, TokenLimit: cfg.TokenLimit,
		Limits: cfg.Limits, Files: n.Uploads.Handler(), Tracing: traces,
	})
	if err != nil {
		return err
	}
	ln, err := listen(cfg, log, reg)
	if err != nil {
		return err
	}
	if addr := os.Getenv("BROOK_PPROF_ADDR"); addr != "" {
		// Profiling for benchmarks and incidents, on its own listener (never
		// on the public one): go tool pprof http://ADDR/debug/pprof/profile.
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go func() { log.Warn("pprof listener stopped", "err", http.ListenAndServe(addr, pm)) }()
		log.Info("pprof listening", "addr", addr)
	}
	if local, ok := files.(*blob.Local); ok && cfg.Uploads.PublicURL == "" {
		local.SetBaseURL(publicURLOf(ln.Addr()))
	}
	httpSrv := newHTTPServer(cfg.HTTP, ln, srv.Handler(), srv.RefuseAtCapacity())
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	addr := ln.Addr().String()
	log.Info("serving", "addr", addr)
	if cfg.Dev {
		// The docs' examples run as these users, as pasted.
		if err := n.People.AddIfMissing(ctx, demoUsers); err != nil {
			return err
		}
	}
	if cfg.Dev || env.Postgres != nil {
		printWelcome(ctx, out, log, addr, keys, cfg)
	}
	if ready != nil {
		ready(addr)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: closing connections and draining work", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var wsErr, httpErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		wsErr = srv.Shutdown(shutdownCtx)
	}()
	go func() {
		defer wg.Done()
		httpErr = httpSrv.Shutdown(shutdownCtx)
	}()
	wg.Wait()
	var errs []error
	if wsErr != nil {
		errs = append(errs, fmt.Errorf("close websockets: %w", wsErr))
	}
	if httpErr != nil {
		errs = append(errs, fmt.Errorf("drain http: %w", httpErr))
	}
	n.Stop()
	log.Info("stopped")
	return errors.Join(errs...)
}
