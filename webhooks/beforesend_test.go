package webhooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/webhooks"
)

// The before-send hook lets a message through, rewrites it or rejects it
// (FORBIDDEN, nothing written); its request is signed; a hook that fails
// (here: hangs past the timeout, or answers 500) lets the message through
// when it fails open and refuses it (UNAVAILABLE, nothing written) when it
// fails closed.
func TestBeforeSendHook(t *testing.T) {
	// Not parallel: its messages would be deliveries of the webhooks other
	// tests register (webhooks see every channel), miscounting theirs.
	var mu sync.Mutex
	var seen []webhooks.BeforeSendRequest
	var signatures []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req webhooks.BeforeSendRequest
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		seen = append(seen, req)
		signatures = append(signatures, r.Header.Get(webhooks.SignatureHeader))
		mu.Unlock()
		if err := webhooks.Verify(secret, r.Header.Get(webhooks.SignatureHeader), body, time.Minute, time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch req.Message.Text {
		case "buy cheap pills":
			_, _ = w.Write([]byte(`{"action": "reject", "reason": "spam"}`))
		case "darn it":
			_, _ = w.Write([]byte(`{"action": "rewrite", "text": "d*** it"}`))
		case "slow":
			time.Sleep(3 * time.Second)
			_, _ = w.Write([]byte(`{"action": "allow"}`))
		case "broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			_, _ = w.Write([]byte(`{"action": "allow"}`))
		}
	}))
	t.Cleanup(hook.Close)
	start := func(failClosed bool) *brooktest.Node {
		return env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
			o.Webhooks.BeforeSend = webhooks.BeforeSendOptions{URL: hook.URL, Secret: secret, Timeout: 200 * time.Millisecond, FailClosed: failClosed}
		}})
	}
	sendQ := `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id text } }`
	for _, closed := range []bool{false, true} {
		n := start(closed)
		tag := brooktest.Tag()
		alice := "alice-" + tag
		env.AddUsers(t, n, alice)
		cid := channel(t, n, alice, "hooked-"+tag)
		tok := env.Token(t, alice)
		var out struct{ SendMessage struct{ ID, Text string } }
		n.Must(t, tok, sendQ, brooktest.Vars{"c": cid, "t": "hello"}, &out)
		if out.SendMessage.Text != "hello" {
			t.Fatalf("allowed: %+v", out)
		}
		n.Must(t, tok, sendQ, brooktest.Vars{"c": cid, "t": "darn it"}, &out)
		if out.SendMessage.Text != "d*** it" {
			t.Fatalf("rewritten: %+v", out)
		}
		brooktest.WantCode(t, n.Query(t, tok, sendQ, brooktest.Vars{"c": cid, "t": "buy cheap pills"}), "FORBIDDEN")
		for _, text := range []string{"slow", "broken"} {
			start := time.Now()
			r := n.Query(t, tok, sendQ, brooktest.Vars{"c": cid, "t": text})
			// The hook answers "slow" after 3 s; the 200 ms timeout cuts
			// it short, open or closed (2 s leaves room for a loaded machine).
			if took := time.Since(start); text == "slow" && took > 2*time.Second {
				t.Fatalf("fail closed %v: the slow hook held the send %s, past its timeout", closed, took)
			}
			if closed {
				brooktest.WantCode(t, r, "UNAVAILABLE")
			} else if len(r.Errors) > 0 {
				t.Fatalf("failing open, %q: %s", text, r.Errors[0].Message)
			}
		}
		want := 4 // hello, d*** it, slow, broken
		if closed {
			want = 2
		}
		if got := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND type <> 'system'`, cid); got != want {
			t.Fatalf("fail closed %v: %d messages written, want %d", closed, got, want)
		}
		if got := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND text IN ('darn it', 'buy cheap pills')`, cid); got != 0 {
			t.Fatalf("the original of a rewritten or rejected message was written (%d)", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 10 || seen[0].Type != webhooks.BeforeSendEvent || seen[0].User == "" || seen[0].Channel == "" || signatures[0] == "" {
		t.Fatalf("the hook saw %d requests, first %+v (signature %q)", len(seen), seen[0], signatures[0])
	}
}
