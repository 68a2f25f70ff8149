package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
)

// clientConn returns a server-side connection to a client that reads
// what it is sent.
func clientConn(t *testing.T, s *Server) *wsConn {
	t.Helper()
	up := s.newUpgrader()
	conns := make(chan *wsConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- &wsConn{s: s, ws: c, ctx: context.Background()}
		}
	}))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	go func() {
		for {
			if _, _, err := client.NextReader(); err != nil {
				return
			}
		}
	}()
	return <-conns
}

// pushedOp is a started, shareable subscription whose responses read its
// stream's channel, as gqlgen's do.
func pushedOp(c *wsConn, id string, ch chan *int, data []byte) (*wsOperation, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	op := &wsOperation{id: id, conn: c, ctx: ctx, cancel: cancel, shareKey: "k", pushed: true}
	op.responses = func(ctx context.Context) *graphql.Response {
		select {
		case _, ok := <-ch:
			if !ok {
				return nil
			}
			return &graphql.Response{Data: data}
		case <-ctx.Done():
			return nil
		}
	}
	return op, cancel
}

// streamSend is what resolvers' stream.send does.
func streamSend(ctx context.Context, op *wsOperation, ch chan *int, v *int) bool {
	if op.Take(v) {
		return true
	}
	select {
	case ch <- v:
		op.Ready()
		return true
	case <-ctx.Done():
		op.Abandon()
		return false
	}
}

// An operation that ends while it was to make an event's shared response
// leaves the others free, whether its stream said so (Abandon) or not:
// they make their own.
func TestSharedResponseOfAnEndedOperation(t *testing.T) {
	s := &Server{opts: Options{WebsocketWriteTimeout: time.Second}, origins: newOriginPolicy("", false)}
	c := clientConn(t, s)
	data := []byte(`{"messageAdded":{"id":"1"}}`)
	for i := 0; i < 50; i++ {
		ev := new(int)
		chA, chB := make(chan *int, 1), make(chan *int, 1)
		a, cancelA := pushedOp(c, "a", chA, data)
		b, cancelB := pushedOp(c, "b", chB, data)
		// A makes the entry, then its stream ends before its send.
		if a.Take(ev) {
			t.Fatal("the first operation took a response nobody made")
		}
		cancelA()
		if i%2 == 0 {
			a.Abandon()
		}
		done := make(chan bool, 1)
		go func() { done <- streamSend(b.ctx, b, chB, ev) }()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("B did not deliver")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("B waits for a response its maker gave up")
		}
		cancelB()
	}
}

// The operation that makes an event's shared response hands it over
// before its own write: a client that does not read holds up only itself.
func TestSharedResponseBeforeASlowWrite(t *testing.T) {
	s := &Server{opts: Options{WebsocketWriteTimeout: time.Minute}, origins: newOriginPolicy("", false)}
	slow, fast := clientConn(t, s), clientConn(t, s)
	ev := new(int)
	chA, chB := make(chan *int, 1), make(chan *int, 1)
	a, cancelA := pushedOp(slow, "a", chA, []byte(`{"messageAdded":{"id":"1"}}`))
	b, cancelB := pushedOp(fast, "b", chB, []byte(`{}`))
	defer cancelA()
	defer cancelB()
	// A makes the event's response; its write then waits, as a write to a
	// client that stopped reading does.
	slow.writeMu.Lock()
	if a.Take(ev) {
		t.Fatal("the first operation took a response nobody made")
	}
	chA <- ev
	aDone := make(chan struct{})
	go func() {
		defer close(aDone)
		a.Ready()
	}()
	bDone := make(chan bool, 1)
	go func() { bDone <- streamSend(b.ctx, b, chB, ev) }()
	select {
	case ok := <-bDone:
		if !ok {
			t.Fatal("B did not deliver")
		}
	case <-aDone:
		t.Fatal("A's write finished while its connection was held")
	case <-time.After(20 * time.Second):
		t.Fatal("B waited for A's write")
	}
	if len(chB) != 0 {
		t.Fatal("B executed the event itself rather than taking A's response")
	}
	slow.writeMu.Unlock()
	<-aDone
}
