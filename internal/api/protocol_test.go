package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/internal/brooktest"
)

// Requests that never become an operation, subscriptions sent over HTTP,
// and a stray Upgrade header each get an answer with a code, at once.
func TestMalformedHTTPRequests(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "mallory")
	post := func(body string, header map[string]string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: the answer is not JSON: %q", body, raw)
		}
		return resp.StatusCode, out
	}
	code := func(out map[string]any) string {
		errs, _ := out["errors"].([]any)
		if len(errs) == 0 {
			return ""
		}
		ext, _ := errs[0].(map[string]any)["extensions"].(map[string]any)
		c, _ := ext["code"].(string)
		return c
	}
	for _, body := range []string{`{"query":`, ``, `"x"`, `{"query":5}`, `{"query":"{ me { id } }","variables":"x"}`} {
		status, out := post(body, nil)
		if c := code(out); c == "" || c == "INTERNAL" || status >= 500 {
			t.Errorf("body %q: HTTP %d, code %q: %v", body, status, c, out)
		}
	}
	status, out := post(`{"query":"subscription { userUpdated(id: \"mallory\") { name } }"}`, nil)
	if code(out) != "BAD_USER_INPUT" || !strings.Contains(strings.ToLower(string(mustJSON(out))), "websocket") {
		t.Errorf("a subscription over HTTP: HTTP %d %v", status, out)
	}
	status, out = post(`{"query":"{ me { id } }"}`, map[string]string{"Upgrade": "h2c", "Connection": "Upgrade"})
	if status != http.StatusOK || code(out) != "" {
		t.Errorf("a request with Upgrade: h2c: HTTP %d %v", status, out)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// A connection_init whose payload is not an object is refused and the
// connection closed, not left open.
func TestInitPayloadNotAnObjectClosesTheConnection(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		ws := dialRaw(t, n, proto)
		ws.send(`{"type":"connection_init","payload":"abc"}`)
		for {
			msg, err := ws.recv()
			if err != nil {
				if strings.Contains(err.Error(), "timeout") {
					t.Fatalf("%s: the connection stayed open: %v", proto, err)
				}
				break // closed, as it must be
			}
			if strings.Contains(msg, "connection_ack") {
				t.Fatalf("%s: acknowledged a payload that is not an object", proto)
			}
		}
	}
}

// A subscribe under an id still running closes the connection with 4409,
// as graphql-transport-ws says; an id the client has completed can be used
// again at once, and the completed operation sends nothing more.
func TestDuplicateOperationIDs(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	ws := dialRaw(t, n, "graphql-transport-ws")
	ws.signIn("dup")
	sub := `{"type":"subscribe","id":"1","payload":{"query":"subscription { userUpdated(id: \"dup\") { name } }"}}`
	for i := 0; i < 20; i++ {
		ws.send(sub)
		ws.send(`{"type":"complete","id":"1"}`)
	}
	ws.send(sub) // the id is free again
	ws.send(`{"type":"ping"}`)
	if m, err := ws.recv(); err != nil || m != `{"type":"pong"}` {
		t.Fatalf("after subscribe and complete 20 times, the server sent %s %v; want only the pong", m, err)
	}
	ws.send(sub) // "1" is running
	if code := ws.closeCode(); code != 4409 {
		t.Fatalf("a second subscribe under a running id: closed with %d, want 4409", code)
	}
}

// Persisted-query errors over the WebSocket carry a code, as over HTTP.
func TestPersistedQueryErrorsOverWebsocket(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	ws := dialRaw(t, n, "graphql-transport-ws")
	ws.signIn("apq-ws")
	for i, ext := range []string{
		`{"persistedQuery":{"version":1,"sha256Hash":"deadbeef"}}`,
		`{"persistedQuery":{"version":9,"sha256Hash":"deadbeef"}}`,
	} {
		id := fmt.Sprint(i + 1)
		ws.send(`{"type":"subscribe","id":"` + id + `","payload":{"query":"{ me { id } }","extensions":` + ext + `}}`)
		m, err := ws.recv()
		for err == nil && strings.Contains(m, `"type":"complete"`) { // the previous operation's end
			m, err = ws.recv()
		}
		if err != nil || !strings.Contains(m, `"id":"`+id+`"`) || !strings.Contains(m, `"code":"BAD_USER_INPUT"`) {
			t.Errorf("%s: %s %v", ext, m, err)
		}
	}
}

// rawWS is a WebSocket to a node, spoken to message by message.
type rawWS struct {
	t    *testing.T
	conn *websocket.Conn
}

// dialRaw opens a WebSocket to n speaking proto, closed when the test ends.
func dialRaw(t *testing.T, n *brooktest.Node, proto string) *rawWS {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{proto}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(n.URL, "http")+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawWS{t: t, conn: conn}
}

func (w *rawWS) send(msg string) {
	w.t.Helper()
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		w.t.Fatal(err)
	}
}

// recv reads the next message, waiting at most 5 s.
func (w *rawWS) recv() (string, error) {
	_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := w.conn.ReadMessage()
	return string(msg), err
}

// signIn sends connection_init with user's token and waits for the ack.
func (w *rawWS) signIn(user string) {
	w.t.Helper()
	w.send(`{"type":"connection_init","payload":{"authToken":"` + env.Token(w.t, user) + `"}}`)
	if m, err := w.recv(); err != nil || !strings.Contains(m, "connection_ack") {
		w.t.Fatalf("init: %s %v", m, err)
	}
}

// closeCode reads until the connection closes and returns its close code
// (0 when it stays open for 5 s or ends without one).
func (w *rawWS) closeCode() int {
	w.t.Helper()
	for {
		_, err := w.recv()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			return ce.Code
		case err != nil:
			return 0
		}
	}
}

// The protocol's rules, each closing the connection with the code
// graphql-transport-ws gives it.
func TestGraphQLTransportWSCloseCodes(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	for _, c := range []struct {
		name string
		run  func(w *rawWS)
		want int
	}{
		{"subscribe before connection_init", func(w *rawWS) {
			w.send(`{"id":"1","type":"subscribe","payload":{"query":"{ me { id } }"}}`)
		}, 4401},
		{"a second connection_init", func(w *rawWS) {
			w.signIn("ann")
			w.send(`{"type":"connection_init","payload":{}}`)
		}, 4429},
		{"a message that is not JSON", func(w *rawWS) { w.send(`{"type":`) }, 4400},
		{"an unknown message type", func(w *rawWS) {
			w.signIn("ann")
			w.send(`{"type":"start","id":"1","payload":{"query":"{ me { id } }"}}`)
		}, 4400},
		{"subscribe without an id", func(w *rawWS) {
			w.signIn("ann")
			w.send(`{"type":"subscribe","payload":{"query":"{ me { id } }"}}`)
		}, 4400},
	} {
		w := dialRaw(t, n, "graphql-transport-ws")
		c.run(w)
		if got := w.closeCode(); got != c.want {
			t.Errorf("%s: closed with %d, want %d", c.name, got, c.want)
		}
	}
}

// A ping before connection_init is answered; an operation that fails
// validation gets one error message (no complete), and the connection
// goes on.
func TestGraphQLTransportWSErrorsAndPings(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	w := dialRaw(t, n, "graphql-transport-ws")
	w.send(`{"type":"ping","payload":{"t":1}}`)
	if m, err := w.recv(); err != nil || m != `{"type":"pong","payload":{"t":1}}` {
		t.Fatalf("ping before init: %s %v", m, err)
	}
	w.signIn("ann")
	w.send(`{"id":"bad","type":"subscribe","payload":{"query":"{ nope }"}}`)
	m, err := w.recv()
	var msg struct {
		ID, Type string
		Payload  []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err != nil || json.Unmarshal([]byte(m), &msg) != nil || msg.ID != "bad" || msg.Type != "error" ||
		len(msg.Payload) == 0 || msg.Payload[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Fatalf("a query that fails validation: %s %v", m, err)
	}
	w.send(`{"id":"ok","type":"subscribe","payload":{"query":"{ me { id } }"}}`)
	if m, err := w.recv(); err != nil || !strings.Contains(m, `"id":"ok","type":"next"`) {
		t.Fatalf("after the error, the next message is %s %v, want the next operation's result", m, err)
	}
	if m, err := w.recv(); err != nil || m != `{"id":"ok","type":"complete"}` {
		t.Fatalf("after the result: %s %v", m, err)
	}
}

// Shutdown closes, with 1001, also a connection that has not sent its
// connection_init yet, at once rather than when its 10 s to send one run
// out; a second Shutdown does nothing.
func TestShutdownClosesConnectionsBeforeInit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	w := dialRaw(t, n, "graphql-transport-ws")
	w.send(`{"type":"ping"}`)
	if m, err := w.recv(); err != nil || m != `{"type":"pong"}` {
		t.Fatalf("ping: %s %v", m, err)
	}
	done := make(chan struct{})
	go func() {
		n.Stop()
		close(done)
	}()
	if code := w.closeCode(); code != websocket.CloseGoingAway {
		t.Fatalf("closed with %d, want 1001", code)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("shutdown waited for the connection's connection_init")
	}
	n.Stop()
}

// A deferred fragment's response keeps its label, path and hasNext over
// the WebSocket, so a client knows where it goes and when the stream ends.
func TestDeferOverWebsocket(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	w := dialRaw(t, n, "graphql-transport-ws")
	w.signIn("deferer")
	w.send(`{"id":"d","type":"subscribe","payload":{"query":"{ me { id ... @defer(label: \"L\") { online } } }"}}`)
	var parts []string
	for {
		m, err := w.recv()
		if err != nil {
			t.Fatalf("after %q: %v", parts, err)
		}
		if strings.Contains(m, `"type":"complete"`) {
			break
		}
		parts = append(parts, m)
	}
	if len(parts) != 2 || !strings.Contains(parts[0], `"hasNext":true`) ||
		!strings.Contains(parts[1], `"label":"L"`) || !strings.Contains(parts[1], `"path":["me"]`) || !strings.Contains(parts[1], `"hasNext":false`) {
		t.Fatalf("deferred responses: %q", parts)
	}
}

// A body gqlgen cannot decode is answered with a short error whatever its
// size: gqlgen's message quotes the whole body, and echoing 900 KB back
// (or twice that, escaped) to whoever sent it serves no one.
func TestMalformedBodyIsNotEchoedWhole(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "echo")
	for name, body := range map[string]string{
		"truncated JSON":               `{"query":"{ me { id } }","variables":{"pad":"` + strings.Repeat("é", 450_000),
		"quotes, doubled when escaped": `{"query":` + strings.Repeat(`"`, 900_000),
	} {
		status, raw := post(t, n.URL, tok, "application/json", []byte(body))
		var out struct {
			Errors []struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Errorf("%s: HTTP %d, the answer (%d bytes) is not JSON: %.200q", name, status, len(raw), raw)
			continue
		}
		if status < 400 || status >= 500 || len(out.Errors) == 0 || out.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
			t.Errorf("%s: HTTP %d %.300s", name, status, raw)
		}
		if len(raw) > 2048 {
			t.Errorf("%s: a %d-byte body got a %d-byte answer: %.300s", name, len(body), len(raw), raw)
		}
		for _, e := range out.Errors {
			if !utf8.ValidString(e.Message) {
				t.Errorf("%s: the message was cut inside a character: %q", name, e.Message)
			}
		}
	}
}
