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

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/brooktest"
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
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		d := websocket.Dialer{Subprotocols: []string{proto}}
		conn, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init","payload":"abc"}`)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				if strings.Contains(err.Error(), "timeout") {
					t.Fatalf("%s: the connection stayed open: %v", proto, err)
				}
				break // closed, as it must be
			}
			if strings.Contains(string(msg), "connection_ack") {
				t.Fatalf("%s: acknowledged a payload that is not an object", proto)
			}
		}
		_ = conn.Close()
	}
}

// A subscribe under an id still running closes the connection with 4409,
// as graphql-transport-ws says; an id whose operation has ended can be
// used again.
func TestDuplicateOperationIDs(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(v string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() (map[string]any, error) {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m map[string]any
		err := conn.ReadJSON(&m)
		return m, err
	}
	send(`{"type":"connection_init","payload":{"authToken":"` + env.Token(t, "dup") + `"}}`)
	if m, err := recv(); err != nil || m["type"] != "connection_ack" {
		t.Fatalf("init: %v %v", m, err)
	}
	sub := `{"type":"subscribe","id":"1","payload":{"query":"subscription { userUpdated(id: \"dup\") { name } }"}}`
	send(sub)
	send(`{"type":"complete","id":"1"}`)
	for { // the server says when the operation has ended
		m, err := recv()
		if err != nil {
			t.Fatalf("waiting for the first operation to end: %v", err)
		}
		if m["type"] == "complete" && m["id"] == "1" {
			break
		}
	}
	send(sub) // the id is free again
	send(`{"type":"ping"}`)
	for {
		m, err := recv()
		if err != nil {
			t.Fatalf("before the duplicate: %v", err)
		}
		if m["type"] == "pong" {
			break
		}
	}
	send(sub) // "1" is running
	for {
		_, err := recv()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4409 {
			t.Fatalf("a second subscribe under a running id: %v, want close 4409", err)
		}
		return
	}
}

// Persisted-query errors over the WebSocket carry a code, as over HTTP.
func TestPersistedQueryErrorsOverWebsocket(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	read := func() string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init","payload":{"authToken":"`+env.Token(t, "apq-ws")+`"}}`))
	if m := read(); !strings.Contains(m, "connection_ack") {
		t.Fatalf("init: %s", m)
	}
	for i, ext := range []string{
		`{"persistedQuery":{"version":1,"sha256Hash":"deadbeef"}}`,
		`{"persistedQuery":{"version":9,"sha256Hash":"deadbeef"}}`,
	} {
		id := fmt.Sprint(i + 1)
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","id":"`+id+`","payload":{"query":"{ me { id } }","extensions":`+ext+`}}`))
		m := read()
		for strings.Contains(m, `"type":"complete"`) { // the previous operation's end
			m = read()
		}
		if !strings.Contains(m, `"id":"`+id+`"`) || !strings.Contains(m, `"code":"BAD_USER_INPUT"`) {
			t.Errorf("%s: %s", ext, m)
		}
	}
}
