package calls_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

// Hosts manage members: adding, changing roles and removing (which takes
// the removed user's participants out of the session), and end the call
// for everyone.
func TestCallMembersAndEnd(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createCall(t, n, alice, "default", "team-"+tag, bob)
	update := `mutation($id: ID!, $set: [CallMemberInput!], $remove: [ID!]) {
		updateCallMembers(id: $id, set: $set, remove: $remove) { members { user { id } role } } }`

	// Members who are not hosts may not manage the call.
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), update, brooktest.Vars{"id": cid, "set": []map[string]any{{"user": carol}}}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": cid}), api.CodeForbidden)
	// Bad input writes nothing.
	for _, vars := range []brooktest.Vars{
		{"id": cid, "set": []map[string]any{{"user": carol, "role": "owner"}}},
		{"id": cid, "set": []map[string]any{{"user": "nobody-" + tag}}},
		{"id": cid, "set": []map[string]any{{"user": carol}}, "remove": []string{carol}},
		{"id": cid},
	} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, alice), update, vars), api.CodeBadUserInput)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_members WHERE call_id = $1`, cid); c != 2 {
		t.Fatalf("%d members after bad input", c)
	}

	var out struct {
		UpdateCallMembers struct {
			Members []struct {
				User struct{ ID string }
				Role string
			}
		}
	}
	n.Must(t, env.Token(t, alice), update, brooktest.Vars{"id": cid, "set": []map[string]any{{"user": carol}, {"user": bob, "role": "host"}}}, &out)
	roles := map[string]string{}
	for _, m := range out.UpdateCallMembers.Members {
		roles[m.User.ID] = m.Role
	}
	if len(roles) != 3 || roles[alice] != "host" || roles[bob] != "host" || roles[carol] != "member" {
		t.Fatalf("members %+v", roles)
	}

	cj := joinCall(t, n, carol, cid).JoinCall
	bj := joinCall(t, n, bob, cid).JoinCall
	bobEvents := subscribeCallEvents(t, n, bob, bj.Participant.ID)
	n.Must(t, env.Token(t, alice), update, brooktest.Vars{"id": cid, "remove": []string{carol}}, nil)
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != cj.Participant.ID || *ev.Reason != "removed" {
		t.Fatalf("event %+v", ev)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), joinCallQuery, brooktest.Vars{"id": cid}), api.CodeForbidden)
	// Her participant id, taken out of the session, signals and follows nothing.
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "sdp") { id } }`,
		brooktest.Vars{"p": cj.Participant.ID, "to": bj.Participant.ID}), api.CodeConflict)
	if m := n.MustDial(t, env.Token(t, carol)).Subscribe(callEventsQuery, brooktest.Vars{"p": cj.Participant.ID}).Next(); !strings.Contains(string(m.Payload), `"code":"`+api.CodeConflict+`"`) {
		t.Fatalf("callEvents with a removed participant: %s %s", m.Type, m.Payload)
	}

	// Bob, now a host, ends the call: he leaves with everyone else and the
	// session ends.
	aj := joinCall(t, n, alice, cid).JoinCall
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.joined" || ev.Participant.ID != aj.Participant.ID {
		t.Fatalf("event %+v", ev)
	}
	watch, err := n.Bus.Subscribe(context.Background(), calls.SessionTopic(uuid.MustParse(bj.Session.ID)))
	if err != nil {
		t.Fatal(err)
	}
	var ended struct{ EndCall bool }
	n.Must(t, env.Token(t, bob), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": cid}, &ended)
	if !ended.EndCall {
		t.Fatal("endCall returned false")
	}
	if e, _ := calls.DecodeEvent((<-watch.C).Data); e.Type != "session.ended" {
		t.Fatalf("event %+v", e)
	}
	left := map[string]bool{}
	for len(left) < 2 {
		e, err := calls.DecodeEvent((<-watch.C).Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type != "participant.left" || *e.Reason != "ended" {
			t.Fatalf("event %+v", e)
		}
		left[e.Participant.ID.String()] = true
	}
	if !left[aj.Participant.ID] || !left[bj.Participant.ID] {
		t.Fatalf("left %v", left)
	}
	if ev := nextCallEvent(t, bobEvents); ev.Type != "session.ended" || ev.Call != cid {
		t.Fatalf("bob's last event: %+v", ev)
	}
	bobEvents.Expect("complete")
	n.Must(t, env.Token(t, bob), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": cid}, &ended)
	if ended.EndCall {
		t.Fatal("ending an ended call returned true")
	}
}

// A member removed while their joinCall is in flight does not stay in the
// call: the join holds the call's row (shared) and the change of members
// waits for it, then finds and removes its participant. Here the join is
// held on the session's row lock while the removal is made.
func TestCallMemberRemovedDuringJoin(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "race-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	ctx := context.Background()
	tx, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM call_sessions WHERE id = $1 FOR UPDATE`, aj.Session.ID); err != nil {
		t.Fatal(err)
	}
	holder := brooktest.BackendPID(t, tx)
	waiting := func() int { return brooktest.LockWaiters(t, n.Store.DB(), holder) }
	joined := make(chan error, 1)
	var bj callJoinResult
	go func() { joined <- n.Client(env.Token(t, bob)).Run(ctx, joinCallQuery, brooktest.Vars{"id": cid}, &bj) }()
	brooktest.Eventually(t, "bob's join waits on the session's row", func() bool { return waiting() == 1 })
	removed := make(chan error, 1)
	go func() {
		removed <- n.Client(env.Token(t, alice)).Run(ctx, `mutation($id: ID!, $r: [ID!]) { updateCallMembers(id: $id, remove: $r) { id } }`,
			brooktest.Vars{"id": cid, "r": []string{bob}}, nil)
	}()
	// The removal either waits for the join (as it must) or, wrongly,
	// finishes before the join can commit.
	brooktest.Eventually(t, "the removal waits or ends", func() bool { return waiting() == 2 || len(removed) > 0 })
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []chan error{joined, removed} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the join or the removal did not finish")
		}
	}
	if live := n.Count(t, `SELECT count(*) FROM call_participants WHERE call_id = $1 AND user_id = $2 AND left_at IS NULL`, cid, bob); live != 0 {
		t.Fatalf("bob, removed from the call, has %d live participants", live)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "x") { id } }`,
		brooktest.Vars{"p": bj.JoinCall.Participant.ID, "to": aj.Participant.ID}), "CONFLICT")
}
