package brooktest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// Response is a GraphQL response.
type Response = client.Response

// Vars are GraphQL variables.
type Vars = client.Vars

// AuthPayload is the connection_init payload that carries token.
func AuthPayload(token string) map[string]any { return client.AuthPayload(token) }

// Client returns an HTTP GraphQL client for the node acting with token.
func (n *Node) Client(token string) *client.Client { return client.New(n.URL, token) }

// Query runs an operation over HTTP POST with token (none if empty).
func (n *Node) Query(t testing.TB, token, query string, vars Vars) *Response {
	t.Helper()
	r, err := n.Client(token).Do(context.Background(), query, vars)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Get runs a query over HTTP GET.
func (n *Node) Get(t testing.TB, token, query string) *Response {
	t.Helper()
	r, err := n.Client(token).Get(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Must runs an operation, fails the test on any error, and decodes the
// data into v when v is not nil.
func (n *Node) Must(t testing.TB, token, query string, vars Vars, v any) {
	t.Helper()
	if err := n.Client(token).Run(context.Background(), query, vars, v); err != nil {
		t.Fatalf("%v\nin: %s", err, query)
	}
}

// WS is a graphql-transport-ws connection for tests.
type WS struct {
	*client.Conn
	t testing.TB
}

// Dial opens a graphql-transport-ws connection with the given
// connection_init payload and waits for the ack. A connection the server
// refused returns a *client.CloseError.
func (n *Node) Dial(t testing.TB, payload any) (*WS, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.WebsocketURL(n.URL), client.DialOptions{Payload: payload})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return &WS{Conn: c, t: t}, nil
}

// MustDial opens a connection signed in with token.
func (n *Node) MustDial(t testing.TB, token string) *WS {
	t.Helper()
	w, err := n.Dial(t, AuthPayload(token))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// WaitClosed waits for the server to close the connection and returns the
// close code and reason.
func (w *WS) WaitClosed(timeout time.Duration) (int, string) {
	w.t.Helper()
	select {
	case <-w.Done():
	case <-time.After(timeout):
		w.t.Fatalf("connection not closed within %s", timeout)
	}
	ce := w.CloseError()
	return ce.Code, ce.Text
}

// Sub is one operation on a test connection.
type Sub struct {
	*client.Subscription
	t testing.TB
}

// Subscribe starts an operation, usually a subscription.
func (w *WS) Subscribe(query string, vars Vars) *Sub {
	w.t.Helper()
	s, err := w.Conn.Subscribe(query, vars)
	if err != nil {
		w.t.Fatal(err)
	}
	return &Sub{Subscription: s, t: w.t}
}

// Next returns the operation's next message (next, error or complete), or
// a message of type "closed" once the connection or operation has ended.
func (s *Sub) Next() client.Message {
	s.t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			return client.Message{Type: "closed"}
		}
		return m
	case <-time.After(10 * time.Second):
		s.t.Fatalf("no message for operation %s within 10s", s.ID)
	}
	return client.Message{}
}

// NextData waits for the next result and decodes its data into v, failing
// the test on anything else.
func (s *Sub) NextData(v any) {
	s.t.Helper()
	m := s.Next()
	if m.Type != "next" {
		s.t.Fatalf("expected next, got %s %s", m.Type, m.Payload)
	}
	var r Response
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		s.t.Fatal(err)
	}
	if err := r.Decode(v); err != nil {
		s.t.Fatal(err)
	}
}

// Expect waits for a message of the given type and returns it.
func (s *Sub) Expect(typ string) client.Message {
	s.t.Helper()
	m := s.Next()
	if m.Type != typ {
		s.t.Fatalf("expected %s, got %s %s", typ, m.Type, m.Payload)
	}
	return m
}

// None checks that no message arrives for the operation within d.
func (s *Sub) None(d time.Duration) {
	s.t.Helper()
	select {
	case m, ok := <-s.C:
		if ok {
			s.t.Fatalf("unexpected message %s %s", m.Type, m.Payload)
		}
	case <-time.After(d):
	}
}

// Complete stops the operation from the client side.
func (s *Sub) Complete() {
	s.t.Helper()
	if err := s.Subscription.Complete(); err != nil {
		s.t.Fatal(err)
	}
}

// WantCode fails the test unless the operation failed with code, and with
// a message saying why.
func WantCode(t testing.TB, r *Response, code string) {
	t.Helper()
	if r.Code() != code {
		t.Fatalf("want %s, got %s: %s", code, r.Code(), r.Data)
	}
	if r.Errors[0].Message == "" {
		t.Fatalf("%s without a message", code)
	}
}
