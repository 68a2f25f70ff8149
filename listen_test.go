package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client that sends its headers and then trickles its body, a byte now
// and then, is cut once the read timeout has passed since its request
// began, and is told why; before, it held its connection for as long as it
// kept trickling.
func TestTricklingBodyIsCut(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadTimeout = time.Second
	n := startNode(t, cfg)
	conn, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: brook\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n{", token(t, cfg, "slow"))
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes the connection
		closed <- string(b)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case answer := <-closed:
			took := time.Since(start)
			t.Logf("a client trickling its body was cut after %s (read timeout %s)", took.Round(time.Millisecond), cfg.HTTP.ReadTimeout)
			if !strings.Contains(answer, "read timeout") || !strings.Contains(answer, "BAD_USER_INPUT") {
				t.Fatalf("the answer does not say why: %q", answer)
			}
			return
		case <-tick.C:
			if time.Since(start) > 10*time.Second {
				t.Fatal("a trickling client still holds its connection after 10 s (read timeout 1 s)")
			}
			_, _ = conn.Write([]byte(" "))
		}
	}
}

// Past the total connection cap, idle connections do not take the server
// down: /healthz still answers, other requests get 503 UNAVAILABLE, and
// the connections over the cap are counted. The flooding address gets only
// its share of the overflow, so a monitor's address finds a place.
func TestConnectionCaps(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxConnections = 40
	cfg.HTTP.MaxConnectionsPerAddress = 0
	n := startNode(t, cfg)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ { // 40 within the cap, 4 of the overflow, 16 closed
		c, err := net.Dial("tcp", n.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The monitor checks from another loopback address.
	monitor := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: monitor.DialContext}}
		start := time.Now()
		resp, err := c.Get("http://" + n.addr + path)
		if err != nil {
			t.Fatalf("GET %s with the connection cap reached: %v (after %s)", path, err, time.Since(start))
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(cond func() bool) bool {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return true
			}
		}
		return false
	}
	// The server has accepted them all (the accept loop runs on its own).
	waitFor(func() bool { _, body := get("/metrics"); return strings.Contains(body, "brook_connections_open 45") })
	if status, body := get("/healthz"); status != 200 {
		t.Fatalf("/healthz at the connection cap: %d %s", status, body)
	}
	status, body := get("/query?query={__typename}")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "UNAVAILABLE") || !strings.Contains(body, "BROOK_MAX_CONNECTIONS") {
		t.Fatalf("a query at the connection cap: %d %s", status, body)
	}
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, `brook_connections_refused_total{cap="total"}`) {
		t.Fatalf("no refusal metric:\n%s", metrics)
	}
	// Closing some frees their places: queries are served again.
	for _, c := range idle[:30] {
		c.Close()
	}
	idle = idle[30:]
	if !waitFor(func() bool { s, _ := get("/query?query={__typename}"); return s == http.StatusUnauthorized }) {
		t.Fatal("queries still refused after connections closed")
	}
}

func TestConnectionCapPerAddress(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MaxConnectionsPerAddress = 5
	n := startNode(t, cfg)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", n.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The sixth from the same address is closed without an answer.
	c, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: brook\r\n\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatalf("a connection over the per-address cap was answered: %q", line)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection over the per-address cap was held open, not closed")
	}
}

// A WebSocket outlives the HTTP timeouts once upgraded: it keeps its own
// deadlines (ping and pong, one per write), so a subscription idle past
// the read and write timeouts still delivers.
func TestWebsocketOutlivesHTTPTimeouts(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadTimeout, cfg.HTTP.WriteTimeout, cfg.HTTP.IdleTimeout = time.Second, time.Second, time.Second
	n := startNode(t, cfg)
	tok := token(t, cfg, "patient")
	query(t, n.addr, tok, `{ me { id } }`) // the user exists
	ws := dialWS(t, n.addr, tok)
	ws.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { userUpdated(id: "patient") { name } }`}})
	time.Sleep(2500 * time.Millisecond) // past every HTTP timeout, and subscribed
	query(t, n.addr, tok, `mutation { upsertUsers(users: [{id: "patient", name: "Still here"}]) { id } }`)
	if m := ws.read(t); m["type"] != "next" {
		t.Fatalf("a WebSocket idle past the HTTP timeouts got %v, want the event", m)
	}
}
