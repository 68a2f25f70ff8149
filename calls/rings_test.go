package calls_test

import (
	"testing"
	"time"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// ringEvent is a myCallEvents message as the tests select it.
type ringEvent struct {
	Type string
	Call struct{ ID string }
	Ring *struct {
		ID     string
		User   struct{ ID string }
		Caller struct{ ID string }
		State  string
		Reason *string
	}
}

const myCallEventsQuery = `subscription { myCallEvents { type call { id } ring { id user { id } caller { id } state reason } } }`

// subscribeRings opens a device's myCallEvents on n and waits until it is
// live on the node's bus (the test's node serves nothing else meanwhile).
func subscribeRings(t *testing.T, n *brooktest.Node, user string) *brooktest.Sub {
	t.Helper()
	_, before := n.Bus.Stats()
	sub := n.MustDial(t, env.Token(t, user)).Subscribe(myCallEventsQuery, nil)
	brooktest.Eventually(t, "myCallEvents live", func() bool { _, now := n.Bus.Stats(); return now > before })
	return sub
}

func nextRing(t *testing.T, sub *brooktest.Sub) ringEvent {
	t.Helper()
	var out struct{ MyCallEvents ringEvent }
	sub.NextData(&out)
	return out.MyCallEvents
}

// wantRing reads the next event and checks its type, call and rung user.
func wantRing(t *testing.T, sub *brooktest.Sub, typ, call, user string) ringEvent {
	t.Helper()
	ev := nextRing(t, sub)
	if ev.Type != typ || ev.Call.ID != call || ev.Ring == nil || ev.Ring.User.ID != user {
		t.Fatalf("got %+v (ring %+v), want %s of %s for %s", ev, ev.Ring, typ, call, user)
	}
	return ev
}

const ringCallQuery = `mutation($id: ID!, $m: [ID!]!) { ringCall(id: $id, members: $m) { id user { id } caller { id } state reason } }`

type ringResult struct {
	ID     string
	User   struct{ ID string }
	State  string
	Reason *string
}

func ringCall(t *testing.T, n *brooktest.Node, user, call string, members ...string) []ringResult {
	t.Helper()
	var out struct{ RingCall []ringResult }
	n.Must(t, env.Token(t, user), ringCallQuery, brooktest.Vars{"id": call, "m": members}, &out)
	return out.RingCall
}

func ringState(t *testing.T, n *brooktest.Node, call, user string) string {
	t.Helper()
	var state string
	if err := n.Store.DB().QueryRow(t.Context(), `SELECT state FROM call_rings WHERE call_id = $1 AND user_id = $2 ORDER BY id DESC LIMIT 1`,
		call, user).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

// busEventsReceived is how many events a node has received from Redis.
func busEventsReceived(t *testing.T, n *brooktest.Node) float64 {
	t.Helper()
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "brook_bus_events_received_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// A ring reaches every device of the callee, each node's devices for one
// publish; accepting on one device stops the others and tells the caller;
// a device that subscribes while the call rings still rings.
func TestRingAcceptOnOneDevice(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, a, alice, bob)
	caller := subscribeRings(t, a, alice)
	phone, laptop := subscribeRings(t, b, bob), subscribeRings(t, b, bob)
	before := busEventsReceived(t, b)

	var created struct {
		CreateCall struct {
			ID    string
			Rings []struct {
				User  struct{ ID string }
				State string
			}
		}
	}
	a.Must(t, env.Token(t, alice), `mutation($id: ID!, $m: [ID!]) { createCall(input: {type: "default", id: $id, members: $m, ring: true}) {
		id rings { user { id } state } } }`, brooktest.Vars{"id": "r1-" + tag, "m": []string{bob}}, &created)
	call := created.CreateCall.ID
	if r := created.CreateCall.Rings; len(r) != 1 || r[0].User.ID != bob || r[0].State != "RINGING" {
		t.Fatalf("rings after createCall: %+v", r)
	}
	for _, dev := range []*brooktest.Sub{phone, laptop} {
		if ev := wantRing(t, dev, "call.ring", call, bob); ev.Ring.Caller.ID != alice || ev.Ring.State != "RINGING" {
			t.Fatalf("call.ring %+v", ev.Ring)
		}
	}
	// One publish to bob's topic served both devices on node b.
	if got := busEventsReceived(t, b) - before; got != 1 {
		t.Fatalf("node b received %v events for a ring of two devices, want 1", got)
	}
	// A third device connecting now rings too (from PostgreSQL).
	tablet := b.MustDial(t, env.Token(t, bob)).Subscribe(myCallEventsQuery, nil)
	wantRing(t, tablet, "call.ring", call, bob)

	var acc struct{ AcceptCall struct{ State string } }
	b.Must(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}, &acc)
	if acc.AcceptCall.State != "ACCEPTED" {
		t.Fatalf("acceptCall: %+v", acc)
	}
	for _, dev := range []*brooktest.Sub{phone, laptop, tablet, caller} {
		wantRing(t, dev, "call.accepted", call, bob)
	}
	if s := ringState(t, a, call, bob); s != "ACCEPTED" {
		t.Fatalf("ring state %s", s)
	}
	// Decided once: no second decision.
	brooktest.WantCode(t, b.Query(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeConflict)
	brooktest.WantCode(t, b.Query(t, env.Token(t, bob), `mutation($id: ID!) { rejectCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeConflict)
	// Bob joins: ringing him again skips him (he is in the call).
	joinCall(t, b, bob, call)
	if rings := ringCall(t, a, alice, call, bob); len(rings) != 0 {
		t.Fatalf("rang a member in the call: %+v", rings)
	}
	phone.None(100 * time.Millisecond)
}

// A callee who declines a one-to-one call ends it for the caller: the
// caller's session ends, and both get call.rejected then call.ended.
func TestRingRejectEndsOneToOne(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	call := createCall(t, n, alice, "default", "r2-"+tag, bob)
	j := joinCall(t, n, alice, call)
	session := subscribeCallEvents(t, n, alice, j.JoinCall.Participant.ID)
	caller, callee := subscribeRings(t, n, alice), subscribeRings(t, n, bob)
	ringCall(t, n, alice, call, bob)
	wantRing(t, callee, "call.ring", call, bob)

	var rej struct {
		RejectCall struct {
			State  string
			Reason string
		}
	}
	n.Must(t, env.Token(t, bob), `mutation($id: ID!) { rejectCall(id: $id, reason: DECLINED) { state reason } }`, brooktest.Vars{"id": call}, &rej)
	if rej.RejectCall.State != "REJECTED" || rej.RejectCall.Reason != "DECLINED" {
		t.Fatalf("rejectCall: %+v", rej)
	}
	for _, dev := range []*brooktest.Sub{caller, callee} {
		if ev := wantRing(t, dev, "call.rejected", call, bob); ev.Ring.Reason == nil || *ev.Ring.Reason != "DECLINED" {
			t.Fatalf("call.rejected %+v", ev.Ring)
		}
		wantRing(t, dev, "call.ended", call, bob)
	}
	if ev := nextCallEvent(t, session); ev.Type != "session.ended" {
		t.Fatalf("alice's session: %+v", ev)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_sessions WHERE call_id = $1 AND ended_at IS NULL`, call); c != 0 {
		t.Fatalf("%d live sessions after the callee rejected", c)
	}
}

// A ring nobody answers is missed once per rung user, on every device, by
// the durable timeout job; a group call goes on, a one-to-one call ends.
func TestRingMissedOnce(t *testing.T) {
	t.Parallel()
	short := func(o *node.Options) { o.CallRingTimeout = time.Second }
	n := env.StartNode(t, brooktest.NodeOptions{Node: short})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	group := createCall(t, n, alice, "default", "r3-"+tag, bob, carol)
	caller := subscribeRings(t, n, alice)
	phone, laptop, other := subscribeRings(t, n, bob), subscribeRings(t, n, bob), subscribeRings(t, n, carol)
	ringCall(t, n, alice, group, bob, carol)
	for _, dev := range []*brooktest.Sub{phone, laptop} {
		wantRing(t, dev, "call.ring", group, bob)
		wantRing(t, dev, "call.missed", group, bob)
	}
	wantRing(t, other, "call.ring", group, carol)
	wantRing(t, other, "call.missed", group, carol)
	missed := map[string]int{}
	for range 2 {
		ev := nextRing(t, caller)
		if ev.Type != "call.missed" {
			t.Fatalf("caller got %+v", ev)
		}
		missed[ev.Ring.User.ID]++
	}
	if missed[bob] != 1 || missed[carol] != 1 {
		t.Fatalf("caller's call.missed by user: %v", missed)
	}
	n.WaitForJobs(t)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": group}), api.CodeConflict)
	for _, dev := range []*brooktest.Sub{phone, laptop, other, caller} {
		dev.None(200 * time.Millisecond) // no second call.missed, no call.ended
	}

	// One-to-one: the missed ring ends the call for the caller.
	one := createCall(t, n, alice, "default", "r3b-"+tag, bob)
	ringCall(t, n, alice, one, bob)
	wantRing(t, phone, "call.ring", one, bob)
	wantRing(t, phone, "call.missed", one, bob)
	wantRing(t, phone, "call.ended", one, bob)
	wantRing(t, caller, "call.missed", one, bob)
	wantRing(t, caller, "call.ended", one, bob)
	if s := ringState(t, n, one, bob); s != "MISSED" {
		t.Fatalf("ring state %s", s)
	}
}

// Accepts racing the timeout: every ring is decided exactly once, ACCEPTED
// or MISSED, and its caller hears exactly one decision for it.
func TestRingAcceptRacesTimeout(t *testing.T) {
	t.Parallel()
	const callees = 12
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2, Node: func(o *node.Options) { o.CallRingTimeout = time.Second }})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	users := []string{alice}
	var members []string
	for i := range callees {
		members = append(members, "u"+string(rune('a'+i))+"-"+tag)
	}
	env.AddUsers(t, n, append(users, members...)...)
	call := createCall(t, n, alice, "default", "r4-"+tag, members...)
	caller := subscribeRings(t, n, alice)
	rings := ringCall(t, n, alice, call, members...)
	if len(rings) != callees {
		t.Fatalf("%d rings", len(rings))
	}
	// Each callee accepts close to the expiry, some before, some after.
	time.Sleep(900 * time.Millisecond)
	done := make(chan string, callees)
	for _, m := range members {
		go func() {
			r := n.Query(t, env.Token(t, m), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call})
			done <- r.Code()
		}()
	}
	accepted := 0
	for range callees {
		switch code := <-done; code {
		case "":
			accepted++
		case api.CodeConflict:
		default:
			t.Fatalf("acceptCall: %s", code)
		}
	}
	n.WaitForJobs(t)
	decided := map[string]string{}
	for range callees {
		ev := nextRing(t, caller)
		if decided[ev.Ring.User.ID] != "" {
			t.Fatalf("second decision for %s: %s after %s", ev.Ring.User.ID, ev.Type, decided[ev.Ring.User.ID])
		}
		decided[ev.Ring.User.ID] = ev.Type
	}
	caller.None(200 * time.Millisecond)
	got := map[string]int{}
	for _, typ := range decided {
		got[typ]++
	}
	if got["call.accepted"] != accepted || got["call.missed"] != callees-accepted {
		t.Fatalf("events %v, %d accepts succeeded", got, accepted)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND state = 'ACCEPTED'`, call); c != accepted {
		t.Fatalf("%d rings ACCEPTED, %d accepts succeeded", c, accepted)
	}
	t.Logf("%d of %d accepts won against the timeout", accepted, callees)
}

// A user in another live call is busy: the ring is rejected at once with
// reason BUSY, and the caller is told (a one-to-one call ends).
func TestRingBusy(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	other := createCall(t, n, carol, "default", "r5a-"+tag, bob)
	joinCall(t, n, bob, other)
	call := createCall(t, n, alice, "default", "r5-"+tag, bob)
	caller, callee := subscribeRings(t, n, alice), subscribeRings(t, n, bob)
	rings := ringCall(t, n, alice, call, bob)
	if len(rings) != 1 || rings[0].State != "REJECTED" || rings[0].Reason == nil || *rings[0].Reason != "BUSY" {
		t.Fatalf("ring of a busy user: %+v", rings)
	}
	for _, dev := range []*brooktest.Sub{caller, callee} {
		if ev := wantRing(t, dev, "call.rejected", call, bob); *ev.Ring.Reason != "BUSY" {
			t.Fatalf("call.rejected %+v", ev.Ring)
		}
		wantRing(t, dev, "call.ended", call, bob)
	}
	if c := n.Count(t, `SELECT count(*) FROM jobs WHERE kind = 'calls.ring_timeout' AND payload->>'call' = $1`, call); c != 0 {
		t.Fatalf("%d timeout jobs for a ring rejected at once", c)
	}
}

// Only who rang may cancel the rings; cancelled rings stop everywhere.
func TestCancelRing(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dan := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dan-"+tag
	env.AddUsers(t, n, alice, bob, carol, dan)
	call := createCall(t, n, alice, "default", "r6-"+tag, bob, carol)
	caller, b, c := subscribeRings(t, n, alice), subscribeRings(t, n, bob), subscribeRings(t, n, carol)
	ringCall(t, n, alice, call, bob, carol)
	wantRing(t, b, "call.ring", call, bob)
	wantRing(t, c, "call.ring", call, carol)
	cancel := `mutation($id: ID!) { cancelRing(id: $id) { user { id } state } }`
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), cancel, brooktest.Vars{"id": call}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.Token(t, dan), cancel, brooktest.Vars{"id": call}), api.CodeForbidden)
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND state = 'RINGING'`, call); c != 2 {
		t.Fatalf("%d rings ringing after refused cancels", c)
	}
	var out struct {
		CancelRing []struct{ State string }
	}
	n.Must(t, env.Token(t, alice), cancel, brooktest.Vars{"id": call}, &out)
	if len(out.CancelRing) != 2 || out.CancelRing[0].State != "CANCELLED" {
		t.Fatalf("cancelRing: %+v", out)
	}
	wantRing(t, b, "call.ring_cancelled", call, bob)
	wantRing(t, c, "call.ring_cancelled", call, carol)
	for range 2 {
		if ev := nextRing(t, caller); ev.Type != "call.ring_cancelled" {
			t.Fatalf("caller got %+v", ev)
		}
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), cancel, brooktest.Vars{"id": call}), api.CodeConflict)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeConflict)
}

// Bad input gets a clear error and writes nothing.
func TestRingBadInput(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	call := createCall(t, n, alice, "default", "r7-"+tag, bob)
	tok := env.Token(t, alice)
	for _, c := range []struct {
		vars brooktest.Vars
		code string
	}{
		{brooktest.Vars{"id": call, "m": []string{carol}}, api.CodeBadUserInput},     // not a member
		{brooktest.Vars{"id": call, "m": []string{alice}}, api.CodeBadUserInput},     // oneself
		{brooktest.Vars{"id": call, "m": []string{}}, api.CodeBadUserInput},          // nobody
		{brooktest.Vars{"id": call, "m": []string{bob, bob}}, api.CodeBadUserInput},  // twice
		{brooktest.Vars{"id": call, "m": []string{"no body"}}, api.CodeBadUserInput}, // malformed user
		{brooktest.Vars{"id": "standup", "m": []string{bob}}, api.CodeBadUserInput},  // malformed call
		{brooktest.Vars{"id": "default:none-" + tag, "m": []string{bob}}, api.CodeNotFound},
	} {
		brooktest.WantCode(t, n.Query(t, tok, ringCallQuery, c.vars), c.code)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), ringCallQuery, brooktest.Vars{"id": call, "m": []string{bob}}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { rejectCall(id: $id, reason: MAYBE) { state } }`,
		brooktest.Vars{"id": call}), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeConflict)
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": call}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation { acceptCall(id: "default:none") { state } }`, nil), api.CodeNotFound)
	// createCall with ring: a non-member of an existing call creates nothing and rings nobody.
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `mutation($id: ID!) { createCall(input: {type: "default", id: $id, ring: true}) { id } }`,
		brooktest.Vars{"id": "r7-" + tag}), api.CodeForbidden)
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1`, call); c != 0 {
		t.Fatalf("%d rings written by bad input", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM jobs WHERE kind = 'calls.ring_timeout' AND payload->>'call' = $1`, call); c != 0 {
		t.Fatalf("%d timeout jobs written by bad input", c)
	}
}
