package calls_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/sfu"
)

// Two SFU nodes, each with credentials of its own, as SFU_NODES gives them.
var sfuWithKeys = []sfu.Node{
	{ID: "eu-1", URL: "wss://sfu-eu-1.example", APIKey: "APIeu1", APISecret: "eu1-secret-0123456789abcdef0123456789"},
	{ID: "us-1", URL: "wss://sfu-us-1.example", APIKey: "APIus1", APISecret: "us1-secret-0123456789abcdef0123456789"},
}

const sfuJoinQuery = `mutation($id: ID!) { joinCall(id: $id) {
	session { id sfu { id } } participant { id } sfuToken { token expiresAt } } }`

type sfuJoin struct {
	JoinCall struct {
		Session struct {
			ID  string
			SFU struct{ ID string }
		}
		Participant struct{ ID string }
		SFUToken    *struct {
			Token     string
			ExpiresAt time.Time
		} `json:"sfuToken"`
	}
}

const refreshQuery = `mutation($p: ID!) { refreshSFUToken(participant: $p) { token expiresAt } }`

type sfuRefresh struct {
	RefreshSFUToken *struct {
		Token     string
		ExpiresAt time.Time
	} `json:"refreshSFUToken"`
}

func nodeSecret(t *testing.T, id string) (key, secret, otherSecret string) {
	t.Helper()
	for i, n := range sfuWithKeys {
		if n.ID == id {
			return n.APIKey, n.APISecret, sfuWithKeys[1-i].APISecret
		}
	}
	t.Fatalf("session on unknown SFU node %q", id)
	return "", "", ""
}

// claimsOf decodes a JWT's payload without verifying it, to check that it
// carries exactly the claims LiveKit reads.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A participant's token is signed with its session's SFU node's secret:
// LiveKit's own verifier accepts it with that secret, refuses it with the
// other node's, and reads the room, identity, name and grants Brook meant.
func TestSFUTokenVerifiedByLiveKit(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.SFUNodes = sfuWithKeys
		o.CallSFUTokenTTL = 5 * time.Minute
	}})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createCall(t, n, alice, "default", "sfu-"+tag, bob)

	before := time.Now().Truncate(time.Second)
	var j sfuJoin
	n.Must(t, env.Token(t, alice), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	tok := j.JoinCall.SFUToken
	if tok == nil {
		t.Fatal("no sfuToken although the node has a key and secret")
	}
	key, secret, otherSecret := nodeSecret(t, j.JoinCall.Session.SFU.ID)

	v, err := auth.ParseAPIToken(tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if v.APIKey() != key || v.Identity() != j.JoinCall.Participant.ID {
		t.Fatalf("api key %q, identity %q; want %q, %q", v.APIKey(), v.Identity(), key, j.JoinCall.Participant.ID)
	}
	if _, _, err := v.Verify(otherSecret); err == nil {
		t.Fatal("the other SFU node's secret verified the token")
	}
	reg, grants, err := v.Verify(secret)
	if err != nil {
		t.Fatalf("LiveKit refused the token: %v", err)
	}
	if grants.Identity != j.JoinCall.Participant.ID || grants.Name != "Alice-"+tag {
		t.Fatalf("identity %q name %q", grants.Identity, grants.Name)
	}
	video := grants.Video
	if video == nil || video.Room != j.JoinCall.Session.ID || !video.RoomJoin || video.RoomAdmin || video.RoomCreate {
		t.Fatalf("video grant %+v", video)
	}
	if !video.GetCanPublish() || !video.GetCanSubscribe() || !video.GetCanPublishData() {
		t.Fatalf("a host may publish, subscribe and send data: %+v", video)
	}
	for _, src := range []livekit.TrackSource{livekit.TrackSource_CAMERA, livekit.TrackSource_MICROPHONE,
		livekit.TrackSource_SCREEN_SHARE, livekit.TrackSource_SCREEN_SHARE_AUDIO} {
		if !video.GetCanPublishSource(src) {
			t.Fatalf("a host may not publish %v", src)
		}
	}
	nbf, exp := reg.NotBefore.Time, reg.ExpiresAt.Time
	if nbf.Before(before) || nbf.After(time.Now()) || exp.Sub(nbf) != 5*time.Minute || !exp.Equal(tok.ExpiresAt) {
		t.Fatalf("nbf %v exp %v expiresAt %v", nbf, exp, tok.ExpiresAt)
	}

	// Exactly LiveKit's claims, no more.
	want := map[string]any{
		"iss": key, "sub": j.JoinCall.Participant.ID, "name": "Alice-" + tag,
		"iat": float64(nbf.Unix()), "nbf": float64(nbf.Unix()), "exp": float64(exp.Unix()),
		"video": map[string]any{
			"room": j.JoinCall.Session.ID, "roomJoin": true, "canPublish": true, "canSubscribe": true, "canPublishData": true,
			"canPublishSources": []any{"camera", "microphone", "screen_share", "screen_share_audio"},
		},
	}
	if got := claimsOf(t, tok.Token); !reflect.DeepEqual(got, want) {
		t.Fatalf("claims\n%v\nwant\n%v", got, want)
	}

	// Bob joins the same session: the same node's secret, his own identity.
	var bj sfuJoin
	n.Must(t, env.Token(t, bob), sfuJoinQuery, brooktest.Vars{"id": cid}, &bj)
	bv, err := auth.ParseAPIToken(bj.JoinCall.SFUToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, g, err := bv.Verify(secret); err != nil || g.Identity != bj.JoinCall.Participant.ID || g.Video.Room != j.JoinCall.Session.ID {
		t.Fatalf("bob's token: %+v %v", g, err)
	}

	// A fresh token, for the same participant, with the same grants.
	var r sfuRefresh
	n.Must(t, env.Token(t, bob), refreshQuery, brooktest.Vars{"p": bj.JoinCall.Participant.ID}, &r)
	if r.RefreshSFUToken == nil {
		t.Fatal("no refreshed token")
	}
	rv, err := auth.ParseAPIToken(r.RefreshSFUToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, g, err := rv.Verify(secret); err != nil || g.Identity != bj.JoinCall.Participant.ID || !g.Video.GetCanPublish() {
		t.Fatalf("refreshed token: %+v %v", g, err)
	}
	if got := claimsOf(t, r.RefreshSFUToken.Token); got["name"] != "Bob-"+tag || got["iss"] != key {
		t.Fatalf("refreshed claims %v", got)
	}
}

// An admin who is no member joins with a host's grants.
func TestSFUTokenOfAnAdmin(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = sfuWithKeys[:1] }})
	tag := brooktest.Tag()
	alice, root := "alice-"+tag, "root-"+tag
	env.AddUsers(t, n, alice, root)
	cid := createCall(t, n, alice, "default", "admin-"+tag)
	var j sfuJoin
	n.Must(t, env.AdminToken(t, root), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	v, err := auth.ParseAPIToken(j.JoinCall.SFUToken.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, g, err := v.Verify(sfuWithKeys[0].APISecret); err != nil || !g.Video.GetCanPublish() || !g.Video.GetCanSubscribe() {
		t.Fatalf("admin's token: %+v %v", g, err)
	}
}

// A node without a key and secret signs nothing: sfuToken and
// refreshSFUToken answer null, and the call works as before.
func TestSFUTokenWithoutSecret(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.SFUNodes = []sfu.Node{{ID: "plain", URL: "wss://plain.example"}}
	}})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := createCall(t, n, alice, "default", "plain-"+tag)
	var j sfuJoin
	n.Must(t, env.Token(t, alice), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	if j.JoinCall.SFUToken != nil || j.JoinCall.Participant.ID == "" {
		t.Fatalf("join: %+v", j.JoinCall)
	}
	var r sfuRefresh
	n.Must(t, env.Token(t, alice), refreshQuery, brooktest.Vars{"p": j.JoinCall.Participant.ID}, &r)
	if r.RefreshSFUToken != nil {
		t.Fatalf("refresh: %+v", r.RefreshSFUToken)
	}
}

// refreshSFUToken works only for the caller's own participant still in
// the call; bad input gets a code.
func TestRefreshSFUTokenRefusals(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = sfuWithKeys }})
	tag := brooktest.Tag()
	alice, bob, root := "alice-"+tag, "bob-"+tag, "root-"+tag
	env.AddUsers(t, n, alice, bob, root)
	cid := createCall(t, n, alice, "default", "refuse-"+tag, bob)
	var j sfuJoin
	n.Must(t, env.Token(t, alice), sfuJoinQuery, brooktest.Vars{"id": cid}, &j)
	p := j.JoinCall.Participant.ID
	refresh := func(tok, p string) *brooktest.Response {
		return n.Query(t, tok, refreshQuery, brooktest.Vars{"p": p})
	}
	brooktest.WantCode(t, refresh("", p), api.CodeUnauthenticated)
	brooktest.WantCode(t, refresh(env.Token(t, bob), p), api.CodeForbidden)
	brooktest.WantCode(t, refresh(env.AdminToken(t, root), p), api.CodeForbidden)
	brooktest.WantCode(t, refresh(env.Token(t, alice), "not-a-uuid"), api.CodeBadUserInput)
	brooktest.WantCode(t, refresh(env.Token(t, alice), "00000000-0000-4000-8000-000000000000"), api.CodeNotFound)
	n.Must(t, env.Token(t, alice), `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": p}, nil)
	brooktest.WantCode(t, refresh(env.Token(t, alice), p), api.CodeConflict)
}

// The grants of each role, as a LiveKit SFU reads them: hosts and members
// publish camera, microphone and screen; viewers only watch (canPublish
// and canPublishData false, not absent, which LiveKit would read as
// granted).
func TestSFUGrantsPerRole(t *testing.T) {
	t.Parallel()
	node := sfuWithKeys[0]
	now := time.Now()
	for _, tc := range []struct {
		role    string
		admin   bool
		publish bool
	}{
		{"host", false, true},
		{"member", false, true},
		{"", true, true},
		{"viewer", false, false},
		{"", false, false},
	} {
		g := calls.ParticipantGrants(tc.role, tc.admin)
		tok, err := calls.SignSFUToken(node, "room-1", "who-1", "Who", g, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.ParseAPIToken(tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		_, grants, err := v.Verify(node.APISecret)
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		video := grants.Video
		if video.GetCanPublish() != tc.publish || video.GetCanPublishData() != tc.publish || !video.GetCanSubscribe() {
			t.Errorf("role %q admin %v: publish %v data %v subscribe %v", tc.role, tc.admin,
				video.GetCanPublish(), video.GetCanPublishData(), video.GetCanSubscribe())
		}
		if video.GetCanPublishSource(livekit.TrackSource_CAMERA) != tc.publish || video.GetCanPublishSource(livekit.TrackSource_SCREEN_SHARE) != tc.publish {
			t.Errorf("role %q: sources %v", tc.role, video.CanPublishSources)
		}
		if !tc.publish {
			want := map[string]any{"room": "room-1", "roomJoin": true, "canPublish": false, "canSubscribe": true, "canPublishData": false}
			if got := claimsOf(t, tok.Token)["video"]; !reflect.DeepEqual(got, want) {
				t.Errorf("role %q: video %v, want %v", tc.role, got, want)
			}
		}
	}
	// A token past its exp is refused, after LiveKit's minute of leeway.
	old, err := calls.SignSFUToken(node, "room-1", "who-1", "", calls.ParticipantGrants("host", false), now.Add(-time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.ParseAPIToken(old.Token)
	if _, _, err := v.Verify(node.APISecret); err == nil {
		t.Fatal("an expired token verified")
	}
}
