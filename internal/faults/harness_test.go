package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/client"
	nodes "github.com/brookhq/brook/internal/cluster"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
)

// secret signs the tokens of every fault test.
const secret = "faults-secret-faults-secret-faults-0123456789"

// binDir holds the Brook binary the tests build once.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "brook-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// brookBinary builds the Brook server from this module, once per test
// binary. BROOK_FAULTS_BIN names a binary to use instead: one built from
// an earlier commit shows which faults a change fixed.
func brookBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("BROOK_FAULTS_BIN"); bin != "" {
		return bin
	}
	build.once.Do(func() {
		path := filepath.Join(binDir, "brook")
		out, err := exec.Command("go", "build", "-o", path, "github.com/brookhq/brook").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("build brook: %w\n%s", err, out)
			return
		}
		build.path = path
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// cluster is one test's own PostgreSQL and Redis servers, which the test
// may kill and restart, with clients for checking the truth.
type cluster struct {
	pg    *local.Postgres
	redis *local.Redis
	// DatabaseURL and RedisURL stay valid across restarts (same ports).
	DatabaseURL string
	RedisURL    string
	// DB and RDB are the test's own connections, for seeding and checking.
	DB   *pgxpool.Pool
	RDB  *redis.Client
	keys *auth.Keys
}

// newCluster starts PostgreSQL and Redis for one test and migrates the
// database. A durable PostgreSQL syncs its commits as production does, so
// that a crash of it loses nothing that was acknowledged.
func newCluster(t *testing.T, durable bool) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pg, err := local.StartPostgres(ctx, filepath.Join(dir, "postgres"), durable)
	if errors.Is(err, local.ErrMissingBinary) && os.Getenv("DATABASE_URL") != "" {
		// Servers given by URL cannot be killed and restarted by a test.
		t.Skipf("fault tests need the PostgreSQL and Redis server binaries to start and kill their own servers: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Kill() })
	if err := pg.CreateDatabase(ctx, "brook"); err != nil {
		t.Fatal(err)
	}
	r, err := local.StartRedis(ctx, filepath.Join(dir, "redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	c := &cluster{pg: pg, redis: r, DatabaseURL: pg.URL("brook"), RedisURL: r.URL()}
	if err := migrations.Apply(ctx, c.DatabaseURL); err != nil {
		t.Fatal(err)
	}
	if c.DB, err = pgxpool.New(ctx, c.DatabaseURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.DB.Close)
	c.RDB = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port)})
	t.Cleanup(func() { _ = c.RDB.Close() })
	c.keys, _ = auth.NewKeys([]byte(secret))
	return c
}

// token signs a token for user, valid for an hour.
func (c *cluster) token(t testing.TB, user string, admin bool) string {
	tok, err := c.keys.Issue(user, admin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// proc is a Brook process (`brook serve` or `brook worker`).
type proc struct {
	*nodes.Process
	// URL is the base URL of a serving process.
	URL string
}

// startBrook starts the Brook binary with args (nil: serve) on the
// cluster; env adds to or overrides its environment. It returns once the
// process serves (/healthz answers) or, for a worker, once it runs.
func (c *cluster) startBrook(t *testing.T, args []string, env map[string]string) *proc {
	t.Helper()
	bin := brookBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	vars := map[string]string{
		"DATABASE_URL": c.DatabaseURL, "REDIS_URL": c.RedisURL, "BROOK_JWT_SECRET": secret,
		"BROOK_ADDR": addr, "BROOK_DATA_DIR": dir, "BROOK_LOG_LEVEL": "info",
		// The tests generate load from a few users and addresses: rate
		// limits stay on (their Redis round trip is part of every request)
		// but never refuse it.
		"BROOK_RATE_IP": "10000000/s", "BROOK_RATE_USER": "10000000/s",
		"BROOK_RATE_ADD_ACTIVITY": "10000000/s", "BROOK_RATE_SEND_MESSAGE": "10000000/s",
		"BROOK_RATE_SEND_SIGNAL": "10000000/s", "BROOK_RATE_TYPING": "10000000/s",
		"BROOK_MAX_CONNECTIONS_PER_USER": "0",
		// Every client comes from 127.0.0.1, thousands of them at once.
		"BROOK_MAX_CONNECTIONS_PER_ADDRESS": "0", "BROOK_SHUTDOWN_TIMEOUT_SECONDS": "5",
	}
	for k, v := range env {
		vars[k] = v
	}
	environ := make([]string, 0, len(vars))
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	started, err := nodes.StartProcess(bin, args, environ, filepath.Join(dir, "brook.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: started, URL: "http://" + addr}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("log of brook %v (pid %d), request lines left out:\n%s\nits last lines:\n%s",
				args, p.Pid(), tailString(withoutRequests(p.Log()), 8000), tailString(p.Log(), 2000))
		}
	})
	worker := len(args) > 0 && args[0] == "worker"
	deadline := time.Now().Add(60 * time.Second)
	for {
		if worker {
			if strings.Contains(p.Log(), "worker running") {
				return p
			}
		} else if resp, err := http.Get(p.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.Done():
			t.Fatalf("brook %v exited: %s", args, tailString(p.Log(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("brook %v not ready after 60s: %s", args, tailString(p.Log(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 15 s).
func (p *proc) Stop() { p.StopWithin(15 * time.Second) }

// Client is an HTTP GraphQL client for the process acting with token.
func (p *proc) Client(token string) *client.Client { return client.New(p.URL, token) }

// users creates users through the API, 100 per request.
func (c *cluster) users(t *testing.T, p *proc, ids ...string) {
	t.Helper()
	admin := p.Client(c.token(t, "faults-admin", true))
	for i := 0; i < len(ids); i += 100 {
		batch := make([]map[string]any, 0, 100)
		for _, u := range ids[i:min(i+100, len(ids))] {
			batch = append(batch, map[string]any{"id": u, "name": u})
		}
		if err := admin.Run(context.Background(), `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`,
			client.Vars{"u": batch}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond until it holds, failing the test after timeout.
// It is a liveness bound, not a timing assertion: the timeouts are far
// above what the conditions take.
// state, if given, describes the last state seen, for the failure message.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool, state ...*string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			last := ""
			if len(state) > 0 {
				last = " (last: " + *state[0] + ")"
			}
			t.Fatalf("%s: not true within %s%s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// codeOf returns the extensions.code of a failed operation, "" for a
// success, and "transport: ..." when no GraphQL answer came at all.
func codeOf(r *client.Response, err error) string {
	if err != nil {
		var ce *client.CloseError
		if errors.As(err, &ce) {
			return fmt.Sprintf("closed %d", ce.Code)
		}
		return "transport: " + err.Error()
	}
	if len(r.Errors) == 0 {
		return ""
	}
	if c := r.Code(); c != "" {
		return c
	}
	return "error without a code: " + r.Errors[0].Message
}

// percentile returns the q-quantile of ds (sorting them).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// withoutRequests leaves out the access log's lines, one per request, so
// that a failure shows what else the server said.
func withoutRequests(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "msg=request ") {
			b.WriteString(line)
		}
	}
	return b.String()
}
