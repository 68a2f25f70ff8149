package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
)

var env *local.Env

func TestMain(m *testing.M) {
	os.Exit(local.TestMain(m, func(e *local.Env) error {
		env = e
		return migrations.Apply(context.Background(), e.DatabaseURL)
	}))
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{"defaults", nil, func(c Config) bool {
			return c.Addr == ":8080" && c.Workers == 2 && c.Introspection && c.Playground && !c.Dev &&
				c.DataDir == ".data" && c.RedisPrefix == "brook:" && c.ComplexityLimit == 5000
		}, ""},
		{"PORT", map[string]string{"PORT": "9000"}, func(c Config) bool { return c.Addr == ":9000" }, ""},
		{"BROOK_ADDR wins", map[string]string{"PORT": "9000", "BROOK_ADDR": "127.0.0.1:7000"}, func(c Config) bool { return c.Addr == "127.0.0.1:7000" }, ""},
		{"dev listens on loopback", map[string]string{"BROOK_DEV": "true"}, func(c Config) bool { return c.Addr == "127.0.0.1:8080" }, ""},
		{"dev PORT", map[string]string{"BROOK_DEV": "true", "PORT": "9000"}, func(c Config) bool { return c.Addr == "127.0.0.1:9000" }, ""},
		{"dev BROOK_ADDR wins", map[string]string{"BROOK_DEV": "true", "BROOK_ADDR": ":7000"}, func(c Config) bool { return c.Addr == ":7000" }, ""},
		{"http limits", nil, func(c Config) bool {
			return c.HTTP.ReadTimeout == 20*time.Second && c.HTTP.IdleTimeout == time.Minute && c.HTTP.MaxConnections == -1 &&
				c.HTTP.MaxConnectionsPerAddress == 1000 && c.RedisTimeout == 50*time.Millisecond
		}, ""},
		{"bad read timeout", map[string]string{"BROOK_READ_TIMEOUT": "soon"}, nil, "BROOK_READ_TIMEOUT"},
		{"bad redis timeout", map[string]string{"REDIS_TIMEOUT": "0s"}, nil, "REDIS_TIMEOUT"},
		{"switches", map[string]string{"BROOK_DEV": "true", "BROOK_INTROSPECTION": "false", "BROOK_PLAYGROUND": "0"},
			func(c Config) bool { return c.Dev && !c.Introspection && !c.Playground }, ""},
		{"bad bool", map[string]string{"BROOK_DEV": "yes please"}, nil, "BROOK_DEV"},
		{"bad int", map[string]string{"BROOK_WORKERS": "-1"}, nil, "BROOK_WORKERS"},
		{"bad level", map[string]string{"BROOK_LOG_LEVEL": "loud"}, nil, "BROOK_LOG_LEVEL"},
		{"bad format", map[string]string{"BROOK_LOG_FORMAT": "xml"}, nil, "BROOK_LOG_FORMAT"},
		{"calls defaults", nil, func(c Config) bool { return len(c.SFUNodes) == 0 && c.CallParticipantTimeout == 30*time.Second }, ""},
		{"calls", map[string]string{"SFU_NODES": "eu-1@eu=wss://a.example;us-1=wss://b.example", "CALL_PARTICIPANT_TIMEOUT": "45s"},
			func(c Config) bool {
				return len(c.SFUNodes) == 2 && c.SFUNodes[0].Region == "eu" && c.SFUNodes[1].URL == "wss://b.example" &&
					c.CallParticipantTimeout == 45*time.Second
			}, ""},
		{"timeout in seconds", map[string]string{"CALL_PARTICIPANT_TIMEOUT": "10"}, func(c Config) bool { return c.CallParticipantTimeout == 10*time.Second }, ""},
		{"bad SFU_NODES", map[string]string{"SFU_NODES": "eu-1"}, nil, "SFU_NODES"},
		{"SFU credentials", map[string]string{"SFU_NODES": "eu-1=wss://a.example key=APIa secret=sa;us-1=wss://b.example", "CALL_SFU_TOKEN_TTL": "5m"},
			func(c Config) bool {
				return len(c.SFUNodes) == 2 && c.SFUNodes[0].APIKey == "APIa" && c.SFUNodes[0].APISecret == "sa" &&
					!c.SFUNodes[1].SignsTokens() && c.CallSFUTokenTTL == 5*time.Minute
			}, ""},
		{"SFU token TTL default", nil, func(c Config) bool { return c.CallSFUTokenTTL == 10*time.Minute }, ""},
		{"SFU key without secret", map[string]string{"SFU_NODES": "eu-1=wss://a.example key=APIa"}, nil, "SFU_NODES"},
		{"SFU token TTL too short", map[string]string{"CALL_SFU_TOKEN_TTL": "5s"}, nil, "CALL_SFU_TOKEN_TTL"},
		{"bad timeout", map[string]string{"CALL_PARTICIPANT_TIMEOUT": "soon"}, nil, "CALL_PARTICIPANT_TIMEOUT"},
		{"chat push limit", map[string]string{"CHAT_PUSH_MEMBER_LIMIT": "250"}, func(c Config) bool { return c.ChatPushMemberLimit == 250 }, ""},
		{"chat push limit default", map[string]string{}, func(c Config) bool { return c.ChatPushMemberLimit == 1000 }, ""},
		{"bad chat push limit", map[string]string{"CHAT_PUSH_MEMBER_LIMIT": "many"}, nil, "CHAT_PUSH_MEMBER_LIMIT"},
		{"heap floor default", nil, func(c Config) bool { return c.HeapFloor == 128<<20 }, ""},
		{"heap floor", map[string]string{"BROOK_GC_HEAP_FLOOR_MB": "64"}, func(c Config) bool { return c.HeapFloor == 64<<20 }, ""},
		{"heap floor off", map[string]string{"BROOK_GC_HEAP_FLOOR_MB": "0"}, func(c Config) bool { return c.HeapFloor == 0 }, ""},
		{"GOGC rules alone", map[string]string{"GOGC": "200"}, func(c Config) bool { return c.HeapFloor == 0 }, ""},
		{"bad heap floor", map[string]string{"BROOK_GC_HEAP_FLOOR_MB": "lots"}, nil, "BROOK_GC_HEAP_FLOOR_MB"},
		{"call event rate", nil, func(c Config) bool {
			return c.CallEventRate == ephemeral.Rate{Rate: 10, Period: time.Second, Burst: 20}
		}, ""},
		{"call event rate off", map[string]string{"BROOK_RATE_CALL_EVENT": "off"}, func(c Config) bool { return c.CallEventRate.Rate < 0 }, ""},
		{"bad call event rate", map[string]string{"BROOK_RATE_CALL_EVENT": "lots"}, nil, "BROOK_RATE_CALL_EVENT"},
		{"before-send hook off", nil, func(c Config) bool { return c.BeforeSend.URL == "" && !c.BeforeSend.FailClosed }, ""},
		{"before-send hook", map[string]string{"BROOK_BEFORE_SEND_URL": "https://mod.example/check", "BROOK_BEFORE_SEND_SECRET": "s",
			"BROOK_BEFORE_SEND_TIMEOUT": "250ms", "BROOK_BEFORE_SEND_FAIL": "closed"}, func(c Config) bool {
			return c.BeforeSend.URL == "https://mod.example/check" && c.BeforeSend.Secret == "s" &&
				c.BeforeSend.Timeout == 250*time.Millisecond && c.BeforeSend.FailClosed
		}, ""},
		{"bad before-send URL", map[string]string{"BROOK_BEFORE_SEND_URL": "mod.example"}, nil, "BROOK_BEFORE_SEND_URL"},
		{"bad before-send fail", map[string]string{"BROOK_BEFORE_SEND_FAIL": "sometimes"}, nil, "BROOK_BEFORE_SEND_FAIL"},
		{"previews default", nil, func(c Config) bool {
			return c.Previews != nil && !c.Previews.Fetch.AllowPrivate && !c.Previews.Fetch.AnyPort &&
				slices.Equal(c.Previews.Fetch.Ports, []uint16{80, 443}) && c.Previews.CacheTTL == 24*time.Hour && c.Previews.Fetch.Timeout == 5*time.Second
		}, ""},
		{"previews off", map[string]string{"BROOK_PREVIEWS": "false"}, func(c Config) bool { return c.Previews == nil }, ""},
		{"previews", map[string]string{"BROOK_PREVIEW_ALLOW_PRIVATE": "true", "BROOK_PREVIEW_PORTS": "any", "BROOK_PREVIEW_TIMEOUT": "2s",
			"BROOK_PREVIEW_CACHE_TTL": "1h", "BROOK_PREVIEW_WORKERS": "4"}, func(c Config) bool {
			p := c.Previews
			return p.Fetch.AllowPrivate && p.Fetch.AnyPort && p.Fetch.Timeout == 2*time.Second && p.CacheTTL == time.Hour && p.Workers == 4
		}, ""},
		{"preview ports", map[string]string{"BROOK_PREVIEW_PORTS": "443, 8443"}, func(c Config) bool {
			return slices.Equal(c.Previews.Fetch.Ports, []uint16{443, 8443})
		}, ""},
		{"bad preview ports", map[string]string{"BROOK_PREVIEW_PORTS": "80,http"}, nil, "BROOK_PREVIEW_PORTS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFromEnv(func(k string) string { return tc.vars[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	cfg := Config{DataDir: t.TempDir()}
	var out bytes.Buffer
	if err := printToken(cfg, []string{"alice", "--admin", "--ttl", "1h"}, &out); err != nil {
		t.Fatal(err)
	}
	secret, err := jwtSecret(cfg) // the file the command created
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := auth.NewKeys(secret)
	id, err := keys.Verify(strings.TrimSpace(out.String()))
	if err != nil || id.UserID != "alice" || !id.IsAdmin() || time.Until(id.Expires) > time.Hour || time.Until(id.Expires) < 59*time.Minute {
		t.Fatalf("token: %+v %v", id, err)
	}
	for _, bad := range [][]string{{}, {"a:b"}, {"alice", "--ttl", "soon"}} {
		if err := printToken(cfg, bad, io.Discard); err == nil {
			t.Errorf("token %v must fail", bad)
		}
	}
}

// serverNode is a Brook server started with run(), as main does.
type serverNode struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
}

func startNode(t *testing.T, cfg Config) *serverNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &serverNode{cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	ready := make(chan string, 1)
	go func() { n.done <- run(ctx, cfg, n.out, func(addr string) { ready <- addr }) }()
	select {
	case n.addr = <-ready:
	case err := <-n.done:
		t.Fatalf("run: %v\n%s", err, n.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("not serving after 90s\n%s", n.out.String())
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *serverNode) stop(t *testing.T) error {
	n.cancel()
	select {
	case err, ok := <-n.done:
		if ok {
			close(n.done)
		}
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return within 60s of shutdown")
	}
	return nil
}

func testConfig(t *testing.T) Config {
	cfg, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.JWTSecret = brooktest.Secret
	cfg.DatabaseURL = env.DatabaseURL
	cfg.RedisURL = env.RedisURL
	cfg.RedisPrefix = env.RedisPrefix + "brook:"
	cfg.Workers = 1
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

func token(t *testing.T, cfg Config, user string) string {
	t.Helper()
	var out bytes.Buffer
	if err := printToken(cfg, []string{user}, &out); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

func query(t *testing.T, addr, tok, q string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// With no DATABASE_URL or REDIS_URL, Brook starts private servers in its
// data directory, serves GraphiQL, and answers `me` with a token from
// `brook token`; on shutdown it stops the servers it started.
func TestZeroConfiguration(t *testing.T) {
	cfg := testConfig(t)
	cfg.DatabaseURL, cfg.RedisURL, cfg.JWTSecret = "", "", ""
	cfg.Dev = true
	n := startNode(t, cfg)
	if !strings.Contains(n.out.String(), "GraphiQL") || !strings.Contains(n.out.String(), `{"Authorization": "Bearer `) {
		t.Fatalf("welcome text missing:\n%s", n.out.String())
	}
	resp, err := http.Get("http://" + n.addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GraphiQL: %v %v", resp, err)
	}
	resp.Body.Close()
	got := query(t, n.addr, token(t, cfg, "alice"), `{ me { id } }`)
	if fmt.Sprint(got["data"]) != "map[me:map[id:alice]]" {
		t.Fatalf("me: %v", got)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "postgres", "PG_VERSION")); err != nil {
		t.Fatalf("private PostgreSQL not under the data dir: %v", err)
	}
	if err := n.stop(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// The private PostgreSQL server is gone with the node.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "postgres", "postmaster.pid")); err == nil {
		t.Fatal("private PostgreSQL still running after shutdown")
	}
}

// Two server instances share events through Redis: a client on one receives
// what a mutation on the other published.
func TestBusAcrossTwoServers(t *testing.T) {
	cfg := testConfig(t)
	a, b := startNode(t, cfg), startNode(t, cfg)
	ws := dialWS(t, b.addr, token(t, cfg, "watcher"))
	ws.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { userUpdated(id: "kim") { name } }`}})
	time.Sleep(200 * time.Millisecond)
	query(t, a.addr, token(t, cfg, "kim"), `mutation { upsertUsers(users: [{id: "kim", name: "Kim on A"}]) { id } }`)
	m := ws.read(t)
	if m["type"] != "next" || !strings.Contains(fmt.Sprint(m["payload"]), "Kim on A") {
		t.Fatalf("B received %v", m)
	}
}

// Shutdown lets an in-flight request finish, closes WebSockets with 1001,
// and returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t)
	n := startNode(t, cfg)
	tok := token(t, cfg, "grace")
	ws := dialWS(t, n.addr, tok)

	// An in-flight request: headers sent, body still coming.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.addr+"/query", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	_, _ = pw.Write([]byte(`{"query": "{ me `))
	time.Sleep(100 * time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- n.stop(t) }()
	code := ws.closeCode(t)
	if code != websocket.CloseGoingAway {
		t.Fatalf("websocket close code %d, want 1001", code)
	}
	_, _ = pw.Write([]byte(`{ id } }"}`))
	_ = pw.Close()
	r := <-res
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, `"grace"`) {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// New connections are refused once it is down.
	if _, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
		t.Fatal("still accepting connections")
	}
}

// The real binary stops on SIGTERM with exit code 0 after closing its
// WebSocket clients with a close frame.
func TestBinaryStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "brook")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := testConfig(t)
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+cfg.DatabaseURL, "REDIS_URL="+cfg.RedisURL, "BROOK_REDIS_PREFIX="+cfg.RedisPrefix,
		"BROOK_JWT_SECRET="+cfg.JWTSecret, "BROOK_ADDR="+port, "BROOK_DATA_DIR="+cfg.DataDir)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(stdout)
	var log strings.Builder
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "msg=serving") {
			break
		}
	}
	go func() {
		for lines.Scan() {
		}
	}()
	ws := dialWS(t, port, token(t, cfg, "sigterm"))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := ws.closeCode(t); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("binary did not exit within 30s of SIGTERM")
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type wsConn struct{ c *websocket.Conn }

func dialWS(t *testing.T, addr, tok string) *wsConn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	var c *websocket.Conn
	var err error
	for i := 0; i < 50; i++ {
		if c, _, err = d.Dial("ws://"+addr+"/query", nil); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wsConn{c: c}
	w.send(t, map[string]any{"type": "connection_init", "payload": map[string]any{"authToken": tok}})
	if m := w.read(t); m["type"] != "connection_ack" {
		t.Fatalf("init: %v", m)
	}
	return w
}

func (w *wsConn) send(t *testing.T, v any) {
	if err := w.c.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

func (w *wsConn) read(t *testing.T) map[string]any {
	t.Helper()
	for {
		_ = w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m map[string]any
		if err := w.c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "ping" {
			_ = w.c.WriteJSON(map[string]any{"type": "pong"})
			continue
		}
		return m
	}
}

// closeCode reads until the server closes the connection and returns its code.
func (w *wsConn) closeCode(t *testing.T) int {
	t.Helper()
	for {
		_ = w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, _, err := w.c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
