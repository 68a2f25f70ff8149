package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/migrations"
)

// secret signs the benchmark's tokens.
const secret = "bench-secret-bench-secret-bench-secret-0123"

// harness is what every benchmark starts from: private servers, a built
// Brook binary, and a way to sign tokens.
type harness struct {
	name string
	dir  string
	keep bool
	env  *local.Env
	keys *auth.Keys
	bin  string

	mu      sync.Mutex
	servers []*server
}

func newHarness(ctx context.Context, name string, keep bool) (*harness, error) {
	dir, err := os.MkdirTemp("", "brook-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{name: name, dir: dir, keep: keep}
	fmt.Fprintf(os.Stderr, "bench: starting PostgreSQL and Redis in %s\n", dir)
	h.env, err = local.Dev(ctx, dir, os.Getenv("BENCH_DATABASE_URL"), os.Getenv("BENCH_REDIS_URL"))
	if err != nil {
		h.Close()
		return nil, err
	}
	if err := migrations.Apply(ctx, h.env.DatabaseURL); err != nil {
		h.Close()
		return nil, err
	}
	h.keys, _ = auth.NewKeys([]byte(secret))
	return h, nil
}

// Close stops every server the harness started and removes its data.
func (h *harness) Close() {
	h.mu.Lock()
	for _, s := range h.servers {
		s.Stop()
	}
	h.mu.Unlock()
	if h.env != nil {
		h.env.Close()
	}
	if !h.keep {
		_ = os.RemoveAll(h.dir)
	}
}

// openNode opens a node's parts on the benchmark's servers, without
// workers (start them with Start) and without serving: for seeding data
// and for measuring the products' paths directly.
func (h *harness) openNode(ctx context.Context, adjust func(*node.Options)) (*node.Node, error) {
	opts := node.Options{DatabaseURL: h.env.DatabaseURL, RedisURL: h.env.RedisURL, MaxConns: 64, Logger: slog.New(slog.DiscardHandler)}
	if adjust != nil {
		adjust(&opts)
	}
	return node.Open(ctx, opts)
}

// token signs a token for user.
func (h *harness) token(user string, admin bool) string {
	tok, err := h.keys.Issue(user, admin, 24*time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}

// build compiles the Brook server once.
func (h *harness) build(ctx context.Context) (string, error) {
	if h.bin != "" {
		return h.bin, nil
	}
	bin := filepath.Join(h.dir, "brook")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build brook: %w\n%s", err, out)
	}
	h.bin = bin
	return bin, nil
}

// server is a Brook server process started by the harness.
type server struct {
	URL string
	cmd *exec.Cmd
	log *os.File
}

// startServer starts a Brook process on the harness's servers; env adds to
// or overrides its environment (BROOK_WORKERS, FEED_PULL_THRESHOLD, ...).
func (h *harness) startServer(ctx context.Context, env map[string]string) (*server, error) {
	bin, err := h.build(ctx)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	vars := map[string]string{
		"DATABASE_URL": h.env.DatabaseURL, "REDIS_URL": h.env.RedisURL, "BROOK_JWT_SECRET": secret,
		"BROOK_ADDR": addr, "BROOK_DATA_DIR": h.dir, "BROOK_LOG_LEVEL": "warn",
		// Rate limits stay on, so their cost (a Redis round trip per
		// operation) is in every figure, but high enough never to refuse
		// the load a benchmark generates from a handful of users.
		"BROOK_RATE_IP": "10000000/s", "BROOK_RATE_USER": "10000000/s",
		"BROOK_RATE_ADD_ACTIVITY": "10000000/s", "BROOK_RATE_SEND_MESSAGE": "10000000/s",
		"BROOK_RATE_SEND_SIGNAL": "10000000/s", "BROOK_RATE_TYPING": "10000000/s",
		"BROOK_MAX_CONNECTIONS_PER_USER": "0",
		// Every client comes from 127.0.0.1, thousands of them at once.
		"BROOK_MAX_CONNECTIONS_PER_ADDRESS": "0",
	}
	if os.Getenv("BENCH_PPROF") != "" {
		// Each server gets its own pprof listener, announced on stderr.
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		vars["BROOK_PPROF_ADDR"] = pl.Addr().String()
		pl.Close()
		fmt.Fprintf(os.Stderr, "bench: server %s: pprof at http://%s/debug/pprof/\n", addr, vars["BROOK_PPROF_ADDR"])
	}
	for k, v := range env {
		vars[k] = v
	}
	h.mu.Lock()
	n := len(h.servers)
	h.mu.Unlock()
	logFile, err := os.Create(filepath.Join(h.dir, fmt.Sprintf("brook-%d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{URL: "http://" + addr, cmd: cmd, log: logFile}
	h.mu.Lock()
	h.servers = append(h.servers, s)
	h.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("brook server did not become healthy; see %s", logFile.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Client returns an HTTP GraphQL client for the server acting with token.
func (s *server) Client(token string) *client.Client { return client.New(s.URL, token) }

// WebsocketURL is the server's WebSocket endpoint.
func (s *server) WebsocketURL() string { return client.WebsocketURL(s.URL) }

// RSS returns the server process's resident memory in bytes.
func (s *server) RSS() (int64, error) { return rssOf(s.cmd.Process.Pid) }

// rssOf returns a process's resident memory in bytes.
func rssOf(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("bench: VmRSS not found")
}

// CPUTime returns the server process's user+system CPU time so far.
func (s *server) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses).
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// Stop ends the server with SIGTERM and waits for it.
func (s *server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary returns p50, p99 and max, sorting the samples.
func (l *latencies) summary() (p50, p99, max time.Duration, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	n = len(l.d)
	if n == 0 {
		return 0, 0, 0, 0
	}
	at := func(q float64) time.Duration { return l.d[min(n-1, int(q*float64(n)))] }
	return at(0.50), at(0.99), l.d[n-1], n
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// table is a Markdown results table.
type table struct {
	title string
	cols  []string
	rows  [][]string
	notes []string
}

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// print writes the table to w under a header naming the command, the
// machine and the date, so the figures can be pasted as they are.
func (t *table) print(w io.Writer, command string) {
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n#### %s\n\n", t.title)
	fmt.Fprintf(w, "`%s` on %s, %s.\n\n", command, machine(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(t.cols, " | "), strings.Repeat("---|", len(t.cols)))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	for _, n := range t.notes {
		fmt.Fprintf(w, "\n%s\n", n)
	}
}

// machine describes the machine: cores and CPU model.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), PostgreSQL and Redis on the same machine", runtime.NumCPU(), model)
}
