package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
)

func post(t *testing.T, url, token, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

func TestRequestBodyLimit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.MaxBodyBytes = 1000 }})
	tok := env.Token(t, "body")
	big, _ := json.Marshal(map[string]any{"query": "{ me { id } }", "variables": map[string]any{"pad": strings.Repeat("x", 2000)}})
	status, body := post(t, n.URL, tok, "application/json", big)
	if status != 400 || !strings.Contains(body, "BAD_USER_INPUT") || !strings.Contains(body, "limit of 1000 bytes") {
		t.Fatalf("oversized body: %d %s", status, body)
	}
	small, _ := json.Marshal(map[string]any{"query": "{ me { id } }"})
	if status, body := post(t, n.URL, tok, "application/json", small); status != 200 || !strings.Contains(body, `"body"`) {
		t.Fatalf("small body: %d %s", status, body)
	}
}

// POST must carry JSON: a form post from a foreign page (CSRF) is refused.
func TestPostNeedsJSON(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tok := env.Token(t, "csrf")
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"} {
		status, body := post(t, n.URL, tok, ct, []byte(`{"query":"mutation { upsertUsers(users: [{id: \"csrf\", name: \"pwned\"}]) { id } }"}`))
		if status < 400 || !strings.Contains(body, "BAD_USER_INPUT") {
			t.Fatalf("%s: %d %s", ct, status, body)
		}
	}
	var name *string
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT name FROM users WHERE id = 'csrf'`).Scan(&name)
	if name != nil {
		t.Fatal("a non-JSON POST ran a mutation")
	}
}

func TestBatchedRequests(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.BatchLimit = 3 }})
	tok := env.Token(t, "batcher")
	ops := []map[string]any{
		{"query": "{ me { id } }"},
		{"query": "{ nope }"},
		{"query": "query($id: ID!) { user(id: $id) { id } }", "variables": map[string]any{"id": "batcher"}},
	}
	body, _ := json.Marshal(ops)
	status, out := post(t, n.URL, tok, "application/json", body)
	var resps []client.Response
	if err := json.Unmarshal([]byte(out), &resps); err != nil || status != 200 || len(resps) != 3 {
		t.Fatalf("batch: %d %s", status, out)
	}
	if resps[0].Code() != "" || resps[1].Code() != "BAD_USER_INPUT" || resps[2].Code() != "" || !strings.Contains(string(resps[2].Data), "batcher") {
		t.Fatalf("batch answers: %s", out)
	}
	body, _ = json.Marshal(append(ops, ops[0]))
	if status, out := post(t, n.URL, tok, "application/json", body); status != 400 || !strings.Contains(out, "1 to 3 operations") {
		t.Fatalf("over the batch limit: %d %s", status, out)
	}
	if status, out := post(t, n.URL, "", "application/json", []byte(`[{"query":"{ me { id } }"}]`)); status != 401 || !strings.Contains(out, "UNAUTHENTICATED") {
		t.Fatalf("batch without token: %d %s", status, out)
	}
}

func TestAliasLimit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.AliasLimit = 3 }})
	tok := env.Token(t, "alias")
	if r := n.Query(t, tok, `{ a: me { id } b: me { id } c: me { id } }`, nil); r.Code() != "" {
		t.Fatalf("3 aliases: %+v", r.Errors)
	}
	r := n.Query(t, tok, `fragment F on User { x: id } { a: me { ...F } b: me { ...F } }`, nil)
	if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || r.Errors[0].Extensions["limit"] != "aliases" {
		t.Fatalf("4 aliases through fragments: %+v", r.Errors)
	}
}

func TestSubscriptionsPerConnection(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.MaxSubscriptionsPerConnection = 2 }})
	ws := n.MustDial(t, env.Token(t, "subs"))
	q := `subscription { userUpdated(id: "x") { id } }`
	first := ws.Subscribe(q, nil)
	ws.Subscribe(q, nil)
	brooktest.Eventually(t, "two subscriptions running", func() bool { _, s := n.Bus.Stats(); return s == 2 })
	third := ws.Subscribe(q, nil)
	m := third.Next()
	if m.Type != "next" || !strings.Contains(string(m.Payload), "RATE_LIMITED") || !strings.Contains(string(m.Payload), "limit") {
		t.Fatalf("third subscription: %s %s", m.Type, m.Payload)
	}
	first.Complete()
	brooktest.Eventually(t, "a slot frees up", func() bool {
		s := ws.Subscribe(q, nil)
		select {
		case m := <-s.C:
			s.Complete()
			return !strings.Contains(string(m.Payload), "RATE_LIMITED")
		case <-time.After(200 * time.Millisecond):
			s.Complete()
			return true // no refusal: it is running
		}
	})
}

func TestConnectionsPerUser(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.MaxConnectionsPerUser = 2 }})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.MaxConnectionsPerUser = 2 }})
	tok := env.Token(t, "many-tabs")
	a.MustDial(t, tok)
	second := b.MustDial(t, tok) // the cap holds across nodes
	_, err := a.Dial(t, brooktest.AuthPayload(tok))
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != 4429 || !strings.Contains(ce.Text, "RATE_LIMITED") {
		t.Fatalf("third connection: %v", err)
	}
	_ = second.Close()
	brooktest.Eventually(t, "a closed connection frees a place", func() bool {
		w, err := a.Dial(t, brooktest.AuthPayload(tok))
		if err == nil {
			_ = w.Close()
		}
		return err == nil
	})
}

func TestRateLimits(t *testing.T) {
	perUser := ephemeral.Rate{Rate: 5, Period: time.Minute, Burst: 5}
	opts := func(o *api.Options) {
		o.RatePerUser = perUser
		o.SendRates = map[string]ephemeral.Rate{"upsertUsers": {Rate: 2, Period: time.Minute, Burst: 2}}
	}
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: opts})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: opts})
	tok := env.Token(t, fmt.Sprintf("rl-%d", time.Now().UnixNano()))
	// The budget is shared across nodes: 5 in all, whichever node serves.
	for i := 0; i < 5; i++ {
		n := []*brooktest.Node{a, b}[i%2]
		if r := n.Query(t, tok, `{ me { id } }`, nil); r.Code() != "" {
			t.Fatalf("request %d: %+v", i+1, r.Errors)
		}
	}
	r := b.Query(t, tok, `{ me { id } }`, nil)
	if r.Code() != "RATE_LIMITED" {
		t.Fatalf("sixth request: %+v", r.Errors)
	}
	if retry, _ := r.Errors[0].Extensions["retryAfter"].(float64); retry <= 0 || retry > 60 {
		t.Fatalf("retryAfter: %v", r.Errors[0].Extensions)
	}
	// Another user has a budget of their own.
	if r := a.Query(t, env.Token(t, fmt.Sprintf("other-%d", time.Now().UnixNano())), `{ me { id } }`, nil); r.Code() != "" {
		t.Fatalf("other user: %+v", r.Errors)
	}
	// Sending mutations have their own budget on top.
	sender := fmt.Sprintf("sender-%d", time.Now().UnixNano())
	stok := env.Token(t, sender)
	upsert := fmt.Sprintf(`mutation { upsertUsers(users: [{id: %q}]) { id } }`, sender)
	for i := 0; i < 2; i++ {
		if r := a.Query(t, stok, upsert, nil); r.Code() != "" {
			t.Fatalf("send %d: %+v", i+1, r.Errors)
		}
	}
	if r := a.Query(t, stok, upsert, nil); r.Code() != "RATE_LIMITED" || !strings.Contains(r.Errors[0].Message, "upsertUsers") {
		t.Fatalf("third send: %+v", r.Errors)
	}
	if r := a.Query(t, stok, `{ me { id } }`, nil); r.Code() != "" {
		t.Fatalf("a query after the send budget is spent: %+v", r.Errors)
	}
	// A mutation whose sending fields do not all fit is refused whole:
	// one event is left, and neither of the two upserts happens.
	twice := fmt.Sprintf("twice-%d", time.Now().UnixNano())
	ttok := env.Token(t, twice)
	if r := a.Query(t, ttok, fmt.Sprintf(`mutation { upsertUsers(users: [{id: %q}]) { id } }`, twice), nil); r.Code() != "" {
		t.Fatalf("first send: %+v", r.Errors)
	}
	r = a.Query(t, ttok, `mutation { x: upsertUsers(users: [{id: "rl-x", name: "X"}]) { id } y: upsertUsers(users: [{id: "rl-y", name: "Y"}]) { id } }`, nil)
	if r.Code() != "RATE_LIMITED" || r.Status != 200 || len(r.Errors) != 1 {
		t.Fatalf("two sends with one left: %d %+v", r.Status, r.Errors)
	}
	// More sends than the budget's burst can never pass: refused as such,
	// with no retry hint, and the request budget is not spent by it.
	r = a.Query(t, env.Token(t, fmt.Sprintf("many-%d", time.Now().UnixNano())),
		`mutation { x: upsertUsers(users: [{id: "rl-x"}]) { id } y: upsertUsers(users: [{id: "rl-y"}]) { id } z: upsertUsers(users: [{id: "rl-z"}]) { id } }`, nil)
	if r.Code() != "RATE_LIMITED" || !strings.Contains(r.Errors[0].Message, "more than 2 times") || r.Errors[0].Extensions["retryAfter"] != nil {
		t.Fatalf("three sends with a burst of two: %+v", r.Errors)
	}
	for _, id := range []string{"rl-x", "rl-y", "rl-z"} {
		if u, err := a.Store.User(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user %s was written by a refused mutation: %+v %v", id, u, err)
		}
	}
}

func TestRateLimitPerIP(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.RatePerIP = ephemeral.Rate{Rate: 3, Period: time.Minute, Burst: 3}
	}, Node: ownBudgets})
	// Unauthenticated requests count too, and a WebSocket upgrade is one request.
	_ = n.Query(t, "", `{ me { id } }`, nil)
	_ = n.Query(t, "", `{ me { id } }`, nil)
	n.MustDial(t, env.Token(t, "ip"))
	r := n.Query(t, env.Token(t, "ip"), `{ me { id } }`, nil)
	if r.Status != 429 || r.Code() != "RATE_LIMITED" {
		t.Fatalf("fourth request from the address: %d %+v", r.Status, r.Errors)
	}
	// Requests that never reach an operation are refused up front too.
	for _, token := range []string{"", "not-a-token"} {
		r := n.Query(t, token, `{ me { id } }`, nil)
		if r.Status != 429 || r.Code() != "RATE_LIMITED" {
			t.Fatalf("request with token %q: %d %+v", token, r.Status, r.Errors)
		}
	}
	if _, err := n.Dial(t, brooktest.AuthPayload(env.Token(t, "ip"))); err == nil {
		t.Fatal("a WebSocket upgrade from a spent address was accepted")
	}
}

// ownBudgets gives a node Redis keys of its own, so that its address budget
// (every test request comes from 127.0.0.1) is not one another test spent.
func ownBudgets(o *node.Options) { o.RedisPrefix += fmt.Sprint("own", time.Now().UnixNano(), ":") }

// Requests that fail before any operation runs spend their address's budget
// when they end: the one that finds it spent has already been answered, and
// from then on the node refuses the address up front without asking Redis.
func TestRateLimitPerIPCountsFailedRequests(t *testing.T) {
	logger, logged := captureLogs()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.RatePerIP = ephemeral.Rate{Rate: 2, Period: time.Minute, Burst: 2}
	}, Node: ownBudgets, Logger: logger})
	tok := env.Token(t, "failing")
	for i, req := range []struct{ token, query string }{{"not-a-token", `{ me { id } }`}, {tok, `{ me { id }`}, {tok, `{ nope }`}} {
		if r := n.Query(t, req.token, req.query, nil); r.Status == 429 || r.Code() == "" {
			t.Fatalf("request %d: %d %+v", i+1, r.Status, r.Errors)
		}
		// A request that ran no operation is charged after its answer
		// is sent; its log line comes once that is done.
		brooktest.Eventually(t, "the request charged", func() bool { return strings.Count(logged(), "msg=request ") == i+1 })
	}
	if r := n.Query(t, tok, `{ me { id } }`, nil); r.Status != 429 || r.Code() != "RATE_LIMITED" {
		t.Fatalf("fourth request: %d %+v", r.Status, r.Errors)
	}
}

// Tokens and secrets never reach the logs, whatever happens to a request.
func TestTokensNeverLogged(t *testing.T) {
	logger, logged := captureLogs()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Logger: logger})
	tok := env.Token(t, "secretive")
	n.Must(t, tok, `{ me { id } }`, nil, nil)
	_ = n.Query(t, tok, `{ nope }`, nil)
	_ = n.Query(t, tok+"x", `{ me { id } }`, nil)
	ws := n.MustDial(t, tok)
	ws.Subscribe(`{ me { id } }`, nil).Expect("next")
	_, _ = n.Dial(t, brooktest.AuthPayload(tok[:len(tok)-2]))
	n.Store.DB().Close() // an internal error is logged in full
	_ = n.Query(t, tok, `{ user(id: "x") { id } }`, nil)
	text := logged()
	if !strings.Contains(text, "internal error") || !strings.Contains(text, "request_id") {
		t.Fatalf("expected request and error logs, got:\n%s", text)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	for _, secret := range []string{tok, sig, brooktest.Secret} {
		if strings.Contains(text, secret) {
			t.Fatalf("logs contain a secret %q", secret[:10])
		}
	}
}

// captureLogs returns a logger (debug and up) and what it has logged so far.
func captureLogs() (*slog.Logger, func() string) {
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return logger, func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// An operation refused for another budget still spends its request's
// address budget: a client cannot step around the address limit by sending
// operations that are refused anyway.
func TestRefusedRequestsSpendTheAddressBudget(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.RatePerIP = ephemeral.Rate{Rate: 3, Period: time.Minute, Burst: 3}
		o.RatePerUser = ephemeral.Rate{Rate: 1, Period: time.Minute, Burst: 1}
	}, Node: ownBudgets})
	tok := env.Token(t, fmt.Sprintf("refused-%d", time.Now().UnixNano()))
	want := []struct {
		status int
		code   string
	}{{200, ""}, {200, "RATE_LIMITED"}, {200, "RATE_LIMITED"}}
	for i, w := range want {
		r := n.Query(t, tok, `{ me { id } }`, nil)
		if r.Status != w.status || r.Code() != w.code {
			t.Fatalf("request %d: %d %+v, want %d %s", i+1, r.Status, r.Errors, w.status, w.code)
		}
	}
	// The refused requests spent the address's budget as they ended (after
	// their answers were sent), so the address is soon refused itself.
	brooktest.Eventually(t, "the address is refused", func() bool {
		r := n.Query(t, tok, `{ me { id } }`, nil)
		return r.Status == 429 && r.Code() == "RATE_LIMITED"
	})
}

// typing.stop never spends the typing budget: a client that typed in a
// burst can still say it stopped (nothing on the server would).
func TestTypingStopIsFree(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.SendRates = map[string]ephemeral.Rate{"sendTypingEvent": {Rate: 1, Period: time.Minute, Burst: 2}}
	}})
	user := fmt.Sprintf("typist-%d", time.Now().UnixNano())
	tok := env.Token(t, user)
	n.Must(t, tok, `mutation($id: ID!) { upsertUsers(users: [{id: $id}]) { id } }`, brooktest.Vars{"id": user}, nil)
	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, tok, `mutation { createChannel(input: {type: "messaging"}) { id } }`, nil, &ch)
	typing := func(on bool) *brooktest.Response {
		return n.Query(t, tok, `mutation($c: ID!, $on: Boolean!) { sendTypingEvent(channel: $c, typing: $on) }`,
			brooktest.Vars{"c": ch.CreateChannel.ID, "on": on})
	}
	for i := 0; i < 2; i++ {
		if r := typing(true); r.Code() != "" {
			t.Fatalf("typing.start %d: %+v", i+1, r.Errors)
		}
	}
	if r := typing(true); r.Code() != "RATE_LIMITED" {
		t.Fatalf("a third typing.start in the burst: %+v", r.Errors)
	}
	for i := 0; i < 3; i++ {
		if r := typing(false); r.Code() != "" {
			t.Fatalf("typing.stop %d: %+v", i+1, r.Errors)
		}
	}
}

// A WebSocket connection is one request in the log: one line, written when
// the connection closes (its HTTP handler returned long before), with its
// user, status 101 and the operations it ran.
func TestWebsocketLoggedWhenItCloses(t *testing.T) {
	logger, logged := captureLogs()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Logger: logger})
	ws := n.MustDial(t, env.Token(t, "logan"))
	ws.Subscribe(`{ me { id } }`, nil).Expect("next")
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(logged(), "\n") {
			if strings.Contains(l, "status=101") {
				out = append(out, l)
			}
		}
		return out
	}
	if l := lines(); len(l) != 0 {
		t.Fatalf("the open connection was logged: %q", l)
	}
	_ = ws.Close()
	brooktest.Eventually(t, "the closed connection is logged", func() bool { return len(lines()) == 1 })
	if l := lines()[0]; !strings.Contains(l, "user=logan") || !strings.Contains(l, `ops="[query me]"`) {
		t.Fatalf("the connection's line: %s", l)
	}
}

// A refusal for rate gives one wait, in whole seconds, in the Retry-After
// header and in extensions.retryAfter alike: a header of 1 beside a body
// of 0.1 leaves a client to guess which to honor.
func TestRetryAfterHeaderMatchesBody(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) {
		o.RatePerIP = ephemeral.Rate{Rate: 4, Period: time.Second, Burst: 1} // a wait under a second
	}, Node: ownBudgets})
	tok := env.Token(t, "retry-after")
	refused := 0
	for i := 0; i < 6; i++ {
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/query", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			continue
		}
		refused++
		var out struct {
			Errors []struct {
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(raw, &out); err != nil || len(out.Errors) == 0 {
			t.Fatalf("429 %s: %v", raw, err)
		}
		header := resp.Header.Get("Retry-After")
		body, _ := out.Errors[0].Extensions["retryAfter"].(float64)
		if header != fmt.Sprint(body) || body < 1 || body != float64(int(body)) {
			t.Errorf("request %d: Retry-After %q, extensions.retryAfter %v: want the same whole seconds, at least 1", i+1, header, out.Errors[0].Extensions["retryAfter"])
		}
	}
	if refused < 2 {
		t.Fatalf("%d of 6 requests at once were refused, with a burst of 1", refused)
	}
}
