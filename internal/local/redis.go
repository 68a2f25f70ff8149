package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private Redis server running as a child process. It keeps
// nothing on disk: Brook stores only rebuildable state in Redis.
type Redis struct {
	// Dir holds the server's log.
	Dir string
	// Port is the loopback TCP port the server listens on.
	Port int

	account runAs
	bin     string
	// args are extra server arguments (cluster mode, for one).
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a Redis server whose log lives in dir.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	return startRedis(ctx, dir)
}

func startRedis(ctx context.Context, dir string, args ...string) (*Redis, error) {
	bin, err := findBinary("redis-server")
	if err != nil {
		return nil, err
	}
	account, dir, err := serverDir(dir)
	if err != nil {
		return nil, err
	}
	r := &Redis{Dir: dir, account: account, bin: bin, args: args}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

// URL returns the server's connection URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts the server process; after Stop or Kill it restarts on the
// same port (empty, as a real restart without persistence would be).
func (r *Redis) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("local: redis already running")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if r.done == nil {
			port, err := freePort()
			if err != nil {
				return err
			}
			r.Port = port
		}
		if lastErr = r.startOnce(ctx); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

func (r *Redis) startOnce(ctx context.Context) error {
	logPath := filepath.Join(r.Dir, "redis.log")
	args := append([]string{
		"--port", strconv.Itoa(r.Port),
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--maxclients", "20000",
		"--logfile", logPath,
	}, r.args...)
	cmd := r.account.command(syscall.SIGTERM, r.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local: start redis: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	err := waitReady(ctx, done, func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("local: redis on port %d did not become ready: %w%s", r.Port, err, tail(logPath))
	}
	r.cmd, r.done = cmd, done
	return nil
}

// Running reports whether the server process is up.
func (r *Redis) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Stop shuts the server down cleanly.
func (r *Redis) Stop() error { return r.signal(syscall.SIGTERM) }

// Kill ends the server at once with SIGKILL, as a crash would.
func (r *Redis) Kill() error { return r.signal(syscall.SIGKILL) }

// Freeze stops the server process (SIGSTOP): it keeps its connections and
// accepts new ones, but answers nothing until Thaw, as a hung or swapped
// out server would.
func (r *Redis) Freeze() error { return r.pause(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (r *Redis) Thaw() error { return r.pause(syscall.SIGCONT) }

func (r *Redis) pause(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("local: redis is not running")
	}
	return r.cmd.Process.Signal(sig)
}

func (r *Redis) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	_ = r.cmd.Process.Signal(sig)
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a frozen server handles SIGTERM too
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
	r.cmd = nil
	return nil
}

// removeAll deletes a directory tree, ignoring a missing one.
func removeAll(dir string) {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
