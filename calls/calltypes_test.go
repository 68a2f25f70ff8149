package calls_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

const upsertCallTypeQuery = `mutation($name: String!, $s: CallTypeSettingsInput!) { upsertCallType(name: $name, settings: $s) {
	name maxParticipants maxDurationSeconds ringTimeoutSeconds rejectBusy backstage permissions { host member viewer } } }`

type callTypeResult struct {
	Name               string
	MaxParticipants    int
	MaxDurationSeconds int
	RingTimeoutSeconds *int
	RejectBusy         bool
	Backstage          bool
	Permissions        struct{ Host, Member, Viewer []string }
}

// upsertCallType defines a call type named after the test's tag (call
// types are shared by every test of the database) and returns its name.
func upsertCallType(t *testing.T, n *brooktest.Node, name string, settings map[string]any) callTypeResult {
	t.Helper()
	var out struct{ UpsertCallType callTypeResult }
	n.Must(t, env.AdminToken(t, "root"), upsertCallTypeQuery, brooktest.Vars{"name": name, "s": settings}, &out)
	return out.UpsertCallType
}

// The built-in types are there; an admin's type keeps the settings given,
// a second upsert changes only those it names; bad settings are refused
// with the setting's name and write nothing; only admins define types.
func TestCallTypeSettings(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	env.AddUsers(t, n, "u-"+tag)
	var types struct {
		CallTypes []struct {
			Name      string
			Backstage bool
		}
	}
	n.Must(t, env.Token(t, "u-"+tag), `{ callTypes { name backstage } }`, nil, &types)
	builtin := map[string]bool{}
	for _, ct := range types.CallTypes {
		builtin[ct.Name] = ct.Backstage
	}
	for name, backstage := range map[string]bool{"default": false, "audio_room": true, "livestream": true} {
		if got, ok := builtin[name]; !ok || got != backstage {
			t.Fatalf("built-in type %s: listed %v, backstage %v; want backstage %v", name, ok, got, backstage)
		}
	}

	name := "t-" + tag
	ct := upsertCallType(t, n, name, map[string]any{"maxParticipants": 5, "ringTimeoutSeconds": 7,
		"permissions": map[string]any{"host": []string{"SEND_AUDIO", "SCREENSHARE"}, "member": []string{"SEND_AUDIO"}}})
	if ct.MaxParticipants != 5 || ct.MaxDurationSeconds != 0 || ct.RingTimeoutSeconds == nil || *ct.RingTimeoutSeconds != 7 ||
		!ct.RejectBusy || ct.Backstage || len(ct.Permissions.Host) != 2 || len(ct.Permissions.Member) != 1 || ct.Permissions.Viewer == nil {
		t.Fatalf("new type: %+v", ct)
	}
	ct = upsertCallType(t, n, name, map[string]any{"backstage": true, "ringTimeoutSeconds": nil,
		"permissions": map[string]any{"viewer": []string{"SEND_AUDIO"}}})
	if ct.MaxParticipants != 5 || ct.RingTimeoutSeconds != nil || !ct.Backstage || len(ct.Permissions.Host) != 2 || len(ct.Permissions.Viewer) != 1 {
		t.Fatalf("changed type: %+v", ct)
	}

	admin := env.AdminToken(t, "root")
	for field, settings := range map[string]map[string]any{
		"settings.maxParticipants":    {"maxParticipants": 0},
		"settings.maxDurationSeconds": {"maxDurationSeconds": 86401},
		"settings.ringTimeoutSeconds": {"ringTimeoutSeconds": 601},
	} {
		r := n.Query(t, admin, upsertCallTypeQuery, brooktest.Vars{"name": "bad-" + tag, "s": settings})
		brooktest.WantCode(t, r, api.CodeBadUserInput)
		if got := r.Errors[0].Extensions["field"]; got != field {
			t.Fatalf("field of %v: %v, want %s", settings, got, field)
		}
	}
	brooktest.WantCode(t, n.Query(t, admin, upsertCallTypeQuery, brooktest.Vars{"name": "Bad Name", "s": map[string]any{}}), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, env.Token(t, "u-"+tag), upsertCallTypeQuery, brooktest.Vars{"name": "bad-" + tag, "s": map[string]any{}}), api.CodeForbidden)
	if c := n.Count(t, `SELECT count(*) FROM call_types WHERE name = $1`, "bad-"+tag); c != 0 {
		t.Fatalf("a refused call type was written")
	}

	// A call of an unknown type is refused, and not written.
	r := n.Query(t, env.Token(t, "u-"+tag), `mutation($id: ID!) { createCall(input: {type: "nosuch-type", id: $id}) { id } }`, brooktest.Vars{"id": tag})
	brooktest.WantCode(t, r, api.CodeBadUserInput)
	if c := n.Count(t, `SELECT count(*) FROM calls WHERE id = $1`, "nosuch-type:"+tag); c != 0 {
		t.Fatalf("a call of an unknown type was written")
	}
}

// Joins past maxParticipants get CALL_FULL, decided in the join's
// transaction: of many concurrent joins on two nodes exactly the limit
// get in; a leave makes room again.
func TestMaxParticipantsConcurrentJoins(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	typ := "full-" + tag
	upsertCallType(t, a, typ, map[string]any{"maxParticipants": 3})
	users := make([]string, 8)
	for i := range users {
		users[i] = fmt.Sprintf("u%d-%s", i, tag)
	}
	env.AddUsers(t, a, users...)
	call := createCall(t, a, users[0], typ, "c-"+tag, users[1:]...)

	var mu sync.Mutex
	joined, full := []string{}, 0
	var wg sync.WaitGroup
	for i, u := range users {
		n := a
		if i%2 == 1 {
			n = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := n.Query(t, env.Token(t, u), joinCallQuery, brooktest.Vars{"id": call})
			mu.Lock()
			defer mu.Unlock()
			if len(r.Errors) == 0 {
				var out callJoinResult
				if err := r.Decode(&out); err != nil {
					t.Error(err)
					return
				}
				joined = append(joined, out.JoinCall.Participant.ID)
				return
			}
			if code := r.Errors[0].Extensions["code"]; code != api.CodeCallFull {
				t.Errorf("join of %s: %v", u, r.Errors)
				return
			}
			if r.Errors[0].Extensions["maxParticipants"] != float64(3) {
				t.Errorf("CALL_FULL extensions: %v", r.Errors[0].Extensions)
			}
			full++
		}()
	}
	wg.Wait()
	if len(joined) != 3 || full != 5 {
		t.Fatalf("%d joined and %d refused, want 3 and 5", len(joined), full)
	}
	if c := a.Count(t, `SELECT count(*) FROM call_participants WHERE call_id = $1 AND left_at IS NULL`, call); c != 3 {
		t.Fatalf("%d live participants, want 3", c)
	}
	var left struct{ LeaveCall bool }
	var owner string
	if err := a.Store.DB().QueryRow(t.Context(), `SELECT user_id FROM call_participants WHERE id = $1`, joined[0]).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	a.Must(t, env.Token(t, owner), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": joined[0]}, &left)
	joinCall(t, a, owner, call)
}

// A backstage call takes hosts only until goLive; stopLive puts it back.
func TestBackstageGoLive(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	host, viewer := "host-"+tag, "viewer-"+tag
	env.AddUsers(t, n, host, viewer)
	call := createCall(t, n, host, "livestream", "l-"+tag, viewer)

	brooktest.WantCode(t, n.Query(t, env.Token(t, viewer), joinCallQuery, brooktest.Vars{"id": call}), api.CodeForbidden)
	if c := n.Count(t, `SELECT count(*) FROM call_sessions WHERE call_id = $1`, call); c != 0 {
		t.Fatalf("a refused backstage join started a session")
	}
	joinCall(t, n, host, call)
	const goLive = `mutation($id: ID!) { goLive(id: $id) { id backstage } }`
	brooktest.WantCode(t, n.Query(t, env.Token(t, viewer), goLive, brooktest.Vars{"id": call}), api.CodeForbidden)
	var live struct{ GoLive struct{ Backstage bool } }
	n.Must(t, env.Token(t, host), goLive, brooktest.Vars{"id": call}, &live)
	if live.GoLive.Backstage {
		t.Fatal("still backstage after goLive")
	}
	joinCall(t, n, viewer, call)
	var stop struct{ StopLive struct{ Backstage bool } }
	n.Must(t, env.Token(t, host), `mutation($id: ID!) { stopLive(id: $id) { backstage } }`, brooktest.Vars{"id": call}, &stop)
	if !stop.StopLive.Backstage {
		t.Fatal("not backstage after stopLive")
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, viewer), joinCallQuery, brooktest.Vars{"id": call}), api.CodeForbidden)
	// The default type has no backstage.
	if c := createCall(t, n, host, "default", "d-"+tag, viewer); c == "" {
		t.Fatal("no call")
	} else {
		joinCall(t, n, viewer, c)
	}
}

// A session past its type's maxDurationSeconds ends for everyone with
// session.ended, reason max_duration: by the outbox job written when the
// session started, which another node runs when the node that started it
// is gone.
func TestMaxDurationEndsSession(t *testing.T) {
	t.Parallel()
	starter := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	typ := "short-" + tag
	upsertCallType(t, starter, typ, map[string]any{"maxDurationSeconds": 1})
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, starter, alice, bob)

	// Live events: a session on a node that stays.
	n := env.StartNode(t, brooktest.NodeOptions{})
	call := createCall(t, n, alice, typ, "m-"+tag, bob)
	j := joinCall(t, n, alice, call)
	sub := subscribeCallEvents(t, n, alice, j.JoinCall.Participant.ID)
	ev := nextCallEvent(t, sub)
	if ev.Type != "session.ended" || ev.Reason == nil || *ev.Reason != "max_duration" {
		t.Fatalf("first event after the max duration: %+v", ev)
	}
	// The stream ends with the session; the participant left for the same reason.
	sub.Expect("complete")
	if c := n.Count(t, `SELECT count(*) FROM call_participants WHERE id = $1 AND left_reason = 'max_duration'`, j.JoinCall.Participant.ID); c != 1 {
		t.Fatalf("participant did not leave with reason max_duration")
	}

	// Durable: the node that started the session stops before the limit;
	// the other node's worker ends it.
	call2 := createCall(t, starter, alice, typ, "m2-"+tag, bob)
	j2 := joinCall(t, starter, bob, call2)
	starter.Stop()
	brooktest.Eventually(t, "the session ended by another node", func() bool {
		return n.Count(t, `SELECT count(*) FROM call_sessions WHERE id = $1 AND ended_at IS NOT NULL`, j2.JoinCall.Session.ID) == 1
	})
	if c := n.Count(t, `SELECT count(*) FROM call_participants WHERE session_id = $1 AND left_reason = 'max_duration'`, j2.JoinCall.Session.ID); c != 1 {
		t.Fatalf("%d participants left with max_duration, want 1", c)
	}
	// Once: the jobs are done and nothing else ended.
	n.WaitForJobs(t)
	if c := n.Count(t, `SELECT count(*) FROM call_sessions WHERE call_id = ANY($1)`, []string{call, call2}); c != 2 {
		t.Fatalf("%d sessions, want 2", c)
	}
}

// A call type's ringTimeoutSeconds decides when its rings are missed, and
// rejectBusy false rings a user who is in another call.
func TestCallTypeRingSettings(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	typ := "ring-" + tag
	upsertCallType(t, n, typ, map[string]any{"ringTimeoutSeconds": 1, "rejectBusy": false})
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	// Bob is in another live call: not busy for this type.
	other := createCall(t, n, carol, "default", "o-"+tag, bob)
	joinCall(t, n, bob, other)
	call := createCall(t, n, alice, typ, "r-"+tag, bob, carol)
	rings := ringCall(t, n, alice, call, bob)
	if len(rings) != 1 || rings[0].State != "RINGING" {
		t.Fatalf("ring of a user in another call, rejectBusy false: %+v", rings)
	}
	// Within Eventually's 10 s: the type's 1 s, not CALL_RING_TIMEOUT's 30 s.
	brooktest.Eventually(t, "the ring missed after the type's timeout", func() bool { return ringState(t, n, call, bob) == "MISSED" })
}
