package calls_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

// The signaling path runs no SQL: once a participant's facts are cached,
// sendSignal and the callEvents delivery it causes use Redis and the bus
// only, even with the sender's user and the signal's fields selected.
func TestCallSignalingRunsNoSQL(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "nosql-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	bj := joinCall(t, n, bob, cid).JoinCall
	bobEvents := subscribeCallEvents(t, n, bob, bj.Participant.ID)
	tok := env.Token(t, alice)
	send := func(i int) {
		t.Helper()
		payload := fmt.Sprintf("candidate:%d", i)
		n.Must(t, tok, `mutation($p: ID!, $to: ID!, $pl: String!) {
			sendSignal(participant: $p, to: $to, kind: ICE_CANDIDATE, payload: $pl) { id kind payload sentAt from { id } } }`,
			brooktest.Vars{"p": aj.Participant.ID, "to": bj.Participant.ID, "pl": payload}, nil)
		if ev := nextCallEvent(t, bobEvents); ev.Type != "signal" || ev.Signal.Payload != payload || ev.Signal.From.ID != aj.Participant.ID {
			t.Fatalf("event %+v", ev)
		}
	}
	send(0) // the sign-in and the caches warm up
	before := n.Store.Statements()
	for i := 1; i <= 50; i++ {
		send(i)
	}
	if d := n.Store.Statements() - before; d != 0 {
		t.Fatalf("50 signals ran %d SQL statements, want 0", d)
	}
}

// A departure on one node reaches the participant caches of the others: a
// node that had relayed signals between participants refuses them once
// one has left, or been removed from the call, through another node.
func TestCallDepartureReachesOtherNodesCaches(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, a, alice, bob, carol)
	cid := createCall(t, a, alice, "default", "caches-"+tag, bob, carol)
	aj := joinCall(t, a, alice, cid).JoinCall
	bj := joinCall(t, a, bob, cid).JoinCall
	cj := joinCall(t, a, carol, cid).JoinCall
	signal := `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "sdp") { id } }`
	send := func(user, from, to string) *brooktest.Response {
		return b.Query(t, env.Token(t, user), signal, brooktest.Vars{"p": from, "to": to})
	}
	// Node b relays between all three, so it has them cached.
	for _, s := range [][3]string{{alice, aj.Participant.ID, bj.Participant.ID}, {bob, bj.Participant.ID, cj.Participant.ID},
		{carol, cj.Participant.ID, aj.Participant.ID}} {
		if r := send(s[0], s[1], s[2]); len(r.Errors) > 0 {
			t.Fatalf("signal before the departures: %+v", r.Errors)
		}
	}
	refused := func(user, from, to string) bool {
		r := send(user, from, to)
		return len(r.Errors) > 0 && r.Code() == api.CodeConflict
	}

	// Bob leaves through node a.
	a.Must(t, env.Token(t, bob), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": bj.Participant.ID}, nil)
	brooktest.Eventually(t, "node b refuses signals to bob", func() bool { return refused(alice, aj.Participant.ID, bj.Participant.ID) })
	if !refused(bob, bj.Participant.ID, cj.Participant.ID) {
		t.Fatal("node b relayed a signal from bob after he left")
	}

	// Carol is removed from the call through node a.
	a.Must(t, env.Token(t, alice), `mutation($id: ID!, $remove: [ID!]) { updateCallMembers(id: $id, remove: $remove) { id } }`,
		brooktest.Vars{"id": cid, "remove": []string{carol}}, nil)
	brooktest.Eventually(t, "node b refuses signals to carol", func() bool { return refused(alice, aj.Participant.ID, cj.Participant.ID) })
	if !refused(carol, cj.Participant.ID, aj.Participant.ID) {
		t.Fatal("node b relayed a signal from carol after her removal")
	}
}

// Signals sent to a participant whose callEvents stream has not started
// yet (it joined, the other side saw it in others and sent its offer at
// once) are not lost: they follow ready, in order, on whichever node the
// stream starts, and ready names everyone already in the session.
func TestCallSignalsBeforeTheStreamStarts(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, a, alice, bob)
	cid := createCall(t, a, alice, "default", "early-"+tag, bob)
	bj := joinCall(t, b, bob, cid).JoinCall
	aj := joinCall(t, a, alice, cid).JoinCall
	if len(aj.Others) != 1 || aj.Others[0].ID != bj.Participant.ID {
		t.Fatalf("alice's others: %+v", aj.Others)
	}
	subscribeCallEvents(t, a, alice, aj.Participant.ID)
	signal := func(kind, payload string) {
		t.Helper()
		a.Must(t, env.Token(t, alice), `mutation($p: ID!, $to: ID!, $k: SignalKind!, $pl: String!) {
			sendSignal(participant: $p, to: $to, kind: $k, payload: $pl) { id } }`,
			brooktest.Vars{"p": aj.Participant.ID, "to": bj.Participant.ID, "k": kind, "pl": payload}, nil)
	}
	signal("OFFER", "offer-1")
	signal("ICE_CANDIDATE", "ice-1")

	sub := b.MustDial(t, env.Token(t, bob)).Subscribe(callEventsQuery, brooktest.Vars{"p": bj.Participant.ID})
	ready := nextCallEvent(t, sub)
	if ready.Type != "ready" || len(ready.Participants) != 2 || ready.Participants[0].ID != bj.Participant.ID ||
		ready.Participants[1].ID != aj.Participant.ID {
		t.Fatalf("ready: %+v, want bob's participant then alice's", ready)
	}
	for _, want := range []string{"offer-1", "ice-1"} {
		if ev := nextCallEvent(t, sub); ev.Type != "signal" || ev.Signal.Payload != want || ev.Signal.From.ID != aj.Participant.ID {
			t.Fatalf("held signal: %+v, want %s", ev, want)
		}
	}
	signal("OFFER", "offer-2")
	if ev := nextCallEvent(t, sub); ev.Type != "signal" || ev.Signal.Payload != "offer-2" {
		t.Fatalf("live signal: %+v", ev)
	}
	// A stream started again (a reconnect) gets nothing twice.
	again := b.MustDial(t, env.Token(t, bob)).Subscribe(callEventsQuery, brooktest.Vars{"p": bj.Participant.ID})
	if ev := nextCallEvent(t, again); ev.Type != "ready" {
		t.Fatalf("second stream: %+v", ev)
	}
	again.None(200 * time.Millisecond)
}

// A leave whose request ends right after its commit (the client closed its
// tab) still does what follows: the others hear of it and the participant
// can no longer be signaled.
func TestCallLeaveOutlivesItsRequest(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "tab-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	bj := joinCall(t, n, bob, cid).JoinCall
	bobEvents := subscribeCallEvents(t, n, bob, bj.Participant.ID)
	reqCtx, closeTab := context.WithCancel(context.Background())
	ended := make(chan bool, 1)
	t.Cleanup(calls.OnDeparturesCommitted(func(ctx context.Context) {
		closeTab()
		select {
		case <-ctx.Done():
			ended <- true
		case <-time.After(5 * time.Second):
			ended <- false
		}
	}))
	_ = n.Client(env.Token(t, alice)).Run(reqCtx, `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": aj.Participant.ID}, nil)
	if !<-ended {
		t.Fatal("the leave's request did not end after its commit")
	}
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != aj.Participant.ID {
		t.Fatalf("bob's next event: %+v", ev)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "x") { id } }`,
		brooktest.Vars{"p": bj.Participant.ID, "to": aj.Participant.ID}), "CONFLICT")
}
