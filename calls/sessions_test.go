package calls_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// The life of a call: create (get-or-create), join on two devices, leave,
// and the last one out ending the session, with the events on the way.
func TestCallCreateJoinLeave(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)

	cid := createCall(t, n, alice, "default", "standup-"+tag, bob)
	if cid != "default:standup-"+tag {
		t.Fatalf("call id %q", cid)
	}
	// Get-or-create: the same id returns the same call, unchanged.
	if again := createCall(t, n, bob, "default", "standup-"+tag); again != cid {
		t.Fatalf("get-or-create returned %q", again)
	}
	// Without an id, one is generated.
	if gen := createCall(t, n, alice, "audio_room", ""); !strings.HasPrefix(gen, "audio_room:") || uuid.Validate(strings.TrimPrefix(gen, "audio_room:")) != nil {
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
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := createCall(t, n, alice, "default", "solo-"+tag)
	j := joinCall(t, n, alice, cid).JoinCall
	sid := uuid.MustParse(j.Session.ID)
	sub, err := n.Bus.Subscribe(context.Background(), calls.SessionTopic(sid))
	if err != nil {
		t.Fatal(err)
	}
	events := subscribeCallEvents(t, n, alice, j.Participant.ID)
	n.Must(t, env.Token(t, alice), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": j.Participant.ID}, nil)
	var types []string
	for len(types) < 2 {
		ev := <-sub.C
		e, err := calls.DecodeEvent(ev.Data)
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

// Joins racing on two nodes start exactly one session.
func TestCallConcurrentJoinsStartOneSession(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	const users = 8
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d-%s", i, tag)
	}
	env.AddUsers(t, a, ids...)
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

// A call page costs a constant number of statements.
func TestCallQueryStatements(t *testing.T) {
	t.Parallel()
	// No workers: their polling would count too.
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	users := make([]string, 6)
	for i := range users {
		users[i] = fmt.Sprintf("s%d-%s", i, tag)
	}
	env.AddUsers(t, n, users...)
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

// A session lists at most 1,000 participants: every live one, whatever
// how many left before them, then the latest to leave.
func TestCallLiveParticipantsPastTheListLimit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
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
