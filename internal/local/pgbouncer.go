package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PoolerExecMode is the pgx query exec mode Brook's connections use behind
// a transaction pooler. PgBouncer before 1.21 keeps no prepared statements
// across transactions, so pgx's default (named statements cached per
// connection) breaks there; cache_describe prepares only the unnamed
// statement, in the same round trip as each query, and caches just the
// result description. See docs/operations.md for the figures.
const PoolerExecMode = "cache_describe"

// PgBouncer is a private PgBouncer in transaction pooling mode, running as
// a child process in front of a PostgreSQL server. Every database of that
// server is reachable through it by name (a wildcard entry), which is what
// test binaries with throwaway databases need.
type PgBouncer struct {
	// Dir holds the configuration and the log.
	Dir string
	// Port is the loopback TCP port PgBouncer listens on.
	Port int
	// PoolSize is the number of server connections per database.
	PoolSize int

	account runAs
	bin     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPgBouncer starts PgBouncer in transaction pooling mode with its
// files in dir, in front of the PostgreSQL server at serverAddr
// (host:port), logging in there as user. poolSize server connections serve
// each database; clients beyond them wait for one to come free, as they
// would in production.
func StartPgBouncer(ctx context.Context, dir, serverAddr, user string, poolSize int) (*PgBouncer, error) {
	bin, err := findPgBouncer()
	if err != nil {
		return nil, err
	}
	account, dir, err := serverDir(dir)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(serverAddr)
	if err != nil {
		return nil, fmt.Errorf("local: pgbouncer server address %q: %w", serverAddr, err)
	}
	b := &PgBouncer{Dir: dir, PoolSize: poolSize, account: account, bin: bin}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		// A free port can be taken between asking for it and PgBouncer
		// binding it: pick another one then.
		if b.Port, err = freePort(); err != nil {
			return nil, err
		}
		if err := b.writeConfig(host, port, user); err != nil {
			return nil, err
		}
		if lastErr = b.start(ctx); lastErr == nil {
			return b, nil
		}
	}
	return nil, lastErr
}

// findPgBouncer finds the binary, which Debian installs in /usr/sbin (not
// on an ordinary user's PATH).
func findPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer", "/opt/homebrew/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: pgbouncer: install it (Debian/Ubuntu: `sudo apt-get install -y pgbouncer`; macOS: `brew install pgbouncer`) or run `scripts/deps cluster`", ErrMissingBinary)
}

func (b *PgBouncer) configPath() string { return filepath.Join(b.Dir, "pgbouncer.ini") }
func (b *PgBouncer) logPath() string    { return filepath.Join(b.Dir, "pgbouncer.log") }

// writeConfig writes pgbouncer.ini. auth_type=any (no passwords, every
// server login as user) suits a private server on loopback only; a
// production PgBouncer authenticates its clients (docs/operations.md).
func (b *PgBouncer) writeConfig(host, port, user string) error {
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%s user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = %d
reserve_pool_size = 0
max_db_connections = 0
server_login_retry = 1
query_wait_timeout = 60
server_reset_query =
logfile = %s
log_connections = 0
log_disconnections = 0
`, host, port, user, b.Port, b.PoolSize, b.logPath())
	if err := os.WriteFile(b.configPath(), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("local: write pgbouncer config: %w", err)
	}
	return nil
}

// start runs the process and waits until a query goes through it.
func (b *PgBouncer) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("local: pgbouncer already running")
	}
	cmd := b.account.command(syscall.SIGTERM, b.bin, b.configPath())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local: start pgbouncer: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitReady(ctx, done, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, b.URL("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1")
		return err
	}); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("local: pgbouncer on port %d did not become ready: %w (log: %s)%s", b.Port, err, b.logPath(), tail(b.logPath()))
	}
	b.cmd, b.done = cmd, done
	return nil
}

// URL returns a connection URL for database db through PgBouncer, with
// the query exec mode a transaction pooler needs.
func (b *PgBouncer) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&default_query_exec_mode=%s", superuser, b.Port, db, PoolerExecMode)
}

// Stop ends PgBouncer (SIGINT: at once, without waiting for clients).
func (b *PgBouncer) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return nil
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
	b.cmd = nil
	return nil
}

// pgTestEnv is the environment variable that routes the test suites'
// database connections: "pgbouncer" puts them through a private PgBouncer
// in transaction pooling mode.
const pgTestEnv = "BROOK_TEST_PG"

// testPoolSize is the number of server connections PgBouncer keeps for a
// test binary's database: as many as one node's pgx pool (20), while a
// test binary runs several nodes, so clients do queue for server
// connections as they would in production, and tests that hold a
// transaction open to stage a race (pinning its server connection) leave
// room for the requests they wait on.
const testPoolSize = 20

// routeTestPostgres applies BROOK_TEST_PG to a test environment whose
// database is ready: with "pgbouncer" it starts PgBouncer in front of the
// database's server and points e.DatabaseURL through it. NewDatabase then
// creates its databases through it too, which a transaction pooler passes
// (one statement outside a transaction), and its wildcard entry reaches
// them by name.
func routeTestPostgres(ctx context.Context, e *Env, dir string) error {
	switch mode := os.Getenv(pgTestEnv); mode {
	case "", "direct", "replica": // a replica is pgreplica.go's
		return nil
	case "pgbouncer":
	default:
		return fmt.Errorf("local: %s=%q: use pgbouncer, replica or leave it unset", pgTestEnv, mode)
	}
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		return fmt.Errorf("local: parse database URL: %w", err)
	}
	user := superuser
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	if _, pw := u.User.Password(); pw {
		// auth_type=any logs in without one; a server that needs a
		// password is not what this switch is for.
		return fmt.Errorf("local: %s=pgbouncer works with a private server or a trust-auth DATABASE_URL", pgTestEnv)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "5432")
	}
	b, err := StartPgBouncer(ctx, filepath.Join(dir, "pgbouncer"), addr, user, testPoolSize)
	if err != nil {
		return err
	}
	e.cleanup = append(e.cleanup, func() { _ = b.Stop() })
	e.PgBouncer = b
	e.DatabaseURL = b.URL(strings.TrimPrefix(u.Path, "/"))
	return nil
}
