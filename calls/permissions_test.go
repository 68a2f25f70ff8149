package calls_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
)

// permEvent is a callEvents message as the permission tests select it.
type permEvent struct {
	Type        string
	Participant *struct {
		ID    string
		User  struct{ ID string }
		State struct{ AudioMuted, VideoMuted, Screensharing bool }
	}
	Participants []struct {
		ID          string
		User        struct{ ID string }
		State       struct{ AudioMuted, VideoMuted, Screensharing bool }
		Permissions []string
	}
	Permissions []string
	Custom      *struct {
		Type string
		Data map[string]any
	}
}

const permEventsQuery = `subscription($p: ID!) { callEvents(participant: $p) {
	type participant { id user { id } state { audioMuted videoMuted screensharing } }
	participants { id user { id } state { audioMuted videoMuted screensharing } permissions }
	permissions custom { type data } } }`

// subscribePerms subscribes to a participant's events and returns the
// stream and its ready event.
func subscribePerms(t *testing.T, n *brooktest.Node, user, pid string) (*brooktest.Sub, permEvent) {
	t.Helper()
	sub := n.MustDial(t, env.Token(t, user)).Subscribe(permEventsQuery, brooktest.Vars{"p": pid})
	ready := nextPerm(t, sub)
	if ready.Type != "ready" || ready.Participant.ID != pid {
		t.Fatalf("first event %+v, want ready", ready)
	}
	return sub, ready
}

func nextPerm(t *testing.T, sub *brooktest.Sub) permEvent {
	t.Helper()
	var out struct{ CallEvents permEvent }
	sub.NextData(&out)
	return out.CallEvents
}

// wantPerm reads the next event and checks its type and participant.
func wantPerm(t *testing.T, sub *brooktest.Sub, typ, pid string) permEvent {
	t.Helper()
	ev := nextPerm(t, sub)
	if ev.Type != typ || ev.Participant == nil || ev.Participant.ID != pid {
		t.Fatalf("got %+v, want %s of %s", ev, typ, pid)
	}
	return ev
}

const (
	stateMutation = `mutation($p: ID!, $a: Boolean, $v: Boolean, $s: Boolean) {
		updateParticipantState(participant: $p, audioMuted: $a, videoMuted: $v, screensharing: $s) {
			id state { audioMuted videoMuted screensharing } } }`
	grantMutation  = `mutation($c: ID!, $u: ID!, $p: [CallPermission!]!) { grantPermissions(call: $c, user: $u, permissions: $p) }`
	revokeMutation = `mutation($c: ID!, $u: ID!, $p: [CallPermission!]!) { revokePermissions(call: $c, user: $u, permissions: $p) }`
)

// Permissions and state across two nodes: bob's state changes reach
// alice's stream on the other node; a host revokes (which mutes), bob asks
// (only hosts hear), a host grants; a host mutes; a late joiner's ready
// shows everyone's state and permissions. Refusals write nothing.
func TestCallPermissionsAndState(t *testing.T) {
	t.Parallel()
	n1 := env.StartNode(t, brooktest.NodeOptions{})
	n2 := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	env.AddUsers(t, n1, alice, bob, carol, dave)
	cid := createCall(t, n1, alice, "default", "perm-"+tag, bob, carol)
	aj := joinCall(t, n1, alice, cid)
	bj := joinCall(t, n2, bob, cid)
	ap, bp := aj.JoinCall.Participant.ID, bj.JoinCall.Participant.ID
	aSub, _ := subscribePerms(t, n1, alice, ap)
	bSub, ready := subscribePerms(t, n2, bob, bp)
	for _, p := range ready.Participants {
		// Everyone starts muted, and hosts and members may send all three.
		if !p.State.AudioMuted || !p.State.VideoMuted || p.State.Screensharing || len(p.Permissions) != 3 {
			t.Fatalf("ready participant %+v", p)
		}
	}

	// Bob unmutes on node 2; alice hears it on node 1, bob too.
	var st struct {
		UpdateParticipantState struct {
			ID    string
			State struct{ AudioMuted, VideoMuted, Screensharing bool }
		}
	}
	n2.Must(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "a": false, "s": true}, &st)
	if s := st.UpdateParticipantState.State; s.AudioMuted || !s.VideoMuted || !s.Screensharing {
		t.Fatalf("state %+v", s)
	}
	for _, sub := range []*brooktest.Sub{aSub, bSub} {
		if ev := wantPerm(t, sub, "participant.updated", bp); ev.Participant.State.AudioMuted || !ev.Participant.State.Screensharing {
			t.Fatalf("event state %+v", ev.Participant.State)
		}
	}

	// Only hosts grant and revoke; bad input is refused; nothing is written.
	brooktest.WantCode(t, n2.Query(t, env.Token(t, bob), revokeMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO"}}), api.CodeForbidden)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"FLY"}}), api.CodeBadUserInput)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{}}), api.CodeBadUserInput)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": dave, "p": []string{"SEND_AUDIO"}}), api.CodeBadUserInput)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": "default:none-" + tag, "u": bob, "p": []string{"SEND_AUDIO"}}), api.CodeNotFound)
	brooktest.WantCode(t, n2.Query(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp}), api.CodeBadUserInput)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), stateMutation, brooktest.Vars{"p": bp, "a": true}), api.CodeForbidden)
	if c := n1.Count(t, `SELECT count(*) FROM call_permissions WHERE call_id = $1`, cid); c != 0 {
		t.Fatalf("%d permission rows after refusals", c)
	}

	// Alice revokes bob's audio and screen: bob's set shrinks, and he is
	// muted and stops sharing, in one participant.updated.
	var rv struct{ RevokePermissions []string }
	n1.Must(t, env.Token(t, alice), revokeMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO", "SCREENSHARE"}}, &rv)
	if !slices.Equal(rv.RevokePermissions, []string{"SEND_VIDEO"}) {
		t.Fatalf("after revoke: %v", rv.RevokePermissions)
	}
	for _, sub := range []*brooktest.Sub{aSub, bSub} {
		if ev := wantPerm(t, sub, "permissions.updated", bp); !slices.Equal(ev.Permissions, []string{"SEND_VIDEO"}) {
			t.Fatalf("permissions.updated %v", ev.Permissions)
		}
		if ev := wantPerm(t, sub, "participant.updated", bp); !ev.Participant.State.AudioMuted || ev.Participant.State.Screensharing {
			t.Fatalf("after revoke, state %+v", ev.Participant.State)
		}
	}
	// Unmuting now needs the permission bob lacks; muting is fine.
	brooktest.WantCode(t, n2.Query(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "a": false}), api.CodeForbidden)
	brooktest.WantCode(t, n2.Query(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "v": false, "s": true}), api.CodeForbidden)
	if c := n1.Count(t, `SELECT count(*) FROM call_participants WHERE id = $1 AND audio_muted AND video_muted AND NOT screensharing`, bp); c != 1 {
		t.Fatal("a refused state change was written")
	}

	// Bob asks; only alice, the host, hears it.
	var asked struct{ RequestPermission bool }
	n2.Must(t, env.Token(t, bob), `mutation($p: ID!) { requestPermission(participant: $p, permissions: [SEND_AUDIO]) }`, brooktest.Vars{"p": bp}, &asked)
	if !asked.RequestPermission {
		t.Fatal("requestPermission found no host")
	}
	if ev := wantPerm(t, aSub, "permission.requested", bp); !slices.Equal(ev.Permissions, []string{"SEND_AUDIO"}) || ev.Participant.User.ID != bob {
		t.Fatalf("permission.requested %+v", ev)
	}
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), `mutation($p: ID!) { requestPermission(participant: $p, permissions: [SEND_AUDIO]) }`, brooktest.Vars{"p": bp}), api.CodeForbidden)

	// Alice grants; bob unmutes.
	var gr struct{ GrantPermissions []string }
	n1.Must(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO"}}, &gr)
	if !slices.Equal(gr.GrantPermissions, []string{"SEND_AUDIO", "SEND_VIDEO"}) {
		t.Fatalf("after grant: %v", gr.GrantPermissions)
	}
	// The next event bob sees is the grant: the request went to hosts only.
	for _, sub := range []*brooktest.Sub{bSub, aSub} {
		if ev := wantPerm(t, sub, "permissions.updated", bp); len(ev.Permissions) != 2 {
			t.Fatalf("permissions.updated %v", ev.Permissions)
		}
	}
	n2.Must(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "a": false, "v": false}, nil)
	wantPerm(t, aSub, "participant.updated", bp)
	wantPerm(t, bSub, "participant.updated", bp)

	// Alice mutes bob's audio; members may not mute.
	mute := `mutation($c: ID!, $u: [ID!]!) { muteParticipants(call: $c, users: $u) { id state { audioMuted videoMuted } } }`
	brooktest.WantCode(t, n2.Query(t, env.Token(t, bob), mute, brooktest.Vars{"c": cid, "u": []string{alice}}), api.CodeForbidden)
	brooktest.WantCode(t, n1.Query(t, env.Token(t, alice), mute, brooktest.Vars{"c": cid, "u": []string{bob, bob}}), api.CodeBadUserInput)
	var muted struct {
		MuteParticipants []struct {
			ID    string
			State struct{ AudioMuted, VideoMuted bool }
		}
	}
	n1.Must(t, env.Token(t, alice), mute, brooktest.Vars{"c": cid, "u": []string{bob, carol}}, &muted)
	if len(muted.MuteParticipants) != 1 || muted.MuteParticipants[0].ID != bp || !muted.MuteParticipants[0].State.AudioMuted || muted.MuteParticipants[0].State.VideoMuted {
		t.Fatalf("muteParticipants %+v", muted.MuteParticipants)
	}
	if ev := wantPerm(t, bSub, "participant.updated", bp); !ev.Participant.State.AudioMuted || ev.Participant.State.VideoMuted {
		t.Fatalf("muted state %+v", ev.Participant.State)
	}
	wantPerm(t, aSub, "participant.updated", bp)
	// Muting again changes nothing and says nothing.
	n1.Must(t, env.Token(t, alice), mute, brooktest.Vars{"c": cid, "u": []string{bob}}, &muted)
	if len(muted.MuteParticipants) != 0 {
		t.Fatalf("second mute changed %+v", muted.MuteParticipants)
	}

	// Carol joins late: her ready shows bob muted with video on, and his
	// two capabilities.
	cj := joinCall(t, n2, carol, cid)
	_, late := subscribePerms(t, n2, carol, cj.JoinCall.Participant.ID)
	found := false
	for _, p := range late.Participants {
		if p.ID == bp {
			found = true
			if !p.State.AudioMuted || p.State.VideoMuted || p.State.Screensharing || !slices.Equal(p.Permissions, []string{"SEND_AUDIO", "SEND_VIDEO"}) {
				t.Fatalf("late joiner sees bob as %+v", p)
			}
		}
	}
	if !found {
		t.Fatalf("late joiner's ready lacks bob: %+v", late.Participants)
	}
	wantPerm(t, aSub, "participant.joined", cj.JoinCall.Participant.ID)
	if c := n1.Count(t, `SELECT count(*) FROM call_permissions WHERE call_id = $1 AND user_id = $2`, cid, bob); c != 1 {
		t.Fatalf("%d permission rows for bob", c)
	}
}

// Custom events reach the whole session with their data, are refused
// past the participant's budget (RATE_LIMITED with retryAfter), and bad
// ones are refused.
func TestSendCallEvent(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.CallEventRate = ephemeral.Rate{Rate: 1, Period: time.Hour, Burst: 3}
	}})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "react-"+tag, bob)
	ap := joinCall(t, n, alice, cid).JoinCall.Participant.ID
	bp := joinCall(t, n, bob, cid).JoinCall.Participant.ID
	aSub, _ := subscribePerms(t, n, alice, ap)
	send := `mutation($p: ID!, $t: String!, $d: JSON) { sendCallEvent(participant: $p, type: $t, data: $d) { type participant { id } custom { type data } } }`

	for _, vars := range []brooktest.Vars{
		{"p": bp, "t": ""},
		{"p": bp, "t": "has space"},
		{"p": bp, "t": strings.Repeat("x", 65)},
		{"p": bp, "t": "big", "d": map[string]any{"x": strings.Repeat("y", 5000)}},
		{"p": "not-a-uuid", "t": "reaction"},
	} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, bob), send, vars), api.CodeBadUserInput)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), send, brooktest.Vars{"p": bp, "t": "reaction"}), api.CodeForbidden)

	for i := 0; i < 3; i++ {
		var out struct {
			SendCallEvent struct {
				Type   string
				Custom struct{ Type string }
			}
		}
		n.Must(t, env.Token(t, bob), send, brooktest.Vars{"p": bp, "t": "reaction", "d": map[string]any{"emoji": "👍", "n": i}}, &out)
		if out.SendCallEvent.Type != "custom" || out.SendCallEvent.Custom.Type != "reaction" {
			t.Fatalf("sendCallEvent answered %+v", out.SendCallEvent)
		}
		ev := wantPerm(t, aSub, "custom", bp)
		if ev.Custom == nil || ev.Custom.Type != "reaction" || ev.Custom.Data["emoji"] != "👍" || ev.Custom.Data["n"] != float64(i) {
			t.Fatalf("custom event %+v", ev.Custom)
		}
	}
	r := n.Query(t, env.Token(t, bob), send, brooktest.Vars{"p": bp, "t": "reaction"})
	brooktest.WantCode(t, r, api.CodeRateLimited)
	if f, ok := r.Errors[0].Extensions["retryAfter"].(float64); !ok || f < 1 {
		t.Fatalf("no retryAfter: %+v", r.Errors[0].Extensions)
	}
	// The budget is the participant's: alice still sends.
	n.Must(t, env.Token(t, alice), send, brooktest.Vars{"p": ap, "t": "reaction"}, nil)
	wantPerm(t, aSub, "custom", ap)
}

// The permission, state and custom events travel as JSON, which
// DecodeEvent reads beside the signaling path's binary form: they arrive
// whole, the participant's state included.
func TestPermissionEventsDecode(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	p := &store.CallParticipant{ID: uuid.New(), SessionID: uuid.New(), CallID: "default:review", UserID: "bob", JoinedAt: at,
		KnownState: &store.CallParticipantState{AudioMuted: true, Screensharing: true}}
	for _, ev := range []*calls.CallEvent{
		{Type: calls.EventParticipantUpdated, Call: p.CallID, Session: p.SessionID, Participant: p, CreatedAt: at},
		{Type: calls.EventPermissionsUpdated, Call: p.CallID, Session: p.SessionID, Participant: p,
			Permissions: []calls.CallPermission{calls.SendAudio, calls.Screenshare}, CreatedAt: at},
		{Type: calls.EventCustom, Call: p.CallID, Session: p.SessionID, Participant: p,
			Custom: &calls.CallCustomEvent{Type: "reaction", Data: json.RawMessage(`{"emoji":"👏"}`)}, CreatedAt: at},
	} {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := calls.DecodeEvent(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("decoded %+v, want %+v", got, ev)
		}
	}
}

// A revoke racing an unmute never leaves a participant unmuted without
// SEND_AUDIO: the revoke and the state change take the member's row in
// turn, whichever node each runs on.
func TestRevokeRacesUnmute(t *testing.T) {
	t.Parallel()
	n1 := env.StartNode(t, brooktest.NodeOptions{})
	n2 := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n1, alice, bob)
	cid := createCall(t, n1, alice, "default", "race-"+tag, bob)
	bp := joinCall(t, n2, bob, cid).JoinCall.Participant.ID
	for i := 0; i < 20; i++ {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Refused (FORBIDDEN) when the revoke came first.
			n2.Query(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "a": false})
		}()
		go func() {
			defer wg.Done()
			n1.Must(t, env.Token(t, alice), revokeMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO"}}, nil)
		}()
		wg.Wait()
		if c := n1.Count(t, `SELECT count(*) FROM call_participants WHERE id = $1 AND NOT audio_muted`, bp); c != 0 {
			t.Fatalf("round %d: bob is unmuted without SEND_AUDIO", i)
		}
		n1.Must(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO"}}, nil)
	}
}
