package feeds_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// Who may read and change what, and the input every operation refuses.

func TestFeedPermissionsAndInput(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob")
	alice, bob := env.Token(t, u["alice"]), env.Token(t, u["bob"])
	admin := env.AdminToken(t, "root")
	add := `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`
	ok := map[string]any{"verb": "post", "object": "x"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{"verb": "post", "object": "x"}
		m[k] = v
		return m
	}
	cases := []struct {
		name, token, query string
		vars               brooktest.Vars
		code               string
	}{
		{"read another's user feed", alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "user:" + u["bob"]}, ""},
		{"read another's timeline", alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "timeline:" + u["bob"]}, "FORBIDDEN"},
		{"read another's notifications", alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "notification:" + u["bob"]}, "FORBIDDEN"},
		{"admin reads a timeline", admin, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "timeline:" + u["bob"]}, ""},
		{"unknown group", alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "news:" + u["bob"]}, "BAD_USER_INPUT"},
		{"not a feed id", alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "bob"}, "BAD_USER_INPUT"},
		{"post to another's feed", alice, add, brooktest.Vars{"f": "user:" + u["bob"], "in": ok}, "FORBIDDEN"},
		{"post to own timeline", alice, add, brooktest.Vars{"f": "timeline:" + u["alice"], "in": ok}, "FORBIDDEN"},
		{"copy to another's timeline", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("to", []string{"timeline:" + u["bob"]})}, "FORBIDDEN"},
		{"empty verb", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("verb", "")}, "BAD_USER_INPUT"},
		{"long verb", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("verb", strings.Repeat("v", 65))}, "BAD_USER_INPUT"},
		{"data a string", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("data", "text")}, "BAD_USER_INPUT"},
		{"too many groups to mark", alice, `mutation($f: ID!, $g: [ID!]!) { markFeedRead(feed: $f, groups: $g) { id } }`,
			brooktest.Vars{"f": "notification:" + u["alice"], "g": slices.Repeat([]string{"x"}, 101)}, "BAD_USER_INPUT"},
		{"long object", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("object", strings.Repeat("o", 1001))}, "BAD_USER_INPUT"},
		{"data not an object", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("data", []int{1})}, "BAD_USER_INPUT"},
		{"too many copies", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("to", slices.Repeat([]string{"notification:" + u["bob"]}, 21))}, "BAD_USER_INPUT"},
		{"bad copy feed", alice, add, brooktest.Vars{"f": "user:" + u["alice"], "in": with("to", []string{"nope"})}, "BAD_USER_INPUT"},
		{"follow from another's timeline", alice, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
			brooktest.Vars{"s": "timeline:" + u["bob"], "t": "user:" + u["alice"]}, "FORBIDDEN"},
		{"follow from a user feed", alice, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
			brooktest.Vars{"s": "user:" + u["alice"], "t": "user:" + u["bob"]}, "BAD_USER_INPUT"},
		{"follow a timeline", alice, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
			brooktest.Vars{"s": "timeline:" + u["alice"], "t": "timeline:" + u["bob"]}, "BAD_USER_INPUT"},
		{"follow a missing user", alice, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
			brooktest.Vars{"s": "timeline:" + u["alice"], "t": "user:nobody-" + brooktest.Tag()}, "NOT_FOUND"},
		{"copy limit too big", alice, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t, activityCopyLimit: 1001) { createdAt } }`,
			brooktest.Vars{"s": "timeline:" + u["alice"], "t": "user:" + u["bob"]}, "BAD_USER_INPUT"},
		{"mark a flat feed", alice, `mutation($f: ID!) { markFeedSeen(feed: $f) { id } }`, brooktest.Vars{"f": "timeline:" + u["alice"]}, "BAD_USER_INPUT"},
		{"mark another's notifications", alice, `mutation($f: ID!) { markFeedSeen(feed: $f) { id } }`, brooktest.Vars{"f": "notification:" + u["bob"]}, "FORBIDDEN"},
		{"bad group id", alice, `mutation($f: ID!) { markFeedRead(feed: $f, groups: ["x"]) { id } }`, brooktest.Vars{"f": "notification:" + u["alice"]}, "BAD_USER_INPUT"},
		{"page too big", alice, `query($f: ID!) { feed(id: $f) { activities(first: 101) { edges { cursor } } } }`, brooktest.Vars{"f": "user:" + u["bob"]}, "BAD_USER_INPUT"},
		{"bad cursor", alice, `query($f: ID!) { feed(id: $f) { activities(after: "!!") { edges { cursor } } } }`, brooktest.Vars{"f": "user:" + u["bob"]}, "BAD_USER_INPUT"},
		{"bad activity id", alice, `query { activity(id: "x") { id } }`, nil, "BAD_USER_INPUT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := n.Query(t, c.token, c.query, c.vars)
			if r.Code() != c.code {
				t.Fatalf("code %q, want %q: %s %v", r.Code(), c.code, r.Data, r.Errors)
			}
		})
	}
	n.WaitForJobs(t)
	if got := feedObjects(t, n, bob, "user:"+u["alice"], 25); len(got) != 0 {
		t.Fatalf("rejected posts wrote %v", got)
	}

	// Activities: their actor changes them; others who may read them only react.
	id := post(t, n, u["alice"], "mine")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!) { updateActivity(id: $id, data: {a: 1}) { id } }`, brooktest.Vars{"id": id}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": id}), "FORBIDDEN")
	var upd struct{ UpdateActivity struct{ Data map[string]any } }
	n.Must(t, alice, `mutation($id: ID!) { updateActivity(id: $id, data: {a: 1}) { data } }`, brooktest.Vars{"id": id}, &upd)
	if upd.UpdateActivity.Data["a"] != float64(1) {
		t.Fatalf("updated data = %v", upd.UpdateActivity.Data)
	}
	// Data that is not an object, and reactions of no kind, change nothing.
	for _, bad := range []any{[]int{1}, "text", 3} {
		brooktest.WantCode(t, n.Query(t, alice, `mutation($id: ID!, $d: JSON!) { updateActivity(id: $id, data: $d) { id } }`,
			brooktest.Vars{"id": id, "d": bad}), "BAD_USER_INPUT")
		brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!, $d: JSON) { addReaction(activity: $id, kind: "like", data: $d) { id } }`,
			brooktest.Vars{"id": id, "d": bad}), "BAD_USER_INPUT")
	}
	for _, kind := range []string{"", strings.Repeat("k", 65)} {
		brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!, $k: String!) { addReaction(activity: $id, kind: $k) { id } }`,
			brooktest.Vars{"id": id, "k": kind}), "BAD_USER_INPUT")
	}
	var after struct {
		Activity struct {
			Data           map[string]any
			ReactionCounts []struct{ Kind string }
		}
	}
	n.Must(t, alice, `query($id: ID!) { activity(id: $id) { data reactionCounts { kind } } }`, brooktest.Vars{"id": id}, &after)
	if fmt.Sprint(after.Activity.Data) != "map[a:1]" || len(after.Activity.ReactionCounts) != 0 {
		t.Fatalf("after refused changes: data %v, reactions %v", after.Activity.Data, after.Activity.ReactionCounts)
	}
	// A notification copy lets its owner read an activity of a feed they could not.
	var note struct{ AddActivity struct{ ID string } }
	n.Must(t, admin, add, brooktest.Vars{"f": "timeline:" + u["alice"], "in": with("to", []string{"notification:" + u["bob"]})}, &note)
	var got struct{ Activity *struct{ ID string } }
	n.Must(t, bob, `query($id: ID!) { activity(id: $id) { id } }`, brooktest.Vars{"id": note.AddActivity.ID}, &got)
	if got.Activity == nil {
		t.Fatal("bob cannot read an activity copied to his notifications")
	}
	n.Must(t, bob, `query($id: ID!) { activity(id: $id) { id } }`, brooktest.Vars{"id": "01900000-0000-7000-8000-000000000000"}, &got)
	if got.Activity != nil {
		t.Fatal("a missing activity is not null")
	}
}

// A feed reached inside another object is read under the same rule as
// feed(id): another user's timeline or notifications, reached as a
// follower of a public feed or as an activity's target, give FORBIDDEN
// for their content; their ids stay visible.
func TestFeedNestedReadsAreChecked(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	follow(t, n, u["alice"], u["bob"], 100)
	post(t, n, u["bob"], "for followers")
	var sent struct{ AddActivity struct{ ID string } }
	n.Must(t, env.Token(t, u["carol"]), `mutation($f: ID!, $to: [ID!]) { addActivity(feed: $f, input: {verb: "post", object: "hi", to: $to}) { id } }`,
		brooktest.Vars{"f": "user:" + u["carol"], "to": []string{"notification:" + u["alice"]}}, &sent)
	n.WaitForJobs(t)
	followers := `query($f: ID!) { feed(id: $f) { followers { edges { node { id %s } } } } }`
	target := `query($a: ID!) { activity(id: $a) { to { id %s } } }`
	carol, alice := env.Token(t, u["carol"]), env.Token(t, u["alice"])
	for _, c := range []struct {
		name, token, query string
		vars               brooktest.Vars
		code               string
	}{
		{"ids of followers", carol, fmt.Sprintf(followers, ""), brooktest.Vars{"f": "user:" + u["bob"]}, ""},
		{"a follower's timeline", carol, fmt.Sprintf(followers, "activities { edges { node { id } } }"), brooktest.Vars{"f": "user:" + u["bob"]}, "FORBIDDEN"},
		{"a follower's groups", carol, fmt.Sprintf(followers, "groups { edges { node { id } } }"), brooktest.Vars{"f": "user:" + u["bob"]}, "FORBIDDEN"},
		{"a follower's follows", carol, fmt.Sprintf(followers, "following { edges { node { id } } }"), brooktest.Vars{"f": "user:" + u["bob"]}, "FORBIDDEN"},
		{"the owner, the same way", alice, fmt.Sprintf(followers, "activities { edges { node { id } } }"), brooktest.Vars{"f": "user:" + u["bob"]}, ""},
		{"ids of targets", carol, fmt.Sprintf(target, ""), brooktest.Vars{"a": sent.AddActivity.ID}, ""},
		{"a target's notifications", carol, fmt.Sprintf(target, "activities { edges { node { id } } }"), brooktest.Vars{"a": sent.AddActivity.ID}, "FORBIDDEN"},
		{"a target's unseen count", carol, fmt.Sprintf(target, "unseenCount"), brooktest.Vars{"a": sent.AddActivity.ID}, "FORBIDDEN"},
		{"a target's unread count", carol, fmt.Sprintf(target, "unreadCount"), brooktest.Vars{"a": sent.AddActivity.ID}, "FORBIDDEN"},
	} {
		resp := n.Query(t, c.token, c.query, c.vars)
		if c.code == "" {
			if len(resp.Errors) > 0 {
				t.Fatalf("%s: %+v", c.name, resp.Errors)
			}
			continue
		}
		brooktest.WantCode(t, resp, c.code)
	}
}
