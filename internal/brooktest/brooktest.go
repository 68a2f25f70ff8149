// Package brooktest runs real Brook nodes for integration tests: each node
// has its own store, bus, workers and API on a loopback HTTP server, over the
// test binary's private PostgreSQL database and Redis server. Nothing is
// mocked. It also has small GraphQL clients for HTTP and WebSocket.
package brooktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/migrations"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/uploads"
	"github.com/brookhq/brook/workers"
)

// Secret is the JWT secret of every test node.
const Secret = "brooktest-secret-brooktest-secret-0123456789"

// Env is a test binary's environment: a migrated database and a Redis server.
type Env struct {
	*local.Env
	Keys *auth.Keys
	// FilesDir is the local file store every node of the binary shares:
	// nodes share the database, so a job one node queued (deleting a
	// message's files, say) may run on another, as in a deployment where
	// nodes share a volume or a bucket. Empty means one per node.
	FilesDir string
}

// Main is a TestMain for packages that run Brook nodes: it starts the
// environment, migrates it, runs the tests, and cleans up.
//
//	var env *brooktest.Env
//	func TestMain(m *testing.M) { brooktest.Main(m, &env) }
func Main(m *testing.M, env **Env) {
	files, err := os.MkdirTemp("", "brook-files-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test files directory:", err)
		os.Exit(1)
	}
	code := local.TestMain(m, func(e *local.Env) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := migrations.Apply(ctx, e.DatabaseURL); err != nil {
			return err
		}
		keys, err := auth.NewKeys([]byte(Secret))
		if err != nil {
			return err
		}
		*env = &Env{Env: e, Keys: keys, FilesDir: files}
		return nil
	})
	os.RemoveAll(files)
	os.Exit(code)
}

// Token returns a token for user, valid for an hour.
func (e *Env) Token(t testing.TB, user string) string {
	return e.token(t, user, false, time.Hour)
}

// AdminToken returns an admin token for user, valid for an hour.
func (e *Env) AdminToken(t testing.TB, user string) string {
	return e.token(t, user, true, time.Hour)
}

func (e *Env) token(t testing.TB, user string, admin bool, ttl time.Duration) string {
	t.Helper()
	tok, err := e.Keys.Issue(user, admin, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// StoreOptions are the store options of the environment.
func (e *Env) StoreOptions() store.Options {
	return store.Options{DatabaseURL: e.DatabaseURL, Logger: quietLogger()}
}

// OpenStore opens a store on the environment, closed when the test ends.
// adjust, if given, changes the options first.
func (e *Env) OpenStore(t testing.TB, adjust ...func(*store.Options)) *store.Store {
	t.Helper()
	opts := e.StoreOptions()
	for _, f := range adjust {
		if f != nil {
			f(&opts)
		}
	}
	s, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NodeOptions tunes a test node.
type NodeOptions struct {
	// Workers is the number of job workers; zero means one, negative none.
	Workers int
	// Node, Runner and API adjust the node's options before it starts.
	Node   func(*node.Options)
	Runner func(*workers.Options)
	API    func(*api.Options)
	// Logger receives the node's logs; nil discards them unless
	// BROOK_TEST_LOG is set.
	Logger *slog.Logger
}

// Node is one running Brook node.
type Node struct {
	*node.Node
	// URL is the node's base URL (http://127.0.0.1:port).
	URL      string
	API      *api.Server
	Registry *prometheus.Registry

	server  *httptest.Server
	stopped sync.Once
}

// StartNode starts a node that stops when the test ends.
func (e *Env) StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	logger := opts.Logger
	if logger == nil {
		logger = quietLogger()
	}
	n := &Node{Registry: prometheus.NewRegistry()}
	// Listening before the node opens: the local file store signs URLs
	// with the node's address.
	n.server = httptest.NewUnstartedServer(nil)
	n.URL = "http://" + n.server.Listener.Addr().String()
	dir := e.FilesDir
	if dir == "" {
		dir = t.TempDir()
	}
	files, err := blob.NewLocal(dir, uploads.DeriveSecret([]byte(Secret)), n.URL)
	if err != nil {
		t.Fatal(err)
	}
	no := node.Options{DatabaseURL: e.DatabaseURL, RedisURL: e.RedisURL, RedisPrefix: e.RedisPrefix, Logger: logger, Registerer: n.Registry,
		Uploads: uploads.Options{Blob: files}}
	if opts.Workers >= 0 {
		no.Workers = workers.Options{Concurrency: max(opts.Workers, 1), PollInterval: 50 * time.Millisecond}
		if opts.Runner != nil {
			opts.Runner(&no.Workers)
		}
	}
	if opts.Node != nil {
		opts.Node(&no)
	}
	if no.ReplicaURLs == nil {
		// BROOK_TEST_PG=replica: the replica of whichever database the node uses.
		no.ReplicaURLs = e.ReplicaURLsFor(no.DatabaseURL)
	}
	if n.Node, err = node.Open(context.Background(), no); err != nil {
		n.server.Close()
		t.Fatal(err)
	}
	n.Start(context.Background())
	apiOpts := api.Options{
		Resolver: n.Resolver, State: n.State, Store: n.Store, Keys: e.Keys, Logger: logger, Registry: n.Registry,
		Introspection: true, Playground: true,
	}
	if n.Uploads != nil {
		apiOpts.Files = n.Uploads.Handler()
	}
	if opts.API != nil {
		opts.API(&apiOpts)
	}
	srv, err := api.New(apiOpts)
	if err != nil {
		n.server.Close()
		n.Close()
		t.Fatal(err)
	}
	n.API = srv
	n.server.Config.Handler = srv.Handler()
	n.server.Start()
	t.Cleanup(n.Stop)
	return n
}

// Stop shuts the node down as SIGTERM would: WebSocket clients get a close
// frame, in-flight requests finish, workers drain. It is safe to call twice.
func (n *Node) Stop() {
	n.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.API.Shutdown(ctx)
		n.server.Close()
		n.Node.Close()
	})
}

// WaitSubscribed waits for just-started subscriptions to go live: a
// moment for the server to take them, then until every topic the node's
// bus holds has its Redis subscription (on a cluster's shard, a new
// connection may take longer than the moment). An event published before
// that is not lost to a stream with replay, but a test counting events
// must not race it.
func (n *Node) WaitSubscribed(t testing.TB) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for _, topic := range n.Bus.Topics() {
		for {
			c, err := n.Bus.RedisSubscribers(ctx, topic)
			if err == nil && c > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic %s not subscribed in Redis after 10 s: %d, %v", topic, c, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// WaitForJobs waits until the outbox holds no ready job, or fails the test.
func (n *Node) WaitForJobs(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := n.Store.JobStats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready == 0 && st.Parked == 0 {
			return
		}
		if st.Parked > 0 {
			parked, _ := n.Store.ParkedJobs(context.Background(), 5)
			t.Fatalf("jobs parked: %+v", parked)
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still waiting after 30s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func quietLogger() *slog.Logger {
	if os.Getenv("BROOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Eventually retries cond until it holds or 10 seconds pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Querier runs a query that returns one row: a pool, a connection or a
// transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// BackendPID returns the server process of tx, for LockWaiters. It asks
// the server rather than taking the pid pgx got at connect: behind a
// transaction pooler (PgBouncer) that one is the pooler's, not the
// PostgreSQL backend's that holds the transaction's locks.
func BackendPID(t testing.TB, tx Querier) uint32 {
	t.Helper()
	var pid int32
	if err := tx.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatalf("brooktest: backend pid: %v", err)
	}
	return uint32(pid)
}

// LockWaiters counts the sessions waiting for a lock held by the session
// whose backend pid is holder, directly or queued behind another such
// waiter. Tests that stage a race by holding a row lock count their own
// waiters this way, never those of the tests and test binaries that share
// the PostgreSQL server with them.
func LockWaiters(t testing.TB, db Querier, holder uint32) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `
		WITH RECURSIVE waiter(pid) AS (
			SELECT pid FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))
			UNION
			SELECT a.pid FROM pg_stat_activity a JOIN waiter w ON w.pid = ANY (pg_blocking_pids(a.pid))
		)
		SELECT count(*) FROM waiter`, int32(holder)).Scan(&n); err != nil {
		t.Fatalf("brooktest: count lock waiters: %v", err)
	}
	return n
}

// Tag returns a random tag of 8 hex digits, for names that must not
// collide with those of other tests sharing the database.
func Tag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AddUsers creates users (with an admin token), each named after its id
// with a capital first letter.
func (e *Env) AddUsers(t testing.TB, n *Node, ids ...string) {
	t.Helper()
	users := make([]map[string]any, len(ids))
	for i, id := range ids {
		users[i] = map[string]any{"id": id, "name": strings.ToUpper(id[:1]) + id[1:]}
	}
	n.Must(t, e.AdminToken(t, "root"), `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`, Vars{"u": users}, nil)
}

// Count runs a query that returns one number, as the tests count rows.
func (n *Node) Count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var c int
	if err := n.Store.DB().QueryRow(context.Background(), sql, args...).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}
