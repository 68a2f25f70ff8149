package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// Fault: the node that rang is SIGKILLed while the call rings. The ring's
// timeout is an outbox job written with the ring, so the other node's
// worker misses it: the callee's devices get call.missed exactly once, and
// the ring is MISSED in PostgreSQL.
func TestNodeKilledWhileRinging(t *testing.T) {
	c := newCluster(t, false)
	env := map[string]string{"BROOK_WORKERS": "1", "CALL_RING_TIMEOUT": "3"}
	a, b := c.startBrook(t, nil, env), c.startBrook(t, nil, env)
	ctx := context.Background()
	c.users(t, a, "alice", "bob")

	// Bob's two devices follow his ring events on the node that survives.
	type device struct {
		conn *client.Conn
		sub  *client.Subscription
	}
	var devices []device
	for range 2 {
		conn, err := client.Dial(ctx, client.WebsocketURL(b.URL), client.DialOptions{Payload: client.AuthPayload(c.token(t, "bob", false))})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sub, err := conn.Subscribe(`subscription { myCallEvents { type call { id } ring { id user { id } state } } }`, nil)
		if err != nil {
			t.Fatal(err)
		}
		devices = append(devices, device{conn, sub})
	}
	next := func(sub *client.Subscription, within time.Duration) (string, string, error) {
		nctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		r, err := sub.Next(nctx)
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			return "", "", err
		}
		var ev struct {
			MyCallEvents struct {
				Type string
				Call struct{ ID string }
			}
		}
		err = r.Decode(&ev)
		return ev.MyCallEvents.Type, ev.MyCallEvents.Call.ID, err
	}

	var created struct{ CreateCall struct{ ID string } }
	if err := a.Client(c.token(t, "alice", false)).Run(ctx,
		`mutation { createCall(input: {type: "default", id: "killed-ring", members: ["bob"], ring: true}) { id } }`, nil, &created); err != nil {
		t.Fatal(err)
	}
	a.Kill() // well before the ring's 3 s expire: only b's worker is left
	call := created.CreateCall.ID
	start := time.Now()
	for i, d := range devices {
		// The ring itself (live or, for a device whose stream started
		// after it, from PostgreSQL), then its miss.
		for _, want := range []string{"call.ring", "call.missed", "call.ended"} {
			typ, id, err := next(d.sub, 30*time.Second)
			if err != nil || typ != want || id != call {
				t.Fatalf("device %d: got %s %s (%v), want %s of %s", i, typ, id, err, want, call)
			}
		}
	}
	missedAfter := time.Since(start)
	var state string
	if err := c.DB.QueryRow(ctx, `SELECT state FROM call_rings WHERE call_id = $1`, call).Scan(&state); err != nil || state != "MISSED" {
		t.Fatalf("ring state %q (%v), want MISSED", state, err)
	}
	var jobs int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = 'calls.ring_timeout'`).Scan(&jobs); err != nil || jobs != 0 {
		t.Fatalf("%d ring timeout jobs left (%v)", jobs, err)
	}
	// Exactly once: nothing more comes.
	for i, d := range devices {
		if typ, _, err := next(d.sub, time.Second); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("device %d: after call.missed got %q (%v)", i, typ, err)
		}
	}
	t.Logf("ring missed by the surviving node's worker %s after the ringing node was killed; one call.missed per device", missedAfter.Round(10*time.Millisecond))
}
