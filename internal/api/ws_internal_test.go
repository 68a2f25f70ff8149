package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A write that times out (the client stopped reading) closes the
// connection, so its read loop ends and the connection and its
// subscriptions are torn down at once, rather than when missed pongs end
// it much later.
func TestFailedWriteClosesConnection(t *testing.T) {
	s := &Server{opts: Options{WebsocketWriteTimeout: 100 * time.Millisecond}, origins: newOriginPolicy("", false)}
	up := s.newUpgrader()
	conns := make(chan *wsConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns <- &wsConn{s: s, ws: c}
	}))
	defer srv.Close()
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
		}
		return c, err
	}}
	client, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // and never read: a client that stopped reading
	c := <-conns
	payload := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	written := true
	for i := 0; i < 100_000 && written; i++ {
		written = c.send("1", "next", payload)
	}
	if written {
		t.Fatal("writes to a client that does not read never failed")
	}
	// The read side ends too: the connection is closed, not left open.
	done := make(chan error, 1)
	go func() { _, _, err := c.ws.NextReader(); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read succeeded on a connection whose write failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after a failed write")
	}
}

// A connection's context ends with the server's WebSocket context, keeps
// the upgrade request's info (and the server context's values) but not the
// request's end, and joins the server context's children directly: no
// goroutine or extra context per connection to watch the server's.
func TestConnContext(t *testing.T) {
	type key struct{}
	server, shutdown := context.WithCancel(context.WithValue(context.Background(), key{}, "server"))
	defer shutdown()
	info := &requestInfo{id: "request"}
	const n = 50
	watchers := func() int {
		buf := make([]byte, 1<<20)
		return strings.Count(string(buf[:runtime.Stack(buf, true)]), "context.(*cancelCtx).propagateCancel")
	}
	before := watchers()
	var conns [n]context.Context
	for i := range conns {
		ctx, cancel := context.WithCancel(connContext{Context: server, info: info})
		defer cancel()
		conns[i] = ctx
	}
	for _, ctx := range conns {
		if got := requestFrom(ctx); got != info || RequestID(ctx) != "request" {
			t.Fatalf("request info %v, want the request's", got)
		}
		if got := ctx.Value(key{}); got != "server" {
			t.Fatalf("value %v, want the server context's", got)
		}
	}
	if got := requestFrom(connContext{Context: server}); got != nil {
		t.Fatalf("request info %v without one", got)
	}
	// Other tests may start such goroutines too, but not one for each of
	// these contexts.
	if added := watchers() - before; added >= n {
		t.Fatalf("%d goroutines watch the server's context for %d connections", added, n)
	}
	shutdown()
	for _, ctx := range conns {
		if ctx.Err() != context.Canceled {
			t.Fatalf("after shutdown: %v, want canceled", ctx.Err())
		}
	}
}

// A connection closed while it signs in (its token expired within auth's
// leeway) is not added to the pinger, which its close has already left:
// it would stay there for the life of the process.
func TestPingerSkipsClosedConnection(t *testing.T) {
	p := newPinger(time.Hour, time.Hour)
	defer p.Close()
	closed := &wsConn{legacy: true, closed: true}
	open := &wsConn{legacy: true}
	p.add(closed)
	p.add(open)
	p.mu.Lock()
	_, hasClosed := p.conns[closed]
	_, hasOpen := p.conns[open]
	p.mu.Unlock()
	if hasClosed || !hasOpen {
		t.Fatalf("pinger holds the closed connection: %v, the open one: %v", hasClosed, hasOpen)
	}
}
