package calls_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

// A Redis that stalls for up to a second (a fork for BGSAVE, a slow
// script: it answers again, it does not go down) just as a departure
// commits does not lose the departure: once Redis answers, the node that
// had relayed signals between the participants refuses them within a
// second, and the others' streams on it hear participant.left. Before, the
// departure's cleanup and announcement had the request path's 50 ms per
// command, or were refused by the open circuit, and were lost with no bus
// gap to tell the other node, whose cache (no TTL) relayed the departed
// participant's signals for good.
//
// Not parallel: it freezes the package's Redis server.
func TestCallDepartureOutlivesARedisStall(t *testing.T) {
	if env.Redis == nil {
		t.Skip("needs a private Redis server to freeze")
	}
	// 400 ms: the guard's check (a 500 ms PING) sees Redis answer, so its
	// circuit stays closed and nothing signals a gap.
	t.Run("leave, 400 ms", func(t *testing.T) { testDepartureOutlivesStall(t, stallCase{stall: 400 * time.Millisecond}) })
	// A second: the check's PING goes unanswered and the circuit opens,
	// refusing commands at once until a probe finds Redis answering.
	t.Run("removal, 1 s", func(t *testing.T) {
		testDepartureOutlivesStall(t, stallCase{stall: time.Second, remove: true, opens: true})
	})
}

// stallCase is how long Redis stalls, whether bob is removed by alice
// (else he leaves), and whether the stall must open node a's circuit.
type stallCase struct {
	stall         time.Duration
	remove, opens bool
}

func testDepartureOutlivesStall(t *testing.T, c stallCase) {
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, a, alice, bob)
	cid := createCall(t, a, alice, "default", "stall-"+tag, bob)
	aj := joinCall(t, a, alice, cid).JoinCall
	bj := joinCall(t, a, bob, cid).JoinCall
	aliceEvents := subscribeCallEvents(t, b, alice, aj.Participant.ID)
	signal := `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "sdp") { id } }`
	send := func(user, from, to string) *brooktest.Response {
		return b.Query(t, env.Token(t, user), signal, brooktest.Vars{"p": from, "to": to})
	}
	// Node b relays between them, so it has both cached.
	for _, s := range [][3]string{{alice, aj.Participant.ID, bj.Participant.ID}, {bob, bj.Participant.ID, aj.Participant.ID}} {
		if r := send(s[0], s[1], s[2]); len(r.Errors) > 0 {
			t.Fatalf("signal before the departure: %+v", r.Errors)
		}
	}

	answering := make(chan struct{})
	opened := a.State.Guard().Opened()
	t.Cleanup(calls.OnDeparturesCommitted(func(context.Context) {
		stallRedis(t, c.stall, answering)
		// Requests on node a meanwhile time out, as under load: enough
		// failures in a row for its guard to check Redis.
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = a.State.Redis().Ping(context.Background()).Err()
			}()
		}
		wg.Wait()
	}))
	start := time.Now()
	if c.remove {
		a.Must(t, env.Token(t, alice), `mutation($id: ID!, $remove: [ID!]) { updateCallMembers(id: $id, remove: $remove) { id } }`,
			brooktest.Vars{"id": cid, "remove": []string{bob}}, nil)
	} else {
		a.Must(t, env.Token(t, bob), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": bj.Participant.ID}, nil)
	}
	answered := time.Since(start)
	// Node b sends nothing to Redis while it is frozen: its own failures
	// would open its circuit and purge its cache on recovery, which is not
	// what is under test.
	<-answering
	circuit := "stayed closed"
	select {
	case <-opened:
		circuit = "opened"
	default:
		if c.opens {
			t.Fatalf("a stall of %v did not open node a's circuit, which this case is about", c.stall)
		}
	}
	t.Logf("Redis stalled %v; the departure answered after %v; node a's circuit %s", c.stall, answered.Round(time.Millisecond), circuit)

	refused := func(user, from, to string) bool {
		r := send(user, from, to)
		return len(r.Errors) > 0 && r.Code() == api.CodeConflict
	}
	deadline := time.Now().Add(time.Second)
	for !refused(alice, aj.Participant.ID, bj.Participant.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("a second after Redis answered again, node b still relays signals to bob, who left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !refused(bob, bj.Participant.ID, aj.Participant.ID) {
		t.Fatal("node b relayed a signal from bob after he left")
	}
	for {
		ev := nextCallEvent(t, aliceEvents)
		if ev.Type == "signal" {
			continue // sent by bob before he left
		}
		if ev.Type != "participant.left" || ev.Participant.ID != bj.Participant.ID {
			t.Fatalf("alice's next event: %+v, want bob's participant.left", ev)
		}
		break
	}
}

// stallRedis freezes the package's Redis server (SIGSTOP: it keeps its
// connections and answers nothing) for d, then closes answering.
func stallRedis(t *testing.T, d time.Duration, answering chan struct{}) {
	if err := env.Redis.Freeze(); err != nil {
		t.Errorf("freeze Redis: %v", err)
		close(answering)
		return
	}
	var once sync.Once
	thaw := func() {
		once.Do(func() {
			if err := env.Redis.Thaw(); err != nil {
				t.Errorf("thaw Redis: %v", err)
			}
			close(answering)
		})
	}
	timer := time.AfterFunc(d, thaw)
	t.Cleanup(func() {
		timer.Stop()
		thaw()
	})
}
