package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

const secret = "whsec-test-0123456789"

// hit is one request a receiver got.
type hit struct {
	delivery, signature, event string
	body                       []byte
	channel, text              string
}

// receiver records what it is sent; answer decides each request's status.
type receiver struct {
	mu     sync.Mutex
	hits   []hit
	answer func(h hit, seen int) int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev struct {
		Channel string
		Message struct{ Text string }
	}
	_ = json.Unmarshal(body, &ev)
	h := hit{delivery: req.Header.Get(webhooks.DeliveryHeader), signature: req.Header.Get(webhooks.SignatureHeader),
		event: req.Header.Get(webhooks.EventHeader), body: body, channel: ev.Channel, text: ev.Message.Text}
	r.mu.Lock()
	seen := 0
	for _, o := range r.hits {
		if o.delivery == h.delivery {
			seen++
		}
	}
	r.hits = append(r.hits, h)
	answer := r.answer
	r.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		status = answer(h, seen)
	}
	w.WriteHeader(status)
}

// delivered lists the texts of channel's messages answered 2xx, in order.
func (r *receiver) accepted(channel string, ok func(hit, int) bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	seen := map[string]int{}
	for _, h := range r.hits {
		if h.channel == channel && ok(h, seen[h.delivery]) {
			out = append(out, h.text)
		}
		seen[h.delivery]++
	}
	return out
}

func fastHooks(o *node.Options) {
	o.Webhooks = webhooks.Options{RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Poll: 20 * time.Millisecond,
		MaxAttempts: 3}
}

func upsert(t *testing.T, n *brooktest.Node, id, url string, events ...string) {
	t.Helper()
	n.Must(t, env.AdminToken(t, "admin"), `mutation($id: ID!, $url: String!, $ev: [String!]!, $s: String!) {
		upsertWebhook(id: $id, url: $url, events: $ev, secret: $s) { id } }`,
		brooktest.Vars{"id": id, "url": url, "ev": events, "s": secret}, nil)
	t.Cleanup(func() {
		n.Must(t, env.AdminToken(t, "admin"), `mutation($id: ID!) { deleteWebhook(id: $id) }`, brooktest.Vars{"id": id}, nil)
	})
}

func channel(t *testing.T, n *brooktest.Node, owner, id string) string {
	t.Helper()
	var out struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, owner), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": id}}, &out)
	return out.CreateChannel.ID
}

func send(t *testing.T, n *brooktest.Node, user, cid, text string) {
	t.Helper()
	n.Must(t, env.Token(t, user), `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
		brooktest.Vars{"c": cid, "t": text}, nil)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deliveries are signed (a tampered body fails the check), retried after a
// 500 with the same delivery id, and in order per channel while retried.
func TestSignedRetriedInOrder(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := channel(t, n, alice, "hooks-"+tag)
	// Every delivery fails once: the second message must still wait for
	// the first.
	rcv := &receiver{answer: func(h hit, seen int) int {
		if seen == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	upsert(t, n, "signed-"+tag, srv.URL, "message.new", "message.updated")

	want := []string{"one", "two", "three", "four"}
	for _, text := range want {
		send(t, n, alice, cid, text)
	}
	ok := func(h hit, seen int) bool { return seen > 0 }
	waitFor(t, "four deliveries", func() bool { return len(rcv.accepted(cid, ok)) == 4 })
	if got := rcv.accepted(cid, ok); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v in order", got, want)
	}
	// Each attempt came in order too: no later message before an earlier
	// one was delivered.
	if got := rcv.accepted(cid, func(hit, int) bool { return true }); !slices.Equal(got, []string{"one", "one", "two", "two", "three", "three", "four", "four"}) {
		t.Fatalf("attempts %v: a later delivery went out before an earlier one succeeded", got)
	}
	rcv.mu.Lock()
	hits := slices.Clone(rcv.hits)
	rcv.mu.Unlock()
	for _, h := range hits {
		if h.channel != cid {
			continue
		}
		if h.event != "message.new" || h.delivery == "" {
			t.Fatalf("headers: event %q delivery %q", h.event, h.delivery)
		}
		if err := webhooks.Verify(secret, h.signature, h.body, 5*time.Minute, time.Now()); err != nil {
			t.Fatalf("signature of %s: %v", h.body, err)
		}
		tampered := append(slices.Clone(h.body[:len(h.body)-1]), ' ', '}')
		if webhooks.Verify(secret, h.signature, tampered, 5*time.Minute, time.Now()) == nil {
			t.Fatal("a tampered body verified")
		}
		if webhooks.Verify("another-secret-000000", h.signature, h.body, 5*time.Minute, time.Now()) == nil {
			t.Fatal("another secret verified")
		}
		var body map[string]any
		if err := json.Unmarshal(h.body, &body); err != nil || body["type"] != "message.new" || body["created_at"] == nil {
			t.Fatalf("body %s", h.body)
		}
	}
	// The receiver has the last attempt before the worker, which writes
	// the outcome once the answer is in, commits it.
	delivered := func() int {
		return n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND order_key = $2 AND status = 'DELIVERED' AND attempts = 2`,
			"signed-"+tag, "channel:"+cid)
	}
	waitFor(t, "four deliveries DELIVERED after 2 attempts", func() bool { return delivered() == 4 })
	if c := delivered(); c != 4 {
		t.Fatalf("%d deliveries DELIVERED after 2 attempts, want 4", c)
	}
}

// A receiver that is down gets its deliveries parked after MaxAttempts;
// an admin lists them and redelivers one to the receiver started again on
// the same port.
func TestParkedAndRedelivered(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := channel(t, n, alice, "park-"+tag)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	rcv := &receiver{}
	srv := httptest.NewUnstartedServer(rcv)
	srv.Listener = ln
	srv.Start()
	hook := "park-" + tag
	upsert(t, n, hook, srv.URL, "*")
	srv.Close() // killed: connections refused from now on

	send(t, n, alice, cid, "while down")
	admin := env.AdminToken(t, "admin")
	var list struct {
		WebhookDeliveries struct {
			Edges []struct {
				Node struct {
					ID, Key, EventType, Status, LastError string
					Attempts                              int
				}
			}
		}
	}
	// The channel's own (the hook takes "*": another test's leftover
	// events may be parked beside it).
	mine := -1
	waitFor(t, "a parked delivery", func() bool {
		n.Must(t, admin, `query($w: ID!) { webhookDeliveries(webhook: $w, status: PARKED) { edges { node { id key eventType status attempts lastError } } } }`,
			brooktest.Vars{"w": hook}, &list)
		mine = slices.IndexFunc(list.WebhookDeliveries.Edges, func(e struct {
			Node struct {
				ID, Key, EventType, Status, LastError string
				Attempts                              int
			}
		}) bool {
			return e.Node.Key == "channel:"+cid
		})
		return mine >= 0
	})
	d := list.WebhookDeliveries.Edges[mine].Node
	if d.Attempts != 3 || d.EventType != "message.new" || d.LastError == "" {
		t.Fatalf("parked delivery %+v, want 3 attempts of message.new with an error", d)
	}

	// Restarted on the same port, the receiver gets the delivery once an
	// admin redelivers it.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewUnstartedServer(rcv)
	srv2.Listener = ln2
	srv2.Start()
	defer srv2.Close()
	n.Must(t, admin, `mutation($d: ID!) { redeliverWebhook(delivery: $d) { status } }`, brooktest.Vars{"d": d.ID}, nil)
	waitFor(t, "the redelivery", func() bool { return len(rcv.accepted(cid, func(hit, int) bool { return true })) == 1 })
	waitFor(t, "DELIVERED", func() bool {
		return n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE id = $1 AND status = 'DELIVERED'`, d.ID) == 1
	})
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, h := range rcv.hits {
		if h.channel == cid && h.delivery != d.ID {
			t.Fatalf("delivery header %q, want %s", h.delivery, d.ID)
		}
	}
}

// A receiver that hangs, or answers 500, holds its own deliveries only:
// another webhook gets every event, and other channels' events go out,
// while it hangs or fails.
func TestHangingReceiverDelaysNothingElse(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		fastHooks(o)
		o.Webhooks.Concurrency = 4 // one slot per webhook
		o.Webhooks.Timeout = time.Minute
	}})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	release := make(chan struct{})
	var hung sync.WaitGroup
	hang := &receiver{answer: func(hit, int) int {
		hung.Add(1)
		defer hung.Done()
		<-release
		return http.StatusOK
	}}
	hangSrv := httptest.NewServer(hang)
	defer hangSrv.Close()
	defer close(release)
	ok := &receiver{}
	okSrv := httptest.NewServer(ok)
	defer okSrv.Close()
	// And one that fails every attempt with a 500: retried, it too holds
	// only its own deliveries.
	failing := &receiver{answer: func(hit, int) int { return http.StatusInternalServerError }}
	failSrv := httptest.NewServer(failing)
	defer failSrv.Close()
	upsert(t, n, "hang-"+tag, hangSrv.URL, "message.new")
	upsert(t, n, "ok-"+tag, okSrv.URL, "message.new")
	upsert(t, n, "fail-"+tag, failSrv.URL, "message.new")

	var cids []string
	for i := range 3 {
		cid := channel(t, n, alice, "hang-"+tag+"-"+string(rune('a'+i)))
		cids = append(cids, cid)
		send(t, n, alice, cid, "hello")
	}
	all := func(hit, int) bool { return true }
	waitFor(t, "the healthy receiver's deliveries", func() bool {
		got := 0
		for _, cid := range cids {
			got += len(ok.accepted(cid, all))
		}
		return got == 3
	})
	hang.mu.Lock()
	held := len(hang.hits)
	hang.mu.Unlock()
	refused := 0
	waitFor(t, "the failing receiver's attempts", func() bool {
		failing.mu.Lock()
		defer failing.mu.Unlock()
		refused = len(failing.hits)
		return refused > 0
	})
	if c := n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'DELIVERED'`, "fail-"+tag); c != 0 || refused == 0 {
		t.Fatalf("failing receiver: %d delivered, %d attempts; want 0 delivered and some attempts", c, refused)
	}
	// The hanging receiver holds what it was sent, unanswered.
	if c := n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'DELIVERED'`, "hang-"+tag); c != 0 || held == 0 {
		t.Fatalf("hanging receiver: %d delivered, %d held; want 0 delivered while it hangs", c, held)
	}
}

// An event no webhook wants costs no SQL statement: the products call
// Emit on every change.
func TestEmitWithoutWebhooksRunsNoSQL(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	before := n.Store.Statements()
	if err := n.Hooks.Emit(context.Background(), n.Store, webhooks.Event{Type: "message.new", Key: "channel:x", At: time.Now(),
		Payload: map[string]any{"channel": "x"}}); err != nil {
		t.Fatal(err)
	}
	if d := n.Store.Statements() - before; d != 0 {
		t.Fatalf("Emit with no webhook ran %d statements", d)
	}
}

// Bad input is refused with BAD_USER_INPUT and writes nothing.
func TestBadInput(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	admin := env.AdminToken(t, "admin")
	tag := brooktest.Tag()
	for _, c := range []struct {
		url, secret string
		events      []string
	}{
		{"ftp://example.com/hook", secret, []string{"message.new"}},
		{"not a url", secret, []string{"message.new"}},
		{"http://example.com/hook", "short", []string{"message.new"}},
		{"http://example.com/hook", secret, []string{}},
		{"http://example.com/hook", secret, []string{"no spaces allowed"}},
	} {
		r := n.Query(t, admin, `mutation($id: ID!, $url: String!, $ev: [String!]!, $s: String!) {
			upsertWebhook(id: $id, url: $url, events: $ev, secret: $s) { id } }`,
			brooktest.Vars{"id": "bad-" + tag, "url": c.url, "ev": c.events, "s": c.secret})
		brooktest.WantCode(t, r, "BAD_USER_INPUT")
	}
	r := n.Query(t, admin, `mutation { redeliverWebhook(delivery: "nope") { id } }`, nil)
	brooktest.WantCode(t, r, "BAD_USER_INPUT")
	// An id no webhook can have is refused before it reaches SQL (a NUL
	// byte was an INTERNAL error).
	for _, q := range []string{`query($w: ID!) { webhookDeliveries(webhook: $w) { edges { node { id } } } }`, `mutation($w: ID!) { deleteWebhook(id: $w) }`} {
		brooktest.WantCode(t, n.Query(t, admin, q, brooktest.Vars{"w": "a\x00b"}), "BAD_USER_INPUT")
	}
	if c := n.Count(t, `SELECT count(*) FROM webhooks WHERE id = $1`, "bad-"+tag); c != 0 {
		t.Fatalf("%d webhooks written by bad input", c)
	}
	_ = store.WebhookDeliveryStatus("")
}

// Retries back off: with a receiver that always answers 500, the waits
// between attempts double from RetryBase (less at most 20% jitter), and
// the delivery is parked after MaxAttempts.
func TestRetriesBackOff(t *testing.T) {
	const base = 200 * time.Millisecond
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		fastHooks(o)
		o.Webhooks.RetryBase, o.Webhooks.RetryMax, o.Webhooks.MaxAttempts = base, 10*base, 4
	}})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := channel(t, n, alice, "backoff-"+tag)
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Channel string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		// Only this channel's: other tests' messages (a Workers: -1 node
		// leaves its message jobs to later nodes) reach every webhook.
		if ev.Channel == cid {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	hook := "backoff-" + tag
	upsert(t, n, hook, srv.URL, "message.new")
	send(t, n, alice, cid, "again and again")
	waitFor(t, "the delivery parked", func() bool {
		return n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND order_key = $2 AND status = 'PARKED' AND attempts = 4`,
			hook, "channel:"+cid) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 4 {
		t.Fatalf("%d attempts, want 4", len(at))
	}
	for i := 1; i < len(at); i++ {
		// Lower bounds only: a loaded machine may be later, never earlier.
		want := time.Duration(float64(base<<(i-1)) * 0.8)
		if gap := at[i].Sub(at[i-1]); gap < want {
			t.Errorf("attempt %d came %s after attempt %d, want at least %s", i+1, gap, i, want)
		}
	}
}
