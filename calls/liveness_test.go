package calls_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// A participant whose subscription is gone (its node stopped) is removed
// by the sweep on another node after the timeout, and the session ends
// when nobody is left; the events reach the other node's subscribers.
func TestCallParticipantTimeoutAcrossNodes(t *testing.T) {
	t.Parallel()
	// Subscriptions refresh every third of the timeout; 2 s leaves a busy
	// test machine ample room.
	const timeout = 2 * time.Second
	opts := brooktest.NodeOptions{Node: func(o *node.Options) {
		o.CallParticipantTimeout = timeout
		o.CallSweepInterval = 100 * time.Millisecond
	}}
	a := env.StartNode(t, opts)
	b := env.StartNode(t, opts)
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, b, alice, bob, carol)
	cid := createCall(t, b, alice, "default", "timeout-"+tag, bob, carol)

	aj := joinCall(t, a, alice, cid).JoinCall
	subscribeCallEvents(t, a, alice, aj.Participant.ID)
	bj := joinCall(t, b, bob, cid).JoinCall
	bobEvents := subscribeCallEvents(t, b, bob, bj.Participant.ID)
	// Carol joins and never subscribes: she times out as well.
	cj := joinCall(t, b, carol, cid).JoinCall
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.joined" || ev.Participant.ID != cj.Participant.ID {
		t.Fatalf("event %+v", ev)
	}

	// Carol times out; alice and bob, who joined earlier but are
	// subscribed, are still in the call.
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != cj.Participant.ID || *ev.Reason != "timeout" {
		t.Fatalf("event %+v", ev)
	}
	if c := b.Count(t, `SELECT count(*) FROM call_participants WHERE session_id = $1 AND left_at IS NULL`, aj.Session.ID); c != 2 {
		t.Fatalf("%d live participants, want alice and bob", c)
	}

	// Node a goes away with alice's subscription; node b's sweep removes her.
	a.Stop()
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != aj.Participant.ID || *ev.Reason != "timeout" {
		t.Fatalf("event %+v", ev)
	}
	// Bob's subscription ends; once he times out the session ends.
	sid := uuid.MustParse(aj.Session.ID)
	watch, err := b.Bus.Subscribe(context.Background(), calls.SessionTopic(sid))
	if err != nil {
		t.Fatal(err)
	}
	bobEvents.Complete()
	var types []string
	for len(types) < 2 {
		e, err := calls.DecodeEvent((<-watch.C).Data)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
		if e.Type == "participant.left" && (e.Participant.ID.String() != bj.Participant.ID || *e.Reason != "timeout") {
			t.Fatalf("event %+v", e)
		}
	}
	if types[0] != "session.ended" || types[1] != "participant.left" {
		t.Fatalf("events %v", types)
	}
	if c := b.Count(t, `SELECT count(*) FROM call_sessions WHERE id = $1 AND ended_at IS NOT NULL`, sid); c != 1 {
		t.Fatal("session not ended")
	}
	if c := b.Count(t, `SELECT count(*) FROM call_participants WHERE session_id = $1 AND left_reason = 'timeout'`, sid); c != 3 {
		t.Fatalf("%d participants timed out, want 3", c)
	}
}

// Redis holds only what PostgreSQL can rebuild: with a participant's
// signaling facts and liveness entry gone, signals still flow (the facts
// come back from PostgreSQL) and the repair pass restores the liveness entry.
func TestCallSurvivesRedisLoss(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "redis-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	bj := joinCall(t, n, bob, cid).JoinCall
	aliceEvents := subscribeCallEvents(t, n, alice, aj.Participant.ID)

	ctx := context.Background()
	rdb := n.State.Redis()
	live := n.State.Key("calls", "live")
	facts := []string{n.State.Key("calls", "p", aj.Participant.ID), n.State.Key("calls", "p", bj.Participant.ID)}
	if err := rdb.ZRem(ctx, live, aj.Participant.ID, bj.Participant.ID).Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range facts { // one key a command: the keys may lie on two masters of a cluster
		if err := rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// A second node has no cached facts: it must rebuild them.
	other := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	other.Must(t, env.Token(t, bob), `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "sdp") { id } }`,
		brooktest.Vars{"p": bj.Participant.ID, "to": aj.Participant.ID}, nil)
	if ev := nextCallEvent(t, aliceEvents); ev.Type != "signal" || ev.Signal.From.ID != bj.Participant.ID {
		t.Fatalf("event %+v", ev)
	}
	restored := 0
	for _, k := range facts {
		n, err := rdb.Exists(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		restored += int(n)
	}
	if restored != 2 {
		t.Fatalf("facts restored in redis: %d", restored)
	}

	// The repair pass (due now) gives both participants a deadline again.
	if _, err := n.Store.DB().Exec(ctx, `UPDATE jobs SET run_at = now() WHERE kind = 'calls.repair'`); err != nil {
		t.Fatal(err)
	}
	brooktest.Eventually(t, "liveness entries restored", func() bool {
		scores, err := rdb.ZMScore(ctx, live, aj.Participant.ID, bj.Participant.ID).Result()
		return err == nil && scores[0] > 0 && scores[1] > 0
	})
}
