package calls_test

import (
	"slices"
	"testing"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// A call type's default permissions are a member's until a host changes
// them, and the SFU token says the same: a talk's members may only speak;
// a host's grant of video and revoke of audio reach the member's next
// token.
func TestCallTypePermissionsReachTheSFUToken(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = sfuWithKeys }})
	tag := brooktest.Tag()
	alice, bob, admin := "alice-"+tag, "bob-"+tag, "admin-"+tag
	env.AddUsers(t, n, alice, bob, admin)
	talk := "talk_" + tag
	n.Must(t, env.AdminToken(t, admin), `mutation($n: String!) { upsertCallType(name: $n, settings: {
		permissions: { host: [SEND_AUDIO, SEND_VIDEO, SCREENSHARE], member: [SEND_AUDIO], viewer: [] } }) { name } }`,
		brooktest.Vars{"n": talk}, nil)
	cid := createCall(t, n, alice, talk, "t-"+tag, bob)

	var j sfuJoin
	n.Must(t, env.Token(t, bob), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	if j.JoinCall.SFUToken == nil {
		t.Fatal("no sfuToken")
	}
	bp := j.JoinCall.Participant.ID
	_, secret, _ := nodeSecret(t, j.JoinCall.Session.SFU.ID)
	sources := func(token string) []livekit.TrackSource {
		t.Helper()
		v, err := auth.ParseAPIToken(token)
		if err != nil {
			t.Fatal(err)
		}
		_, grants, err := v.Verify(secret)
		if err != nil {
			t.Fatal(err)
		}
		var out []livekit.TrackSource
		for _, s := range []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE, livekit.TrackSource_SCREEN_SHARE} {
			if grants.Video.GetCanPublishSource(s) {
				out = append(out, s)
			}
		}
		if !grants.Video.GetCanSubscribe() || !grants.Video.GetCanPublishData() {
			t.Fatalf("a member watches and sends data: %+v", grants.Video)
		}
		return out
	}
	refresh := func() []livekit.TrackSource {
		t.Helper()
		var r sfuRefresh
		n.Must(t, env.Token(t, bob), refreshQuery, brooktest.Vars{"p": bp}, &r)
		return sources(r.RefreshSFUToken.Token)
	}
	if got := sources(j.JoinCall.SFUToken.Token); !slices.Equal(got, []livekit.TrackSource{livekit.TrackSource_MICROPHONE}) {
		t.Fatalf("a talk member's token publishes %v, want the microphone only", got)
	}
	var perms struct {
		Call struct {
			Session struct {
				Participants []struct {
					ID          string
					Permissions []string
				}
			}
		}
	}
	n.Must(t, env.Token(t, bob), `query($c: ID!) { call(id: $c) { session { participants { id permissions } } } }`, brooktest.Vars{"c": cid}, &perms)
	if ps := perms.Call.Session.Participants; len(ps) != 1 || !slices.Equal(ps[0].Permissions, []string{"SEND_AUDIO"}) {
		t.Fatalf("participants' permissions: %+v", ps)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "v": false}), api.CodeForbidden)
	n.Must(t, env.Token(t, bob), stateMutation, brooktest.Vars{"p": bp, "a": false}, nil)

	// Both follow their events; bob's own permissions.updated brings his
	// fresh token, alice's copy of it none.
	aj := joinCall(t, n, alice, cid)
	const tokQuery = `subscription($p: ID!) { callEvents(participant: $p) { type participant { id } sfuToken { token } } }`
	bSub := n.MustDial(t, env.Token(t, bob)).Subscribe(tokQuery, brooktest.Vars{"p": bp})
	aSub := n.MustDial(t, env.Token(t, alice)).Subscribe(tokQuery, brooktest.Vars{"p": aj.JoinCall.Participant.ID})
	type tokEvent struct {
		Type        string
		Participant *struct{ ID string }
		SFUToken    *struct{ Token string } `json:"sfuToken"`
	}
	next := func(sub *brooktest.Sub, typ string) tokEvent {
		t.Helper()
		for {
			var out struct{ CallEvents tokEvent }
			sub.NextData(&out)
			if out.CallEvents.Type == typ {
				return out.CallEvents
			}
			if out.CallEvents.SFUToken != nil {
				t.Fatalf("a %s event carried an SFU token", out.CallEvents.Type)
			}
		}
	}
	next(bSub, "ready")
	next(aSub, "ready")
	n.Must(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_VIDEO"}}, nil)
	camMic := []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE}
	if ev := next(bSub, "permissions.updated"); ev.Participant.ID != bp || ev.SFUToken == nil || !slices.Equal(sources(ev.SFUToken.Token), camMic) {
		t.Fatalf("bob's permissions.updated: %+v", ev)
	}
	if ev := next(aSub, "permissions.updated"); ev.Participant.ID != bp || ev.SFUToken != nil {
		t.Fatalf("alice's copy of bob's permissions.updated: %+v", ev)
	}
	if got := refresh(); !slices.Equal(got, camMic) {
		t.Fatalf("after the grant of video: %v", got)
	}
	n.Must(t, env.Token(t, alice), revokeMutation, brooktest.Vars{"c": cid, "u": bob, "p": []string{"SEND_AUDIO"}}, nil)
	if got := refresh(); !slices.Equal(got, []livekit.TrackSource{livekit.TrackSource_CAMERA}) {
		t.Fatalf("after the revoke of audio: %v", got)
	}
}
