package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// superuser is the role initdb creates for private clusters.
const superuser = "brook"

// Postgres is a private PostgreSQL server running as a child process.
type Postgres struct {
	// Dir is the data directory.
	Dir string
	// Port is the loopback TCP port the server listens on.
	Port int

	durable bool
	account runAs
	bin     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostgres starts a PostgreSQL server with its data in dir, creating the
// cluster first if dir holds none. A durable server syncs to disk like any
// production server; a non-durable one (for tests) skips fsync for speed.
func StartPostgres(ctx context.Context, dir string, durable bool) (*Postgres, error) {
	initdb, err := findBinary("initdb")
	if err != nil {
		return nil, err
	}
	bin, err := findBinary("postgres")
	if err != nil {
		return nil, err
	}
	account, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if pid, ok := runningPostmaster(dir); ok {
		return nil, &AlreadyRunningError{Dir: dir, PID: pid}
	}
	if err := account.prepareDir(dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", dir, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
		if !durable {
			args = append(args, "--no-sync")
		}
		cmd := account.command(syscall.SIGKILL, initdb, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("local: initdb %s: %w\n%s", dir, err, out)
		}
	}
	p := &Postgres{Dir: dir, durable: durable, account: account, bin: bin}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// URL returns a connection URL for database db on this server.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, p.Port, db)
}

// Start starts the server process. After Stop or Kill it restarts the server
// on the same port, which is what fault tests need.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return errors.New("local: postgres already running")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		// A first start picks a free port (and another one if it lost the race
		// for it); a restart comes back on the port clients already know.
		if p.done == nil {
			port, err := freePort()
			if err != nil {
				return err
			}
			p.Port = port
		}
		if lastErr = p.startOnce(ctx); lastErr == nil {
			return nil
		}
		if pid, ok := runningPostmaster(p.Dir); ok {
			// Another process started a server on this directory first.
			return &AlreadyRunningError{Dir: p.Dir, PID: pid}
		}
	}
	return lastErr
}

// AlreadyRunningError means another PostgreSQL server (most likely another
// Brook's, from a `make run` in another terminal) runs on the data
// directory: two servers cannot share one.
type AlreadyRunningError struct {
	// Dir is the data directory: Brook's (BROOK_DATA_DIR) from Dev, the
	// cluster's own from StartPostgres.
	Dir string
	// PID is the running server's postmaster.
	PID int
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("Brook is already running with data directory %s (PostgreSQL pid %d); stop it first, or set BROOK_DATA_DIR to another directory", e.Dir, e.PID)
}

// runningPostmaster reports the pid of a PostgreSQL server running on the
// data directory dir, from the postmaster.pid it keeps there. A file left
// by a server that died names a pid that is gone, or (after a reboot) one
// another program now has; that file is stale and PostgreSQL starts over
// it by itself, so neither counts.
func runningPostmaster(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	// Where /proc tells a process's name, make sure it is PostgreSQL's.
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && !strings.Contains(string(comm), "postgres") {
		return 0, false
	}
	return pid, true
}

func (p *Postgres) startOnce(ctx context.Context) error {
	args := []string{
		"-D", p.Dir,
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=300",
		"-c", "shared_buffers=256MB",
		"-c", "logging_collector=off",
	}
	if !p.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logPath := p.Dir + ".log"
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("local: open postgres log: %w", err)
	}
	cmd := p.account.command(syscall.SIGQUIT, p.bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("local: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	if err := waitReady(ctx, done, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("local: postgres on port %d did not become ready: %w (log: %s)%s", p.Port, err, logPath, tail(logPath))
	}
	p.cmd, p.done = cmd, done
	return nil
}

// Stop shuts the server down cleanly (fast shutdown: sessions are ended).
func (p *Postgres) Stop() error { return p.signal(syscall.SIGINT, 30*time.Second) }

// Kill ends the server and all its backends at once with SIGKILL, as a
// crash would.
func (p *Postgres) Kill() error { return p.signal(syscall.SIGKILL, 10*time.Second) }

func (p *Postgres) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	} else {
		_ = p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.cmd = nil
	return nil
}

// CreateDatabase creates database name if it does not exist yet.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) error {
	return createDatabase(ctx, p.URL("postgres"), name)
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("local: connect: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("local: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("local: create database %s: %w", name, err)
	}
	return nil
}

// waitReady polls probe until it succeeds, the process exits, or 60 s pass.
func waitReady(ctx context.Context, exited <-chan struct{}, probe func(context.Context) error) error {
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = probe(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return err
}

// tail returns the last lines of a log file, to put in an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}
