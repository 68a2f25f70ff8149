package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

func TestErrorCodes(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "erin")
	tests := []struct {
		name  string
		query string
		vars  brooktest.Vars
		code  string
	}{
		{"parse error", `{ me { id `, nil, "BAD_USER_INPUT"},
		{"unknown field", `{ nope }`, nil, "BAD_USER_INPUT"},
		{"wrong variable type", `query($ids: [ID!]!) { users(ids: $ids) { id } }`, brooktest.Vars{"ids": map[string]any{"a": 1}}, "BAD_USER_INPUT"},
		{"missing variable", `query($id: ID!) { user(id: $id) { id } }`, nil, "BAD_USER_INPUT"},
		{"invalid user id", `{ user(id: "a b") { id } }`, nil, "BAD_USER_INPUT"},
		{"too many ids", `query($ids: [ID!]!) { users(ids: $ids) { id } }`, brooktest.Vars{"ids": manyIDs(101)}, "BAD_USER_INPUT"},
		{"data not an object", `mutation { upsertUsers(users: [{id: "erin", data: "x"}]) { id } }`, nil, "BAD_USER_INPUT"},
		{"data too large", `mutation($d: JSON) { upsertUsers(users: [{id: "erin", data: $d}]) { id } }`, brooktest.Vars{"d": map[string]any{"x": strings.Repeat("a", 40000)}}, "BAD_USER_INPUT"},
		{"name too long", `mutation { upsertUsers(users: [{id: "erin", name: "` + strings.Repeat("n", 201) + `"}]) { id } }`, nil, "BAD_USER_INPUT"},
		{"duplicate ids", `mutation { upsertUsers(users: [{id: "erin"}, {id: "erin"}]) { id } }`, nil, "BAD_USER_INPUT"},
		{"upsert someone else", `mutation { upsertUsers(users: [{id: "frank"}]) { id } }`, nil, "FORBIDDEN"},
		{"get mutation", "", nil, "BAD_USER_INPUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *brooktest.Response
			if tc.name == "get mutation" {
				r = n.Get(t, tok, `mutation { upsertUsers(users: [{id: "erin", name: "via GET"}]) { id } }`)
			} else {
				r = n.Query(t, tok, tc.query, tc.vars)
			}
			if r.Code() != tc.code {
				t.Fatalf("code %q, want %q: %+v", r.Code(), tc.code, r.Errors)
			}
			if r.Errors[0].Message == "" {
				t.Fatal("empty message")
			}
		})
	}
	// None of the failed mutations wrote anything.
	var name *string
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT name FROM users WHERE id = 'erin'`).Scan(&name)
	if name != nil {
		t.Fatalf("a failed mutation wrote erin's name: %q", *name)
	}
}

func manyIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("u%d", i)
	}
	return out
}

func TestInternalErrorsHideDetails(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "ivan")
	n.Must(t, tok, `{ me { id } }`, nil, nil) // sign in while the database is there
	n.Store.DB().Close()
	r := n.Query(t, tok, `{ user(id: "someone") { id } }`, nil)
	if r.Code() != "INTERNAL" {
		t.Fatalf("got %+v", r.Errors)
	}
	msg := r.Errors[0].Message
	id, _ := r.Errors[0].Extensions["requestId"].(string)
	if id == "" || !strings.Contains(msg, id) {
		t.Fatalf("internal error must quote its request id: %q %v", msg, r.Errors[0].Extensions)
	}
	for _, leak := range []string{"pool", "closed", "sql", "SELECT", "pgx", "store:"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("internal error leaks %q: %q", leak, msg)
		}
	}
}

// A list costs the same number of SQL statements whatever its length.
func TestStatementsPerQueryAreConstant(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	admin := env.AdminToken(t, "admin")
	n.Must(t, admin, `{ me { id } }`, nil, nil)
	cost := func(q string, vars brooktest.Vars) int64 {
		before := n.Store.Statements()
		n.Must(t, admin, q, vars, nil)
		return n.Store.Statements() - before
	}
	for _, size := range []int{1, 10, 100} {
		ids := manyIDs(size)
		if c := cost(`query($ids: [ID!]!) { users(ids: $ids) { id name online } }`, brooktest.Vars{"ids": ids}); c != 1 {
			t.Fatalf("users(%d ids): %d statements, want 1", size, c)
		}
	}
}

func TestNoGoroutineLeakAfter10000SubscriptionCycles(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	ws := n.MustDial(t, env.Token(t, "cycler"))
	cycle := func() {
		sub := ws.Subscribe(`subscription { userUpdated(id: "nobody") { id } }`, nil)
		sub.Complete()
	}
	for i := 0; i < 50; i++ {
		cycle()
	}
	brooktest.Eventually(t, "warm-up subscriptions end", func() bool { _, s := n.Bus.Stats(); return s == 0 })
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 10000; i++ {
		cycle()
	}
	// The connection still works after all that, once the completed
	// subscriptions have ended. Until each one's context has been torn
	// down (after it left the bus) it counts against the connection's
	// limit of operations at once, so an operation may be refused with
	// RATE_LIMITED for a moment; it must pass soon after.
	brooktest.Eventually(t, "the connection runs an operation again", func() bool {
		m := ws.Subscribe(`{ me { id } }`, nil).Next()
		return m.Type == "next" && strings.Contains(string(m.Payload), `"cycler"`)
	})
	brooktest.Eventually(t, "all subscriptions end", func() bool {
		topics, subs := n.Bus.Stats()
		return topics == 0 && subs == 0 && runtime.NumGoroutine() <= before
	})
}

func TestLegacyGraphqlWsProtocol(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	d := websocket.Dialer{Subprotocols: []string{"graphql-ws"}}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(v any) {
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(want string) map[string]any {
		for {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if m["type"] == "ka" && want != "ka" {
				continue
			}
			if m["type"] != want {
				t.Fatalf("got %v, want %s", m, want)
			}
			return m
		}
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]any{"authToken": env.Token(t, "legacy")}})
	recv("connection_ack")
	send(map[string]any{"type": "start", "id": "1", "payload": map[string]any{"query": `subscription { userUpdated(id: "legacy") { name } }`}})
	time.Sleep(100 * time.Millisecond)
	n.Must(t, env.Token(t, "legacy"), `mutation { upsertUsers(users: [{id: "legacy", name: "Old Client"}]) { id } }`, nil, nil)
	m := recv("data")
	if !strings.Contains(fmt.Sprint(m["payload"]), "Old Client") {
		t.Fatalf("data: %v", m)
	}
	// After stop, as in subscriptions-transport-ws's own server, nothing
	// more comes for the operation.
	send(map[string]any{"type": "stop", "id": "1"})
	brooktest.Eventually(t, "subscription ends after stop", func() bool { _, s := n.Bus.Stats(); return s == 0 })
	n.Must(t, env.Token(t, "legacy"), `mutation { upsertUsers(users: [{id: "legacy", name: "Older Client"}]) { id } }`, nil, nil)
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var after map[string]any
	if err := conn.ReadJSON(&after); err == nil && after["type"] != "ka" {
		t.Fatalf("after stop: %v", after)
	}
}

func TestPersistedQueries(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "apq")
	query := fmt.Sprintf("query Persisted%d { me { id } }", time.Now().UnixNano())
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	post := func(n *brooktest.Node, body map[string]any) map[string]any {
		buf, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/query", bytes.NewReader(buf))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out
	}
	miss := post(a, map[string]any{"extensions": ext})
	if !strings.Contains(fmt.Sprint(miss["errors"]), "PERSISTED_QUERY_NOT_FOUND") {
		t.Fatalf("first hash-only request: %v", miss)
	}
	full := post(a, map[string]any{"query": query, "extensions": ext})
	if full["errors"] != nil {
		t.Fatalf("registering the query: %v", full)
	}
	// The hash now works on any node: the cache is shared through Redis.
	for _, n := range []*brooktest.Node{a, b} {
		hit := post(n, map[string]any{"extensions": ext})
		if hit["errors"] != nil || !strings.Contains(fmt.Sprint(hit["data"]), "apq") {
			t.Fatalf("hash-only request after registering: %v", hit)
		}
	}
	wrong := post(a, map[string]any{"query": `{ me { name } }`, "extensions": ext})
	if !strings.Contains(fmt.Sprint(wrong["errors"]), "BAD_USER_INPUT") {
		t.Fatalf("hash mismatch: %v", wrong)
	}
}

func TestLimits(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.DepthLimit = 3
		o.ComplexityLimit = 50
		o.TokenLimit = 200
	}})
	tok := env.Token(t, "limits")
	if r := n.Query(t, tok, `{ me { id } }`, nil); r.Code() != "" {
		t.Fatalf("a small query must pass: %+v", r.Errors)
	}
	deep := `{ a: me { id } b: users(ids: ["x"]) { id } }`
	if r := n.Query(t, tok, deep, nil); r.Code() != "" {
		t.Fatalf("depth 2 must pass: %+v", r.Errors)
	}
	if r := n.Query(t, tok, `query($ids: [ID!]!) { users(ids: $ids) { id name image role online lastActive createdAt } }`, brooktest.Vars{"ids": manyIDs(10)}); r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || r.Errors[0].Extensions["limit"] != "complexity" ||
		!strings.Contains(r.Errors[0].Message, "which exceeds the limit of 50") || len(r.Data) > 0 && string(r.Data) != "null" {
		t.Fatalf("complexity: %+v", r.Errors)
	}
	if r := n.Query(t, tok, `{ me { id } `+strings.Repeat(" a: me { id }", 60)+` }`, nil); r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("token limit: %+v", r.Errors)
	}
	// Introspection is deep by nature and is not counted.
	if r := n.Query(t, tok, `{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`, nil); r.Code() != "" {
		t.Fatalf("introspection: %+v", r.Errors)
	}
}

func TestDepthLimit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.DepthLimit = 1 }})
	r := n.Query(t, env.Token(t, "depth"), `fragment F on User { id } { me { ...F } }`, nil)
	if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || !strings.Contains(r.Errors[0].Message, "nested 2 levels") {
		t.Fatalf("depth through a fragment: %+v", r.Errors)
	}
}

func TestIntrospectionCanBeTurnedOff(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Introspection, o.Playground = false, false }})
	r := n.Query(t, env.Token(t, "prod"), `{ __schema { queryType { name } } }`, nil)
	if r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("introspection off: %+v", r.Errors)
	}
	resp, err := http.Get(n.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GraphiQL off: status %d", resp.StatusCode)
	}
}

func TestPlaygroundHealthAndMetrics(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	n.Must(t, env.Token(t, "metrics"), `{ me { id } }`, nil, nil)
	get := func(path string) (int, string) {
		resp, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "graphiql") || !strings.Contains(body, "/query") {
		t.Fatalf("GraphiQL page: %d", code)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"postgres":"ok"`) || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, body := get("/metrics")
	for _, series := range []string{
		`brook_graphql_operations_total{field="me",type="query"} 1`,
		`brook_graphql_operation_duration_seconds_bucket`,
		`brook_graphql_subscriptions_open 0`,
		`brook_websocket_connections_open 0`,
		`brook_bus_subscribers 0`,
	} {
		if code != 200 || !strings.Contains(body, series) {
			t.Fatalf("metrics lack %q", series)
		}
	}
}

func TestHealthReportsAnOutage(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	n.Store.DB().Close()
	resp, err := http.Get(n.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"postgres":"unreachable"`) {
		t.Fatalf("healthz with PostgreSQL gone: %d %s", resp.StatusCode, b)
	}
}

func TestWebsocketOriginPolicy(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.AllowedOrigins = "https://app.example" }})
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	for origin, ok := range map[string]bool{
		"":                     true, // not a browser
		"https://app.example":  true,
		"https://evil.example": false,
		n.URL:                  true, // same origin
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
		conn, resp, err := d.Dial(url, h)
		if ok != (err == nil) {
			t.Fatalf("origin %q: allowed=%v, err=%v", origin, ok, err)
		}
		if conn != nil {
			conn.Close()
		} else if resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %q refused with %d, want 403", origin, resp.StatusCode)
		}
	}
}

func TestShutdownClosesWebsocketsWithGoingAway(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	ws := n.MustDial(t, env.Token(t, "leaving"))
	ws.Subscribe(`subscription { userUpdated(id: "x") { id } }`, nil)
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		n.Stop()
		close(done)
	}()
	code, _ := ws.WaitClosed(5 * time.Second)
	if code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if _, s := n.Bus.Stats(); s != 0 {
		t.Fatalf("%d bus subscribers survive shutdown", s)
	}
	_ = context.Background
}

// The shared pinger pings graphql-transport-ws clients; one that answers
// stays connected, one that never answers is disconnected after two
// intervals.
func TestKeepAlivePings(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.PingInterval = 1500 * time.Millisecond }})
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/query"
	dial := func() *websocket.Conn {
		d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
		conn, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + env.Token(t, "pinga")}}); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	polite, rude := dial(), dial()
	done := make(chan error, 1)
	go func() {
		for {
			_ = rude.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := rude.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
	}()
	pings := 0
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		_ = polite.SetReadDeadline(end)
		var m map[string]any
		if err := polite.ReadJSON(&m); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				break
			}
			t.Fatalf("the client answering pings was disconnected: %v", err)
		}
		if m["type"] == "ping" {
			pings++
			if err := polite.WriteJSON(map[string]any{"type": "pong"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pings < 2 {
		t.Fatalf("%d pings in 5 s, want at least 2", pings)
	}
	select {
	case err := <-done:
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			t.Fatalf("the client that never answers is still connected: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client that never answers is still connected")
	}
}
