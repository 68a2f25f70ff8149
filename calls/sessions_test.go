package resolvers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/resolvers"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// callTag returns a short random tag that keeps a test's users, calls and
// SFU nodes apart from those of tests running beside it on the same database.
func callTag() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// callUsers creates users (with an admin token) so they can be call members.
func callUsers(t *testing.T, n *brooktest.Node, ids ...string) {
	t.Helper()
	users := make([]map[string]any, len(ids))
	for i, id := range ids {
		users[i] = map[string]any{"id": id, "name": strings.ToUpper(id[:1]) + id[1:]}
	}
	n.Must(t, env.AdminToken(t, "root"), `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`, brooktest.Vars{"u": users}, nil)
}

type callJoinResult struct {
	JoinCall struct {
		Call    struct{ ID string }
		Session struct {
			ID  string
			SFU struct{ ID, URL string }
		}
		Participant struct {
			ID   string
			User struct{ ID string }
		}
		Others []struct {
			ID   string
			User struct{ ID string }
		}
	}
}

const joinCallQuery = `mutation($id: ID!) { joinCall(id: $id) {
	call { id } session { id sfu { id url } } participant { id user { id } } others { id user { id } } } }`

func createCall(t *testing.T, n *brooktest.Node, user, typ, id string, members ...string) string {
	t.Helper()
	var out struct{ CreateCall struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": typ, "id": id, "members": members}}, &out)
	return out.CreateCall.ID
}

func joinCall(t *testing.T, n *brooktest.Node, user, cid string) callJoinResult {
	t.Helper()
	var out callJoinResult
	n.Must(t, env.Token(t, user), joinCallQuery, brooktest.Vars{"id": cid}, &out)
	return out
}

// callEvent is a callEvents message as the tests select it.
type callEvent struct {
	Type        string
	Call        string
	Session     string
	Reason      *string
	Participant *struct {
		ID     string
		User   struct{ ID string }
		LeftAt *string
	}
	Participants []struct{ ID string }
	Signal       *struct {
		ID   string
		From struct {
			ID   string
			User struct{ ID string }
		}
		To      string
		Kind    string
		Payload string
	}
}

const callEventsQuery = `subscription($p: ID!) { callEvents(participant: $p) {
	type call session reason participant { id user { id } leftAt } participants { id }
	signal { id from { id user { id } } to kind payload } } }`

// subscribeCallEvents subscribes to a participant's events on n and waits
// for the stream's ready event, after which no event is missed.
func subscribeCallEvents(t *testing.T, n *brooktest.Node, user, pid string) *brooktest.Sub {
	t.Helper()
	sub := n.MustDial(t, env.Token(t, user)).Subscribe(callEventsQuery, brooktest.Vars{"p": pid})
	if ev := nextCallEvent(t, sub); ev.Type != "ready" || ev.Participant.ID != pid {
		t.Fatalf("first callEvents event: %+v, want ready for %s", ev, pid)
	}
	return sub
}

func nextCallEvent(t *testing.T, sub *brooktest.Sub) callEvent {
	t.Helper()
	var out struct{ CallEvents callEvent }
	sub.NextData(&out)
	return out.CallEvents
}

// The life of a call: create (get-or-create), join on two devices, leave,
// and the last one out ending the session, with the events on the way.
func TestCallCreateJoinLeave(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)

	cid := createCall(t, n, alice, "default", "standup-"+tag, bob)
	if cid != "default:standup-"+tag {
		t.Fatalf("call id %q", cid)
	}
	// Get-or-create: the same id returns the same call, unchanged.
	if again := createCall(t, n, bob, "default", "standup-"+tag); again != cid {
		t.Fatalf("get-or-create returned %q", again)
	}
	// Without an id, one is generated.
	if gen := createCall(t, n, alice, "meeting", ""); !strings.HasPrefix(gen, "meeting:") || uuid.Validate(strings.TrimPrefix(gen, "meeting:")) != nil {
		t.Fatalf("generated call id %q", gen)
	}

	var q struct {
		Call struct {
			ID, Type  string
			CreatedBy struct{ ID string }
			Members   []struct {
				User struct{ ID, Name string }
				Role string
			}
			Session *struct{ ID string }
		}
	}
	n.Must(t, env.Token(t, bob), `query($id: ID!) { call(id: $id) { id type createdBy { id } members { user { id name } role } session { id } } }`,
		brooktest.Vars{"id": cid}, &q)
	if q.Call.Type != "default" || q.Call.CreatedBy.ID != alice || q.Call.Session != nil || len(q.Call.Members) != 2 ||
		q.Call.Members[0].User.ID != alice || q.Call.Members[0].Role != "host" || q.Call.Members[1].Role != "member" || q.Call.Members[1].User.Name != "Bob-"+tag {
		t.Fatalf("call %+v", q.Call)
	}

	bj := joinCall(t, n, bob, cid).JoinCall
	if bj.Session.ID == "" || bj.Session.SFU.ID != "local" || len(bj.Others) != 0 || bj.Participant.User.ID != bob {
		t.Fatalf("bob's join %+v", bj)
	}
	bobEvents := subscribeCallEvents(t, n, bob, bj.Participant.ID)

	aj := joinCall(t, n, alice, cid).JoinCall
	if aj.Session.ID != bj.Session.ID || aj.Session.SFU != bj.Session.SFU || len(aj.Others) != 1 || aj.Others[0].ID != bj.Participant.ID {
		t.Fatalf("alice's join %+v, bob's %+v", aj, bj)
	}
	// A second device is a second participant.
	aj2 := joinCall(t, n, alice, cid).JoinCall
	if aj2.Participant.ID == aj.Participant.ID || len(aj2.Others) != 2 {
		t.Fatalf("alice's second join %+v", aj2)
	}
	for _, want := range []string{aj.Participant.ID, aj2.Participant.ID} {
		ev := nextCallEvent(t, bobEvents)
		if ev.Type != "participant.joined" || ev.Participant.ID != want || ev.Participant.User.ID != alice || ev.Call != cid || ev.Session != bj.Session.ID {
			t.Fatalf("event %+v, want %s joined", ev, want)
		}
	}

	// A signal reaches exactly its addressee, with its sender.
	n.Must(t, env.Token(t, alice), `mutation($p: ID!, $to: ID!, $pl: String!) { sendSignal(participant: $p, to: $to, kind: ICE_CANDIDATE, payload: $pl) { id } }`,
		brooktest.Vars{"p": aj2.Participant.ID, "to": bj.Participant.ID, "pl": `{"candidate":"x"}`}, nil)
	if ev := nextCallEvent(t, bobEvents); ev.Type != "signal" || ev.Signal.From.ID != aj2.Participant.ID || ev.Signal.From.User.ID != alice ||
		ev.Signal.To != bj.Participant.ID || ev.Signal.Kind != "ICE_CANDIDATE" || ev.Signal.Payload != `{"candidate":"x"}` || ev.Session != bj.Session.ID {
		t.Fatalf("signal event %+v", ev)
	}

	var live struct {
		Call struct {
			Session struct {
				Participants []struct {
					ID   string
					User struct{ Name string }
				}
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($id: ID!) { call(id: $id) { session { participants(live: true) { id user { name } } } } }`,
		brooktest.Vars{"id": cid}, &live)
	if ps := live.Call.Session.Participants; len(ps) != 3 || ps[0].ID != bj.Participant.ID || ps[1].User.Name != "Alice-"+tag {
		t.Fatalf("live participants %+v", live)
	}

	leave := func(user, pid string) bool {
		var out struct{ LeaveCall bool }
		n.Must(t, env.Token(t, user), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": pid}, &out)
		return out.LeaveCall
	}
	if !leave(alice, aj.Participant.ID) {
		t.Fatal("leave returned false")
	}
	if leave(alice, aj.Participant.ID) {
		t.Fatal("leaving twice returned true")
	}
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != aj.Participant.ID || *ev.Reason != "left" || ev.Participant.LeftAt == nil {
		t.Fatalf("event %+v", ev)
	}
	leave(alice, aj2.Participant.ID)
	if ev := nextCallEvent(t, bobEvents); ev.Type != "participant.left" || ev.Participant.ID != aj2.Participant.ID {
		t.Fatalf("event %+v", ev)
	}
	// Bob is the last one: his leave ends the session; his own stream says
	// so and completes.
	leave(bob, bj.Participant.ID)
	if ev := nextCallEvent(t, bobEvents); ev.Type != "session.ended" || ev.Session != bj.Session.ID {
		t.Fatalf("event %+v", ev)
	}
	bobEvents.Expect("complete")

	var after struct {
		Call struct {
			Session  *struct{ ID string }
			Sessions []struct {
				ID           string
				EndedAt      *string
				SFU          struct{ ID string }
				Participants []struct{ ID, LeftAt string }
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($id: ID!) { call(id: $id) { session { id } sessions { id endedAt sfu { id } participants { id leftAt } } } }`,
		brooktest.Vars{"id": cid}, &after)
	if after.Call.Session != nil || len(after.Call.Sessions) != 1 || after.Call.Sessions[0].EndedAt == nil || len(after.Call.Sessions[0].Participants) != 3 {
		t.Fatalf("after everyone left: %+v", after)
	}

	// Joining again starts a new session on the same SFU.
	again := joinCall(t, n, bob, cid).JoinCall
	if again.Session.ID == bj.Session.ID || again.Session.SFU != bj.Session.SFU {
		t.Fatalf("second session %+v, first %+v", again.Session, bj.Session)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_sessions WHERE call_id = $1`, cid); c != 2 {
		t.Fatalf("%d sessions", c)
	}
}

// The last one out ends the session, and a client following its own
// participant hears session.ended before its stream completes; on the bus
// the session's end comes before the departure that caused it.
func TestCallSessionEndedEvent(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice := "alice-" + tag
	callUsers(t, n, alice)
	cid := createCall(t, n, alice, "default", "solo-"+tag)
	j := joinCall(t, n, alice, cid).JoinCall
	sid := uuid.MustParse(j.Session.ID)
	sub, err := n.Bus.Subscribe(context.Background(), store.CallSessionTopic(sid))
	if err != nil {
		t.Fatal(err)
	}
	events := subscribeCallEvents(t, n, alice, j.Participant.ID)
	n.Must(t, env.Token(t, alice), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": j.Participant.ID}, nil)
	var types []string
	for len(types) < 2 {
		ev := <-sub.C
		e, err := store.DecodeCallEvent(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	if types[0] != "session.ended" || types[1] != "participant.left" {
		t.Fatalf("events %v", types)
	}
	if ev := nextCallEvent(t, events); ev.Type != "session.ended" {
		t.Fatalf("the leaving client's last event: %+v", ev)
	}
	events.Expect("complete")
}

// Only members and admins join, read and subscribe; a participant id works
// only for its own user; every bad input gets a code and writes nothing.
func TestCallPermissionsAndInput(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob, mallory := "alice-"+tag, "bob-"+tag, "mallory-"+tag
	callUsers(t, n, alice, bob, mallory)
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

// Joins racing on two nodes start exactly one session.
func TestCallConcurrentJoinsStartOneSession(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	const users = 8
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d-%s", i, tag)
	}
	callUsers(t, a, ids...)
	for round := 0; round < 3; round++ {
		cid := createCall(t, a, ids[0], "default", fmt.Sprintf("race-%d-%s", round, tag), ids[1:]...)
		sessions := make([]string, users)
		parts := make([]string, users)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, users)
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				node := a
				if i%2 == 1 {
					node = b
				}
				<-start
				var out callJoinResult
				if err := node.Client(env.Token(t, ids[i])).Run(context.Background(), joinCallQuery, brooktest.Vars{"id": cid}, &out); err != nil {
					errs <- err
					return
				}
				sessions[i], parts[i] = out.JoinCall.Session.ID, out.JoinCall.Participant.ID
			}(i)
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range sessions {
			if sessions[i] != sessions[0] {
				t.Fatalf("round %d: joins got sessions %v", round, sessions)
			}
		}
		if c := a.Count(t, `SELECT count(*) FROM call_sessions WHERE call_id = $1`, cid); c != 1 {
			t.Fatalf("round %d: %d sessions", round, c)
		}
		if c := a.Count(t, `SELECT count(DISTINCT id) FROM call_participants WHERE call_id = $1 AND left_at IS NULL`, cid); c != users {
			t.Fatalf("round %d: %d live participants", round, c)
		}
	}
}

// Every Brook node assigns a session the SFU that rendezvous hashing picks
// for the call among the nodes not drained; a drain (shared by all nodes)
// moves new sessions off the node and leaves live ones where they are.
func TestCallSFUAssignmentAndDrain(t *testing.T) {
	t.Parallel()
	tag := callTag()
	nodes := make([]sfu.Node, 4)
	for i := range nodes {
		nodes[i] = sfu.Node{ID: fmt.Sprintf("sfu%d-%s", i, tag), URL: fmt.Sprintf("wss://sfu-%d.example:443", i), Region: "eu"}
	}
	opts := brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = nodes }}
	a := env.StartNode(t, opts)
	b := env.StartNode(t, opts)
	alice := "alice-" + tag
	callUsers(t, a, alice)
	admin := env.AdminToken(t, "ops-"+tag)

	// Stability: both nodes, and every participant, get the hashed node.
	cids := make([]string, 24)
	sessionSFU := map[string]string{}
	for i := range cids {
		cids[i] = createCall(t, a, alice, "default", fmt.Sprintf("sfu-%d-%s", i, tag))
		j1 := joinCall(t, a, alice, cids[i]).JoinCall
		j2 := joinCall(t, b, alice, cids[i]).JoinCall
		want, _ := sfu.Pick(nodes, cids[i], nil)
		if j1.Session.SFU.ID != want.ID || j2.Session.SFU.ID != want.ID || j1.Session.SFU.URL != want.URL {
			t.Fatalf("%s: SFU %v and %v, want %s", cids[i], j1.Session.SFU, j2.Session.SFU, want.ID)
		}
		sessionSFU[cids[i]] = want.ID
	}
	// Drain the node that hosts the first call, on node b.
	drained := sessionSFU[cids[0]]
	var d struct {
		DrainSFUNode struct {
			ID      string
			Drained bool
			Region  string
		}
	}
	b.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id) { id drained region } }`, brooktest.Vars{"id": drained}, &d)
	if !d.DrainSFUNode.Drained || d.DrainSFUNode.Region != "eu" {
		t.Fatalf("drain answered %+v", d)
	}
	var list struct {
		SfuNodes []struct {
			ID      string
			Drained bool
		}
	}
	a.Must(t, admin, `{ sfuNodes { id drained } }`, nil, &list)
	for _, n := range list.SfuNodes {
		if n.Drained != (n.ID == drained) {
			t.Fatalf("node a sees %+v", list)
		}
	}
	// Live sessions stay; new sessions avoid the drained node, and only
	// the calls that hashed to it move.
	skip := func(id string) bool { return id == drained }
	for _, cid := range cids {
		if j := joinCall(t, a, alice, cid).JoinCall; j.Session.SFU.ID != sessionSFU[cid] {
			t.Fatalf("live session of %s moved to %s", cid, j.Session.SFU.ID)
		}
	}
	moved := 0
	for i := 0; i < 24; i++ {
		cid := createCall(t, a, alice, "default", fmt.Sprintf("new-%d-%s", i, tag))
		j := joinCall(t, b, alice, cid).JoinCall
		want, _ := sfu.Pick(nodes, cid, skip)
		before, _ := sfu.Pick(nodes, cid, nil)
		if j.Session.SFU.ID != want.ID || j.Session.SFU.ID == drained {
			t.Fatalf("%s got %s, want %s", cid, j.Session.SFU.ID, want.ID)
		}
		if want.ID != before.ID {
			moved++
			if before.ID != drained {
				t.Fatalf("%s moved although it was not on the drained node", cid)
			}
		}
	}
	// Drain everything: no node can take a new session.
	for _, n := range nodes {
		a.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id) { id } }`, brooktest.Vars{"id": n.ID}, nil)
	}
	brooktest.WantCode(t, b.Query(t, env.Token(t, alice), joinCallQuery, brooktest.Vars{"id": createCall(t, a, alice, "default", "nowhere-"+tag)}), api.CodeConflict)
	// Undrain.
	b.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id, drained: false) { id drained } }`, brooktest.Vars{"id": drained}, &d)
	if d.DrainSFUNode.Drained {
		t.Fatal("still drained")
	}
	if j := joinCall(t, a, alice, "default:nowhere-"+tag).JoinCall; j.Session.SFU.ID != drained {
		t.Fatalf("only %s is in service, got %s", drained, j.Session.SFU.ID)
	}
}

// A participant whose subscription is gone (its node stopped) is removed
// by the sweep on another node after the timeout, and the session ends
// when nobody is left; the events reach the other node's subscribers.
func TestCallParticipantTimeoutAcrossNodes(t *testing.T) {
	t.Parallel()
	// Subscriptions refresh every third of the timeout; 2 s leaves a busy
	// test machine ample room.
	const timeout = 2 * time.Second
	opts := brooktest.NodeOptions{
		Node: func(o *node.Options) { o.CallParticipantTimeout = timeout },
		Runner: func(o *workers.Options) {
			o.CallSweepInterval = 100 * time.Millisecond
			o.CallParticipantTimeout = timeout
		},
	}
	a := env.StartNode(t, opts)
	b := env.StartNode(t, opts)
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, b, alice, bob, carol)
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
	watch, err := b.Bus.Subscribe(context.Background(), store.CallSessionTopic(sid))
	if err != nil {
		t.Fatal(err)
	}
	bobEvents.Complete()
	var types []string
	for len(types) < 2 {
		e, err := store.DecodeCallEvent((<-watch.C).Data)
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

// A call page costs a constant number of statements.
func TestCallQueryStatements(t *testing.T) {
	t.Parallel()
	// No workers: their polling would count too.
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	users := make([]string, 6)
	for i := range users {
		users[i] = fmt.Sprintf("s%d-%s", i, tag)
	}
	callUsers(t, n, users...)
	cid := createCall(t, n, users[0], "default", "stmts-"+tag, users[1:]...)
	session := func(leave bool) {
		var parts []string
		for _, u := range users {
			parts = append(parts, joinCall(t, n, u, cid).JoinCall.Participant.ID)
		}
		for i, u := range users {
			if leave {
				n.Must(t, env.Token(t, u), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": parts[i]}, nil)
			}
		}
	}
	q := `query($id: ID!) { call(id: $id) { id members { role user { name online } } session { sfu { id drained } }
		sessions(first: 5) { id call { id } participants(live: true) { user { name } } } } }`
	tok := env.Token(t, users[0])
	statements := func() int64 {
		n.Must(t, tok, q, brooktest.Vars{"id": cid}, nil) // warms the sign-in
		before := n.Store.Statements()
		var out struct {
			Call struct {
				Members  []struct{ Role string }
				Sessions []struct {
					Participants []struct{ User struct{ Name string } }
				}
			}
		}
		n.Must(t, tok, q, brooktest.Vars{"id": cid}, &out)
		if len(out.Call.Members) != len(users) {
			t.Fatalf("page %+v", out)
		}
		return n.Store.Statements() - before
	}
	session(true)
	session(false)
	small := statements()
	session(true)
	session(true)
	session(false)
	// membership, call, members, their users, live session, drained nodes,
	// sessions, their participants, the participants' users.
	if large := statements(); small != 9 || large != small {
		t.Fatalf("the call page ran %d statements with 2 sessions, %d with 4; want 9", small, large)
	}
}

// The signaling path runs no SQL: once a participant's facts are cached,
// sendSignal and the callEvents delivery it causes use Redis and the bus
// only, even with the sender's user and the signal's fields selected.
func TestCallSignalingRunsNoSQL(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, a, alice, bob, carol)
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

// Hosts manage members: adding, changing roles and removing (which takes
// the removed user's participants out of the session), and end the call
// for everyone.
func TestCallMembersAndEnd(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
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
	watch, err := n.Bus.Subscribe(context.Background(), store.CallSessionTopic(uuid.MustParse(bj.Session.ID)))
	if err != nil {
		t.Fatal(err)
	}
	var ended struct{ EndCall bool }
	n.Must(t, env.Token(t, bob), `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": cid}, &ended)
	if !ended.EndCall {
		t.Fatal("endCall returned false")
	}
	if e, _ := store.DecodeCallEvent((<-watch.C).Data); e.Type != "session.ended" {
		t.Fatalf("event %+v", e)
	}
	left := map[string]bool{}
	for len(left) < 2 {
		e, err := store.DecodeCallEvent((<-watch.C).Data)
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

// Redis holds only what PostgreSQL can rebuild: with a participant's
// signaling facts and liveness entry gone, signals still flow (the facts
// come back from PostgreSQL) and the repair pass restores the liveness entry.
func TestCallSurvivesRedisLoss(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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
	if err := rdb.Del(ctx, facts...).Err(); err != nil {
		t.Fatal(err)
	}

	// A second node has no cached facts: it must rebuild them.
	other := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	other.Must(t, env.Token(t, bob), `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "sdp") { id } }`,
		brooktest.Vars{"p": bj.Participant.ID, "to": aj.Participant.ID}, nil)
	if ev := nextCallEvent(t, aliceEvents); ev.Type != "signal" || ev.Signal.From.ID != bj.Participant.ID {
		t.Fatalf("event %+v", ev)
	}
	if n, err := rdb.Exists(ctx, facts...).Result(); err != nil || n != 2 {
		t.Fatalf("facts restored in redis: %d, %v", n, err)
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

// A member removed while their joinCall is in flight does not stay in the
// call: the join holds the call's row (shared) and the change of members
// waits for it, then finds and removes its participant. Here the join is
// held on the session's row lock while the removal is made.
func TestCallMemberRemovedDuringJoin(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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
	waiting := func() int { return brooktest.LockWaiters(t, n.Store.DB(), tx.Conn().PgConn().PID()) }
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

// A session lists at most 1,000 participants: every live one, whatever
// how many left before them, then the latest to leave.
func TestCallLiveParticipantsPastTheListLimit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "long-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	ids := make([]uuid.UUID, store.MaxCallParticipantsListed)
	for i := range ids {
		ids[i] = store.NewID()
	}
	if _, err := n.Store.DB().Exec(context.Background(), `
		INSERT INTO call_participants (id, session_id, call_id, user_id, left_at, left_reason)
		SELECT u, $2, $3, $4, now(), 'left' FROM unnest($1::uuid[]) AS u`, ids, aj.Session.ID, cid, alice); err != nil {
		t.Fatal(err)
	}
	bj := joinCall(t, n, bob, cid).JoinCall
	var out struct {
		Call struct {
			Session struct {
				Live, All []struct{ ID string }
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($id: ID!) { call(id: $id) { session {
		live: participants(live: true) { id } all: participants { id } } } }`, brooktest.Vars{"id": cid}, &out)
	s := out.Call.Session
	if len(s.Live) != 2 || s.Live[0].ID != aj.Participant.ID || s.Live[1].ID != bj.Participant.ID {
		t.Fatalf("live participants %v, want alice %s then bob %s", s.Live, aj.Participant.ID, bj.Participant.ID)
	}
	if len(s.All) != store.MaxCallParticipantsListed || s.All[0].ID != aj.Participant.ID || s.All[len(s.All)-1].ID != bj.Participant.ID {
		t.Fatalf("all participants: %d, first %v, last %v", len(s.All), s.All[0], s.All[len(s.All)-1])
	}
}

// Signals sent to a participant whose callEvents stream has not started
// yet (it joined, the other side saw it in others and sent its offer at
// once) are not lost: they follow ready, in order, on whichever node the
// stream starts, and ready names everyone already in the session.
func TestCallSignalsBeforeTheStreamStarts(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, a, alice, bob)
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
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "tab-"+tag, bob)
	aj := joinCall(t, n, alice, cid).JoinCall
	bj := joinCall(t, n, bob, cid).JoinCall
	bobEvents := subscribeCallEvents(t, n, bob, bj.Participant.ID)
	reqCtx, closeTab := context.WithCancel(context.Background())
	ended := make(chan bool, 1)
	t.Cleanup(resolvers.OnDeparturesCommitted(func(ctx context.Context) {
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
