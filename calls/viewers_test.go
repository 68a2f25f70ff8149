package calls_test

import (
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

const setMembersQuery = `mutation($id: ID!, $set: [CallMemberInput!]) { updateCallMembers(id: $id, set: $set) { members { user { id } role } } }`

// setRole gives a member of a call a role, as its host.
func setRole(t *testing.T, n *brooktest.Node, host, call, user, role string) {
	t.Helper()
	n.Must(t, env.Token(t, host), setMembersQuery, brooktest.Vars{"id": call,
		"set": []map[string]any{{"user": user, "role": role}}}, nil)
}

// A viewer joins and watches: its SFU token subscribes only (no publish,
// no data), it cannot unmute until a host grants it, and then it may.
func TestViewerWatches(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = sfuWithKeys }})
	tag := brooktest.Tag()
	alice, bob, vera := "alice-"+tag, "bob-"+tag, "vera-"+tag
	env.AddUsers(t, n, alice, bob, vera)
	cid := createCall(t, n, alice, "default", "watch-"+tag, bob)
	// A role that is none is refused, and nothing is written.
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), setMembersQuery, brooktest.Vars{"id": cid,
		"set": []map[string]any{{"user": vera, "role": "watcher"}}}), api.CodeBadUserInput)
	if c := n.Count(t, `SELECT count(*) FROM call_members WHERE call_id = $1 AND user_id = $2`, cid, vera); c != 0 {
		t.Fatalf("a refused role wrote %d members", c)
	}
	setRole(t, n, alice, cid, vera, "viewer")
	var got struct {
		Call struct {
			Members []struct {
				User struct{ ID string }
				Role string
			}
		}
	}
	n.Must(t, env.Token(t, vera), `query($id: ID!) { call(id: $id) { members { user { id } role } } }`, brooktest.Vars{"id": cid}, &got)
	roles := map[string]string{}
	for _, m := range got.Call.Members {
		roles[m.User.ID] = m.Role
	}
	if roles[alice] != "host" || roles[bob] != "member" || roles[vera] != "viewer" {
		t.Fatalf("roles %v", roles)
	}

	var j sfuJoin
	n.Must(t, env.Token(t, vera), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	if j.JoinCall.SFUToken == nil {
		t.Fatal("a viewer got no SFU token")
	}
	_, secret, _ := nodeSecret(t, j.JoinCall.Session.SFU.ID)
	v, err := auth.ParseAPIToken(j.JoinCall.SFUToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	_, grants, err := v.Verify(secret)
	if err != nil {
		t.Fatalf("LiveKit refused a viewer's token: %v", err)
	}
	if video := grants.Video; video.GetCanPublish() || video.GetCanPublishData() || !video.GetCanSubscribe() || !video.RoomJoin {
		t.Fatalf("a viewer's grants: %+v", video)
	}
	vp := j.JoinCall.Participant.ID
	_, ready := subscribePerms(t, n, vera, vp)
	if len(ready.Participants) != 1 || len(ready.Participants[0].Permissions) != 0 {
		t.Fatalf("a viewer's ready: %+v", ready.Participants)
	}
	// No unmuting without a grant; muting is always allowed.
	brooktest.WantCode(t, n.Query(t, env.Token(t, vera), stateMutation, brooktest.Vars{"p": vp, "a": false}), api.CodeForbidden)
	brooktest.WantCode(t, n.Query(t, env.Token(t, vera), stateMutation, brooktest.Vars{"p": vp, "s": true}), api.CodeForbidden)
	n.Must(t, env.Token(t, vera), stateMutation, brooktest.Vars{"p": vp, "v": true}, nil)
	// A viewer may ask, and a host may grant.
	n.Must(t, env.Token(t, vera), `mutation($p: ID!) { requestPermission(participant: $p, permissions: [SEND_AUDIO]) }`, brooktest.Vars{"p": vp}, nil)
	n.Must(t, env.Token(t, alice), grantMutation, brooktest.Vars{"c": cid, "u": vera, "p": []string{"SEND_AUDIO"}}, nil)
	n.Must(t, env.Token(t, vera), stateMutation, brooktest.Vars{"p": vp, "a": false}, nil)
	var fresh sfuRefresh
	n.Must(t, env.Token(t, vera), refreshQuery, brooktest.Vars{"p": vp}, &fresh)
	v, _ = auth.ParseAPIToken(fresh.RefreshSFUToken.Token)
	if _, grants, err = v.Verify(secret); err != nil {
		t.Fatal(err)
	}
	// The grant lets it speak; it still sends no data and no camera.
	if video := grants.Video; !video.GetCanPublishSource(livekit.TrackSource_MICROPHONE) ||
		video.GetCanPublishSource(livekit.TrackSource_CAMERA) || video.GetCanPublishData() {
		t.Fatalf("a granted viewer's grants: %+v", video)
	}
}

// Viewers are not rung: ringing every member skips them, ringing one by
// name is refused (nothing written), and a viewer rings nobody.
func TestViewersAreNotRung(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, vera := "alice-"+tag, "bob-"+tag, "vera-"+tag
	env.AddUsers(t, n, alice, bob, vera)
	cid := createCall(t, n, alice, "livestream", "show-"+tag, bob, vera)
	setRole(t, n, alice, cid, vera, "viewer")
	viewer := subscribeRings(t, n, vera)

	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), ringCallQuery, brooktest.Vars{"id": cid, "m": []string{bob, vera}}), api.CodeBadUserInput)
	brooktest.WantCode(t, n.Query(t, env.Token(t, vera), ringCallQuery, brooktest.Vars{"id": cid, "m": []string{bob}}), api.CodeForbidden)
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1`, cid); c != 0 {
		t.Fatalf("refused rings wrote %d rows", c)
	}
	// createCall with ring (get-or-create) rings the members but the viewer.
	var created struct {
		CreateCall struct {
			Rings []struct{ User struct{ ID string } }
		}
	}
	n.Must(t, env.Token(t, alice), `mutation($id: ID!) { createCall(input: {type: "livestream", id: $id, ring: true}) { rings { user { id } } } }`,
		brooktest.Vars{"id": "show-" + tag}, &created)
	if r := created.CreateCall.Rings; len(r) != 1 || r[0].User.ID != bob {
		t.Fatalf("rings %+v, want bob's alone", r)
	}
	if c := n.Count(t, `SELECT count(*) FROM call_rings WHERE call_id = $1 AND user_id = $2`, cid, vera); c != 0 {
		t.Fatalf("the viewer has %d rings", c)
	}
	viewer.None(200 * time.Millisecond)
}
