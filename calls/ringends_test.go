package calls_test

import (
	"testing"
	"time"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// endCall cancels the rings still ringing: every device of each rung user
// (two of bob's, on two nodes) stops ringing with call.ring_cancelled and
// hears call.ended, the caller too; the rings are CANCELLED, and their
// timeout later finds nothing to miss.
func TestEndCallCancelsRings(t *testing.T) {
	t.Parallel()
	short := func(o *node.Options) { o.CallRingTimeout = time.Second }
	a := env.StartNode(t, brooktest.NodeOptions{Node: short})
	b := env.StartNode(t, brooktest.NodeOptions{Node: short, Workers: -1})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, a, alice, bob, carol)
	call := createCall(t, a, alice, "default", "end-"+tag, bob, carol)
	joinCall(t, a, alice, call)
	caller := subscribeRings(t, a, alice)
	phone, laptop, other := subscribeRings(t, a, bob), subscribeRings(t, b, bob), subscribeRings(t, b, carol)
	ringCall(t, a, alice, call, bob, carol)
	for _, dev := range []*brooktest.Sub{phone, laptop} {
		wantRing(t, dev, "call.ring", call, bob)
	}
	wantRing(t, other, "call.ring", call, carol)

	var ended struct{ EndCall bool }
	a.Must(t, env.Token(t, alice), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": call}, &ended)
	if !ended.EndCall {
		t.Fatal("endCall ended no session")
	}
	for _, dev := range []*brooktest.Sub{phone, laptop} {
		wantRing(t, dev, "call.ring_cancelled", call, bob)
		if ev := nextRing(t, dev); ev.Type != "call.ended" || ev.Call.ID != call {
			t.Fatalf("after the cancel: %+v", ev)
		}
	}
	wantRing(t, other, "call.ring_cancelled", call, carol)
	if ev := nextRing(t, other); ev.Type != "call.ended" {
		t.Fatalf("after the cancel: %+v", ev)
	}
	got := map[string]int{}
	for range 3 {
		got[nextRing(t, caller).Type]++
	}
	if got["call.ring_cancelled"] != 2 || got["call.ended"] != 1 {
		t.Fatalf("caller's events %v, want 2 call.ring_cancelled and 1 call.ended", got)
	}
	if c := a.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND state = 'CANCELLED'`, call); c != 2 {
		t.Fatalf("%d rings CANCELLED, want 2", c)
	}
	// The timeout job runs and misses nothing; nobody hears more.
	time.Sleep(time.Second)
	a.WaitForJobs(t)
	if c := a.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND state <> 'CANCELLED'`, call); c != 0 {
		t.Fatalf("%d rings changed after the cancel", c)
	}
	for _, dev := range []*brooktest.Sub{phone, laptop, other, caller} {
		dev.None(100 * time.Millisecond)
	}

	// A call that rings before anyone joined: endCall has no session to
	// end, and still stops the rings.
	early := createCall(t, a, alice, "default", "end2-"+tag, bob, carol)
	ringCall(t, a, alice, early, bob)
	wantRing(t, phone, "call.ring", early, bob)
	a.Must(t, env.Token(t, alice), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": early}, &ended)
	if ended.EndCall {
		t.Fatal("endCall reported a session that was never live")
	}
	wantRing(t, phone, "call.ring_cancelled", early, bob)
	if ev := nextRing(t, phone); ev.Type != "call.ended" || ev.Call.ID != early {
		t.Fatalf("after the cancel: %+v", ev)
	}
	// A member who is no host may not end it: its rings keep ringing.
	late := createCall(t, a, alice, "default", "end3-"+tag, bob, carol)
	ringCall(t, a, alice, late, bob)
	wantRing(t, phone, "call.ring", late, bob)
	brooktest.WantCode(t, a.Query(t, env.Token(t, carol), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": late}), api.CodeForbidden)
	if s := ringState(t, a, late, bob); s != "RINGING" {
		t.Fatalf("a refused endCall left the ring %s", s)
	}
}

// A session ended by its type's maxDurationSeconds cancels the call's
// rings still ringing, like endCall.
func TestMaxDurationCancelsRings(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	typ := "shortring-" + tag
	upsertCallType(t, n, typ, map[string]any{"maxDurationSeconds": 2, "ringTimeoutSeconds": 60})
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	call := createCall(t, n, alice, typ, "md-"+tag, bob, carol)
	joinCall(t, n, alice, call)
	caller, phone := subscribeRings(t, n, alice), subscribeRings(t, n, bob)
	ringCall(t, n, alice, call, bob)
	wantRing(t, phone, "call.ring", call, bob)
	wantRing(t, phone, "call.ring_cancelled", call, bob)
	if ev := nextRing(t, phone); ev.Type != "call.ended" {
		t.Fatalf("after the cancel: %+v", ev)
	}
	wantRing(t, caller, "call.ring_cancelled", call, bob)
	if s := ringState(t, n, call, bob); s != "CANCELLED" {
		t.Fatalf("ring state %s", s)
	}
}

// A rung user who joins the call accepts the ring: the caller and every
// device of the user hear call.accepted once, and the ring is decided
// (acceptCall then finds nothing ringing).
func TestJoinAcceptsRing(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, a, alice, bob, carol)
	call := createCall(t, a, alice, "default", "ja-"+tag, bob, carol)
	caller := subscribeRings(t, a, alice)
	phone, laptop := subscribeRings(t, a, bob), subscribeRings(t, b, bob)
	ringCall(t, a, alice, call, bob)
	for _, dev := range []*brooktest.Sub{phone, laptop} {
		wantRing(t, dev, "call.ring", call, bob)
	}
	joinCall(t, b, bob, call) // from the laptop
	for _, dev := range []*brooktest.Sub{phone, laptop, caller} {
		if ev := wantRing(t, dev, "call.accepted", call, bob); ev.Ring.State != "ACCEPTED" {
			t.Fatalf("call.accepted %+v", ev.Ring)
		}
	}
	if s := ringState(t, a, call, bob); s != "ACCEPTED" {
		t.Fatalf("ring state %s", s)
	}
	brooktest.WantCode(t, a.Query(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeConflict)
	// Joining again (another device), and joining unrung, decide nothing.
	joinCall(t, a, bob, call)
	joinCall(t, a, carol, call)
	for _, dev := range []*brooktest.Sub{phone, laptop, caller} {
		dev.None(200 * time.Millisecond)
	}
}

// Joins racing acceptCall: each ring is accepted exactly once, whichever
// wins, and its caller hears exactly one call.accepted for it.
func TestJoinRacesAccept(t *testing.T) {
	t.Parallel()
	const callees = 8
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	var members []string
	for i := range callees {
		members = append(members, "j"+string(rune('a'+i))+"-"+tag)
	}
	env.AddUsers(t, n, append([]string{alice}, members...)...)
	call := createCall(t, n, alice, "default", "jr-"+tag, members...)
	caller := subscribeRings(t, n, alice)
	ringCall(t, n, alice, call, members...)
	codes := make(chan string, 2*callees)
	for _, m := range members {
		go func() {
			codes <- n.Query(t, env.Token(t, m), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}).Code()
		}()
		go func() { codes <- n.Query(t, env.Token(t, m), joinCallQuery, brooktest.Vars{"id": call}).Code() }()
	}
	for range 2 * callees {
		if code := <-codes; code != "" && code != api.CodeConflict {
			t.Fatalf("accept or join: %s", code)
		}
	}
	accepted := map[string]int{}
	for range callees {
		ev := nextRing(t, caller)
		if ev.Type != "call.accepted" {
			t.Fatalf("caller got %+v", ev)
		}
		accepted[ev.Ring.User.ID]++
	}
	caller.None(200 * time.Millisecond)
	for _, m := range members {
		if accepted[m] != 1 {
			t.Fatalf("call.accepted per callee: %v", accepted)
		}
	}
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND state = 'ACCEPTED'`, call); c != callees {
		t.Fatalf("%d rings ACCEPTED, want %d", c, callees)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_participants WHERE call_id = $1`, call); c != callees {
		t.Fatalf("%d participants, want %d", c, callees)
	}
}
