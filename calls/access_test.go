package calls_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

// Only members and admins join, read and subscribe; a participant id works
// only for its own user; every bad input gets a code and writes nothing.
func TestCallPermissionsAndInput(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, mallory := "alice-"+tag, "bob-"+tag, "mallory-"+tag
	env.AddUsers(t, n, alice, bob, mallory)
	cid := createCall(t, n, alice, "default", "private-"+tag, bob)
	tok := func(u string) string { return env.Token(t, u) }

	// Non-members.
	brooktest.WantCode(t, n.Query(t, tok(mallory), joinCallQuery, brooktest.Vars{"id": cid}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, tok(mallory), `query($id: ID!) { call(id: $id) { id } }`, brooktest.Vars{"id": cid}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, tok(mallory), `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "default", "id": "private-" + tag}}), api.CodeForbidden)
	// Unknown calls.
	brooktest.WantCode(t, n.Query(t, tok(alice), joinCallQuery, brooktest.Vars{"id": "default:nope-" + tag}), api.CodeNotFound)
	var none struct{ Call *struct{ ID string } }
	n.Must(t, tok(alice), `query { call(id: "default:nope") { id } }`, nil, &none)
	if none.Call != nil {
		t.Fatal("unknown call is not null")
	}

	// Bad input: nothing is written.
	callsOfTest := `SELECT count(*) FROM calls WHERE id LIKE '%' || $1`
	before := n.Count(t, callsOfTest, tag)
	for _, in := range []map[string]any{
		{"type": "Default!", "id": "x-" + tag},
		{"type": "default", "id": "a:b"},
		{"type": strings.Repeat("t", 33)},
		{"type": "default", "id": "m-" + tag, "members": []string{"nobody-" + tag}},
		{"type": "default", "id": "m-" + tag, "members": []string{bob, bob}},
		{"type": "default", "id": "m-" + tag, "data": []int{1}},
	} {
		brooktest.WantCode(t, n.Query(t, tok(alice), `mutation($in: CallInput!) { createCall(input: $in) { id } }`, brooktest.Vars{"in": in}), api.CodeBadUserInput)
	}
	if after := n.Count(t, callsOfTest, tag); after != before {
		t.Fatalf("bad input wrote %d calls", after-before)
	}
	brooktest.WantCode(t, n.Query(t, tok(alice), joinCallQuery, brooktest.Vars{"id": "no-colon"}), api.CodeBadUserInput)

	signal := `mutation($p: ID!, $to: ID!, $k: SignalKind!, $pl: String!) { sendSignal(participant: $p, to: $to, kind: $k, payload: $pl) { id } }`
	sv := func(p, to, pl string) brooktest.Vars {
		return brooktest.Vars{"p": p, "to": to, "k": "OFFER", "pl": pl}
	}
	// An admin joins without being a member.
	bj := joinCall(t, n, bob, cid).JoinCall
	aj := joinCall(t, n, alice, cid).JoinCall
	var adminJoin callJoinResult
	n.Must(t, env.AdminToken(t, "ops-"+tag), joinCallQuery, brooktest.Vars{"id": cid}, &adminJoin)
	if adminJoin.JoinCall.Session.ID != bj.Session.ID {
		t.Fatalf("admin joined session %s, not %s", adminJoin.JoinCall.Session.ID, bj.Session.ID)
	}

	// The admin signals and subscribes with its own participant.
	admin := env.AdminToken(t, "ops-"+tag)
	adminEvents := n.MustDial(t, admin).Subscribe(callEventsQuery, brooktest.Vars{"p": adminJoin.JoinCall.Participant.ID})
	if ev := nextCallEvent(t, adminEvents); ev.Type != "ready" {
		t.Fatalf("admin's first event %+v", ev)
	}
	n.Must(t, tok(bob), signal, sv(bj.Participant.ID, adminJoin.JoinCall.Participant.ID, "to the admin"), nil)
	if ev := nextCallEvent(t, adminEvents); ev.Type != "signal" || ev.Signal.Payload != "to the admin" {
		t.Fatalf("admin's signal event %+v", ev)
	}
	n.Must(t, admin, signal, sv(adminJoin.JoinCall.Participant.ID, bj.Participant.ID, "from the admin"), nil)
	// Another user's participant id: no signal, no subscription, no leave.
	brooktest.WantCode(t, n.Query(t, tok(mallory), signal, sv(bj.Participant.ID, aj.Participant.ID, "x")), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, tok(alice), signal, sv(bj.Participant.ID, aj.Participant.ID, "x")), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.AdminToken(t, "ops-"+tag), signal, sv(bj.Participant.ID, aj.Participant.ID, "x")), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, tok(alice), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": bj.Participant.ID}), api.CodeForbidden)
	sub := n.MustDial(t, tok(alice)).Subscribe(callEventsQuery, brooktest.Vars{"p": bj.Participant.ID})
	if m := sub.Next(); !strings.Contains(string(m.Payload), `"code":"`+api.CodeForbidden+`"`) {
		t.Fatalf("subscription error %s", m.Payload)
	}
	// Bad signals.
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, aj.Participant.ID, strings.Repeat("x", 64<<10+1))), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, aj.Participant.ID, "")), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, bj.Participant.ID, "x")), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv("not-an-id", aj.Participant.ID, "x")), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, brooktest.Vars{"p": bj.Participant.ID, "to": aj.Participant.ID, "k": "HELLO", "pl": "x"}), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, uuid.NewString(), "x")), api.CodeNotFound)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(uuid.NewString(), aj.Participant.ID, "x")), api.CodeNotFound)
	// The 64 KB payload itself is fine.
	n.Must(t, tok(bob), signal, sv(bj.Participant.ID, aj.Participant.ID, strings.Repeat("x", 64<<10)), nil)
	// A participant of another call's session is not reachable.
	other := createCall(t, n, bob, "default", "other-"+tag)
	oj := joinCall(t, n, bob, other).JoinCall
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, oj.Participant.ID, "x")), api.CodeNotFound)
	// After leaving, a participant id signals nothing and is not signalled.
	n.Must(t, tok(alice), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": aj.Participant.ID}, nil)
	brooktest.WantCode(t, n.Query(t, tok(bob), signal, sv(bj.Participant.ID, aj.Participant.ID, "x")), api.CodeConflict)
	brooktest.WantCode(t, n.Query(t, tok(alice), signal, sv(aj.Participant.ID, bj.Participant.ID, "x")), api.CodeConflict)
	sub = n.MustDial(t, tok(alice)).Subscribe(callEventsQuery, brooktest.Vars{"p": aj.Participant.ID})
	if m := sub.Next(); !strings.Contains(string(m.Payload), `"code":"`+api.CodeConflict+`"`) {
		t.Fatalf("subscription error %s", m.Payload)
	}
	// Admin-only operations.
	brooktest.WantCode(t, n.Query(t, tok(alice), `mutation { drainSFUNode(id: "local") { id } }`, nil), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, tok(alice), `{ sfuNodes { id } }`, nil), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.AdminToken(t, "ops-"+tag), `mutation { drainSFUNode(id: "nope") { id } }`, nil), api.CodeNotFound)
}
