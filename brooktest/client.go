package brooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Error is one GraphQL error of a response.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the error's extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []Error         `json:"errors"`
}

// Code returns the first error's code, or "" when there is none.
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// Decode unmarshals data into v, failing the test if the response has errors.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
}

// Vars are GraphQL variables.
type Vars map[string]any

// Query runs an operation over HTTP POST with token (none if empty).
func (n *Node) Query(t testing.TB, token, query string, vars Vars) *Response {
	t.Helper()
	return n.QueryContext(context.Background(), t, token, query, vars)
}

// QueryContext is Query with a context, for tests that count statements.
func (n *Node) QueryContext(ctx context.Context, t testing.TB, token, query string, vars Vars) *Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// Get runs a query over HTTP GET.
func (n *Node) Get(t testing.TB, token, query string) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.URL+"/query?query="+urlQueryEscape(query), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) *Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := &Response{Status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: status %d, undecodable body: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return out
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Must runs an operation and fails the test on any error; it decodes the
// data into v when v is not nil.
func (n *Node) Must(t testing.TB, token, query string, vars Vars, v any) {
	t.Helper()
	r := n.Query(t, token, query, vars)
	if v == nil {
		if len(r.Errors) > 0 {
			t.Fatalf("unexpected errors: %+v", r.Errors)
		}
		return
	}
	r.Decode(t, v)
}

// WS is a graphql-transport-ws client connection.
type WS struct {
	t    testing.TB
	conn *websocket.Conn

	mu     sync.Mutex
	subs   map[string]chan Message
	nextID int
	closed chan struct{}
	// CloseCode and CloseText are set when the server closes the connection.
	CloseCode int
	CloseText string
}

// Message is one server message for an operation of a WS connection.
type Message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Dial opens a graphql-transport-ws connection and sends connection_init
// with payload (use AuthPayload for a token). It does not wait for the ack.
func (n *Node) Dial(t testing.TB, payload any) (*WS, error) {
	t.Helper()
	return DialURL(t, "ws"+strings.TrimPrefix(n.URL, "http")+"/query", "graphql-transport-ws", payload)
}

// AuthPayload is the connection_init payload that carries token.
func AuthPayload(token string) map[string]any { return map[string]any{"authToken": token} }

// DialURL opens a WebSocket connection with subprotocol and sends connection_init.
func DialURL(t testing.TB, url, subprotocol string, payload any) (*WS, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{subprotocol}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	w := &WS{t: t, conn: conn, subs: map[string]chan Message{}, closed: make(chan struct{})}
	init, _ := json.Marshal(payload)
	if err := conn.WriteJSON(Message{Type: "connection_init", Payload: init}); err != nil {
		return nil, err
	}
	w.subs[""] = make(chan Message, 16)
	go w.read()
	t.Cleanup(func() { _ = w.Close() })
	return w, nil
}

// MustDial dials with a token and waits for connection_ack.
func (n *Node) MustDial(t testing.TB, token string) *WS {
	t.Helper()
	w, err := n.Dial(t, AuthPayload(token))
	if err != nil {
		t.Fatal(err)
	}
	if m := w.next(""); m.Type != "connection_ack" {
		t.Fatalf("expected connection_ack, got %+v (close %d %q)", m, w.CloseCode, w.CloseText)
	}
	return w
}

// WaitClosed waits for the server to close the connection and returns the code.
func (w *WS) WaitClosed(timeout time.Duration) (int, string) {
	select {
	case <-w.closed:
	case <-time.After(timeout):
		w.t.Fatalf("connection not closed within %s", timeout)
	}
	return w.CloseCode, w.CloseText
}

func (w *WS) read() {
	defer close(w.closed)
	for {
		_, data, err := w.conn.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				w.CloseCode, w.CloseText = ce.Code, ce.Text
			}
			w.mu.Lock()
			for _, c := range w.subs {
				close(c)
			}
			w.subs = map[string]chan Message{}
			w.mu.Unlock()
			return
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		switch m.Type {
		case "ping":
			_ = w.write(Message{Type: "pong"})
			continue
		case "pong":
			continue
		}
		w.mu.Lock()
		c := w.subs[m.ID]
		w.mu.Unlock()
		if c != nil {
			select {
			case c <- m:
			case <-time.After(10 * time.Second):
			}
		}
	}
}

func (w *WS) write(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return w.conn.WriteJSON(m)
}

func (w *WS) next(id string) Message {
	w.t.Helper()
	w.mu.Lock()
	c := w.subs[id]
	w.mu.Unlock()
	if c == nil {
		return Message{Type: "closed"}
	}
	select {
	case m, ok := <-c:
		if !ok {
			return Message{Type: "closed"}
		}
		return m
	case <-time.After(10 * time.Second):
		w.t.Fatalf("no message for operation %q within 10s", id)
	}
	return Message{}
}

// Close closes the connection from the client side.
func (w *WS) Close() error {
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return w.conn.Close()
}

// Sub is one operation running on a WS connection.
type Sub struct {
	ws *WS
	ID string
}

// Subscribe starts an operation (usually a subscription) on the connection.
func (w *WS) Subscribe(query string, vars Vars) *Sub {
	w.t.Helper()
	w.mu.Lock()
	w.nextID++
	id := strconv.Itoa(w.nextID)
	w.subs[id] = make(chan Message, 1024)
	w.mu.Unlock()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err := w.write(Message{Type: "subscribe", ID: id, Payload: payload}); err != nil {
		w.t.Fatal(err)
	}
	return &Sub{ws: w, ID: id}
}

// Next returns the operation's next message: next, error, complete, or
// closed when the connection ended.
func (s *Sub) Next() Message { return s.ws.next(s.ID) }

// NextData waits for the next result and decodes its data into v, failing
// the test on anything else.
func (s *Sub) NextData(v any) {
	s.ws.t.Helper()
	m := s.Next()
	if m.Type != "next" {
		s.ws.t.Fatalf("expected next, got %s %s", m.Type, m.Payload)
	}
	var r Response
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		s.ws.t.Fatal(err)
	}
	r.Decode(s.ws.t, v)
}

// Expect waits for a message of the given type and returns it.
func (s *Sub) Expect(typ string) Message {
	s.ws.t.Helper()
	m := s.Next()
	if m.Type != typ {
		s.ws.t.Fatalf("expected %s, got %s %s", typ, m.Type, m.Payload)
	}
	return m
}

// None checks that no message arrives for the operation within d.
func (s *Sub) None(d time.Duration) {
	s.ws.t.Helper()
	s.ws.mu.Lock()
	c := s.ws.subs[s.ID]
	s.ws.mu.Unlock()
	select {
	case m, ok := <-c:
		if ok {
			s.ws.t.Fatalf("unexpected message %s %s", m.Type, m.Payload)
		}
	case <-time.After(d):
	}
}

// Complete stops the operation from the client side.
func (s *Sub) Complete() {
	s.ws.t.Helper()
	if err := s.ws.write(Message{Type: "complete", ID: s.ID}); err != nil {
		s.ws.t.Fatal(err)
	}
	s.ws.mu.Lock()
	delete(s.ws.subs, s.ID)
	s.ws.mu.Unlock()
}
