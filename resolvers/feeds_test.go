package resolvers_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// feedUsers creates users named tag-name and returns their ids by name.
func feedUsers(t *testing.T, n *brooktest.Node, tag string, names ...string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	var all []string
	for _, name := range names {
		ids[name] = tag + "-" + name
		all = append(all, ids[name])
	}
	callUsers(t, n, all...)
	return ids
}

type activityNode struct {
	ID, Verb, Object string
	ForeignID        *string
	Actor            struct{ ID string }
}

// post adds an activity by user to user:<user> and returns its id.
func post(t *testing.T, n *brooktest.Node, user, object string) string {
	t.Helper()
	var out struct{ AddActivity activityNode }
	n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id verb object } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": "post", "object": object}}, &out)
	return out.AddActivity.ID
}

func follow(t *testing.T, n *brooktest.Node, user, target string, limit int) {
	t.Helper()
	n.Must(t, env.Token(t, user), `mutation($s: ID!, $t: ID!, $l: Int) { follow(source: $s, target: $t, activityCopyLimit: $l) { createdAt } }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target, "l": limit}, nil)
}

func unfollow(t *testing.T, n *brooktest.Node, user, target string, keep bool) bool {
	t.Helper()
	var out struct{ Unfollow bool }
	n.Must(t, env.Token(t, user), `mutation($s: ID!, $t: ID!, $k: Boolean) { unfollow(source: $s, target: $t, keepHistory: $k) }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target, "k": keep}, &out)
	return out.Unfollow
}

// feedObjects reads a whole feed, page by page, as "actor:object" strings.
func feedObjects(t *testing.T, n *brooktest.Node, token, feed string, pageSize int) []string {
	t.Helper()
	var out []string
	var after *string
	for {
		var page struct {
			Feed struct {
				Activities struct {
					Edges    []struct{ Node activityNode }
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		n.Must(t, token, `query($f: ID!, $n: Int, $a: String) { feed(id: $f) { activities(first: $n, after: $a) {
			edges { node { id object actor { id } } } pageInfo { hasNextPage endCursor } } } }`,
			brooktest.Vars{"f": feed, "n": pageSize, "a": after}, &page)
		for _, e := range page.Feed.Activities.Edges {
			out = append(out, e.Node.Actor.ID+":"+e.Node.Object)
		}
		if !page.Feed.Activities.PageInfo.HasNextPage {
			return out
		}
		after = page.Feed.Activities.PageInfo.EndCursor
	}
}

func TestFeedPostFollowAndTimeline(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
	for i := 1; i <= 3; i++ {
		post(t, n, u["bob"], fmt.Sprintf("old%d", i))
	}
	follow(t, n, u["alice"], u["bob"], 2) // backfills the two newest
	follow(t, n, u["carol"], u["bob"], 0) // backfills nothing
	n.WaitForJobs(t)
	got := feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 25)
	want := []string{u["bob"] + ":old3", u["bob"] + ":old2"}
	if !slices.Equal(got, want) {
		t.Fatalf("backfilled timeline = %v, want %v", got, want)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "timeline:"+u["carol"], 25); len(got) != 0 {
		t.Fatalf("carol's timeline = %v, want empty (activityCopyLimit 0)", got)
	}

	post(t, n, u["bob"], "new1")
	post(t, n, u["carol"], "c1")
	post(t, n, u["bob"], "new2")
	n.WaitForJobs(t)
	got = feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 2) // three pages
	want = []string{u["bob"] + ":new2", u["bob"] + ":new1", u["bob"] + ":old3", u["bob"] + ":old2"}
	if !slices.Equal(got, want) {
		t.Fatalf("timeline = %v, want %v", got, want)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "user:"+u["bob"], 25); len(got) != 5 {
		t.Fatalf("user feed has %d activities, want 5", len(got))
	}

	var counts struct {
		Bob struct {
			FollowerCount, FollowingCount int
			Followers                     struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		Alice struct {
			FollowingCount int
			Following      struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	n.Must(t, env.Token(t, u["alice"]), `query($b: ID!, $a: ID!) {
		bob: feed(id: $b) { followerCount followingCount followers { edges { node { id } } } }
		alice: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"b": "user:" + u["bob"], "a": "timeline:" + u["alice"]}, &counts)
	if counts.Bob.FollowerCount != 2 || counts.Bob.FollowingCount != 0 || len(counts.Bob.Followers.Edges) != 2 ||
		counts.Alice.FollowingCount != 1 || counts.Alice.Following.Edges[0].Node.ID != "user:"+u["bob"] {
		t.Fatalf("follow counts: %+v", counts)
	}
	// Following again changes nothing.
	follow(t, n, u["alice"], u["bob"], 100)
	n.WaitForJobs(t)
	n.Must(t, env.Token(t, u["alice"]), `query($b: ID!, $a: ID!) {
		bob: feed(id: $b) { followerCount followingCount followers { edges { node { id } } } }
		alice: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"b": "user:" + u["bob"], "a": "timeline:" + u["alice"]}, &counts)
	if counts.Bob.FollowerCount != 2 {
		t.Fatalf("follower count after a repeated follow = %d, want 2", counts.Bob.FollowerCount)
	}
}

func TestFeedIdempotentPost(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice")
	tok := env.Token(t, u["alice"])
	in := map[string]any{"verb": "post", "object": "photo:1", "foreignId": "photo-1", "time": "2026-11-20T10:00:00.123456Z"}
	ids := map[string]bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct{ AddActivity activityNode }
			n.Must(t, tok, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id foreignId } }`,
				brooktest.Vars{"f": "user:" + u["alice"], "in": in}, &out)
			mu.Lock()
			ids[out.AddActivity.ID] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("8 identical posts made %d activities", len(ids))
	}
	in["time"] = "2026-11-20T10:00:01Z" // another time is another activity
	n.Must(t, tok, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + u["alice"], "in": in}, nil)
	n.WaitForJobs(t)
	if got := feedObjects(t, n, tok, "user:"+u["alice"], 25); len(got) != 2 {
		t.Fatalf("feed has %d activities, want 2", len(got))
	}
	var jobs int
	if err := n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM activities WHERE actor_id = $1`, u["alice"]).Scan(&jobs); err != nil || jobs != 2 {
		t.Fatalf("activities rows = %d (%v), want 2", jobs, err)
	}
}

func TestFeedPermissionsAndInput(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob")
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
			brooktest.Vars{"s": "timeline:" + u["alice"], "t": "user:nobody-" + callTag()}, "NOT_FOUND"},
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
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
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

// A removed activity whose entries are still waiting for their job
// neither shortens a page nor ends the feed there.
func TestFeedPagesSkipARemovedActivity(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, callTag(), "bob")
	var ids []string
	for i := 1; i <= 5; i++ {
		ids = append(ids, post(t, n, u["bob"], fmt.Sprint("p", i)))
	}
	n.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": ids[3]}, nil)
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		var out struct {
			Feed struct {
				Activities struct {
					Edges    []struct{ Node struct{ Object string } }
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		vars := brooktest.Vars{"f": "user:" + u["bob"]}
		if after != "" {
			vars["a"] = after
		}
		n.Must(t, env.Token(t, u["bob"]), `query($f: ID!, $a: String) { feed(id: $f) { activities(first: 2, after: $a) {
			edges { node { object } } pageInfo { hasNextPage endCursor } } } }`, vars, &out)
		a := out.Feed.Activities
		for _, e := range a.Edges {
			got = append(got, e.Node.Object)
		}
		if pages == 0 && len(a.Edges) != 2 {
			t.Fatalf("first page %+v, want 2 activities", a)
		}
		if !a.PageInfo.HasNextPage || pages > 5 {
			break
		}
		after = a.PageInfo.EndCursor
	}
	if fmt.Sprint(got) != "[p5 p3 p2 p1]" {
		t.Fatalf("pages gave %v", got)
	}
}

// A fan-out page still writing when its activity is removed leaves
// nothing behind: the removal waits for the page, and the removal's job,
// run after it, deletes what the page wrote. (Without the wait, the job
// could run first, find nothing, and the page commit its rows after.)
func TestFeedRemovalWaitsForAFanoutPage(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob")
	follow(t, n, u["alice"], u["bob"], 100)
	id, err := uuid.Parse(post(t, n, u["bob"], "short-lived"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The post's own fan-out (any node's workers take jobs) is undone, so
	// that the page below writes the timeline's entry.
	n.WaitForJobs(t)
	if _, err := n.Store.DB().Exec(ctx, `DELETE FROM feed_entries WHERE activity_id = $1 AND feed_id = $2`, id, "timeline:"+u["alice"]); err != nil {
		t.Fatal(err)
	}
	entries := func() int {
		var c int
		if err := n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE activity_id = $1 AND feed_id <> $2`, id, "user:"+u["bob"]).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	runRemoveJob := func() {
		tx, err := n.Store.DB().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := n.Store.WithTx(tx).RemoveEntries(ctx, store.RemoveJob{Activity: id}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	page, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = page.Rollback(ctx) }()
	if feeds, err := n.Store.WithTx(page).FanoutPage(ctx, store.FanoutJob{Activity: id, Origin: "user:" + u["bob"]}); err != nil || len(feeds) != 1 {
		t.Fatalf("fan-out page: %v %v", feeds, err)
	}
	removed := make(chan error, 1)
	go func() { removed <- n.Store.RemoveActivity(ctx, id) }()
	select {
	case err := <-removed:
		// The removal did not wait: its job runs before the page commits.
		if err != nil {
			t.Fatal(err)
		}
		runRemoveJob()
		if err := page.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("the removal did not wait for the fan-out page: %d entries left", entries())
	case <-time.After(300 * time.Millisecond):
	}
	if err := page.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	runRemoveJob()
	if c := entries(); c != 0 {
		t.Fatalf("%d entries of the removed activity left", c)
	}
}

func TestFeedRemoveAndUnfollow(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
	follow(t, n, u["alice"], u["bob"], 100)
	follow(t, n, u["carol"], u["bob"], 100)
	a1 := post(t, n, u["bob"], "one")
	post(t, n, u["bob"], "two")
	n.WaitForJobs(t)

	bob := env.Token(t, u["bob"])
	n.Must(t, bob, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": a1}, nil)
	brooktest.WantCode(t, n.Query(t, bob, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": a1}), "NOT_FOUND")
	n.WaitForJobs(t)
	for _, f := range []struct{ user, feed string }{{u["alice"], "timeline:" + u["alice"]}, {u["carol"], "timeline:" + u["carol"]}, {u["bob"], "user:" + u["bob"]}} {
		if got := feedObjects(t, n, env.Token(t, f.user), f.feed, 25); !slices.Equal(got, []string{u["bob"] + ":two"}) {
			t.Fatalf("%s after removal = %v", f.feed, got)
		}
	}
	var entries int
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM feed_entries WHERE activity_id = $1`, a1).Scan(&entries)
	if entries != 0 {
		t.Fatalf("%d entries of a removed activity remain", entries)
	}

	if !unfollow(t, n, u["alice"], u["bob"], false) {
		t.Fatal("unfollow reported no follow")
	}
	if unfollow(t, n, u["alice"], u["bob"], false) {
		t.Fatal("a second unfollow reported a follow")
	}
	unfollow(t, n, u["carol"], u["bob"], true)
	post(t, n, u["bob"], "three")
	n.WaitForJobs(t)
	if got := feedObjects(t, n, env.Token(t, u["alice"]), "timeline:"+u["alice"], 25); len(got) != 0 {
		t.Fatalf("alice's timeline after unfollow = %v, want empty", got)
	}
	if got := feedObjects(t, n, env.Token(t, u["carol"]), "timeline:"+u["carol"], 25); !slices.Equal(got, []string{u["bob"] + ":two"}) {
		t.Fatalf("carol's timeline after unfollow with keepHistory = %v", got)
	}
}

func TestFeedReactions(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
	id := post(t, n, u["alice"], "photo")
	react := `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k, data: {text: "hi"}) { id kind user { id } activity { id } } }`
	type reaction struct {
		ID, Kind string
		User     struct{ ID string }
	}
	var r1, r2 struct{ AddReaction reaction }
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": id, "k": "like"}, &r1)
	n.Must(t, env.Token(t, u["bob"]), react, brooktest.Vars{"a": id, "k": "like"}, &r2)
	if r1.AddReaction.ID != r2.AddReaction.ID {
		t.Fatal("the same reaction twice made two")
	}
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "like"}, nil)
	n.Must(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "comment"}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": id, "k": "no spaces"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), react, brooktest.Vars{"a": "01900000-0000-7000-8000-000000000000", "k": "like"}), "NOT_FOUND")

	var got struct {
		Activity struct {
			ReactionCounts []struct {
				Kind  string
				Count int
			}
			OwnReactions    []reaction
			LatestReactions []reaction
			Likes           []reaction
		}
	}
	q := `query($a: ID!) { activity(id: $a) { reactionCounts { kind count } ownReactions { id kind user { id } }
		latestReactions { id kind user { id } } likes: latestReactions(kind: "like", first: 1) { id kind user { id } } } }`
	n.Must(t, env.Token(t, u["carol"]), q, brooktest.Vars{"a": id}, &got)
	a := got.Activity
	if fmt.Sprint(a.ReactionCounts) != "[{comment 1} {like 2}]" || len(a.OwnReactions) != 2 || len(a.LatestReactions) != 3 ||
		len(a.Likes) != 1 || a.Likes[0].User.ID != u["carol"] {
		t.Fatalf("reactions: %+v", a)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r1.AddReaction.ID}), "FORBIDDEN")
	var rm struct{ RemoveReaction bool }
	n.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": r1.AddReaction.ID}, &rm)
	if !rm.RemoveReaction {
		t.Fatal("removeReaction said the reaction did not exist")
	}
	n.Must(t, env.Token(t, u["bob"]), q, brooktest.Vars{"a": id}, &got)
	if fmt.Sprint(got.Activity.ReactionCounts) != "[{comment 1} {like 1}]" || len(got.Activity.OwnReactions) != 0 {
		t.Fatalf("after removal: %+v", got.Activity)
	}
}

type groupNode struct {
	ID                        string
	Verb                      string
	ActivityCount, ActorCount int
	IsSeen, IsRead            bool
	Actors                    []struct{ ID string }
	Activities                []struct{ Object string }
}

func feedGroups(t *testing.T, n *brooktest.Node, token, feed string) (groups []groupNode, unseen, unread int) {
	t.Helper()
	var out struct {
		Feed struct {
			UnseenCount, UnreadCount int
			Groups                   struct{ Edges []struct{ Node groupNode } }
		}
	}
	n.Must(t, token, `query($f: ID!) { feed(id: $f) { unseenCount unreadCount groups { edges { node {
		id verb activityCount actorCount isSeen isRead actors(first: 10) { id } activities { object } } } } } }`,
		brooktest.Vars{"f": feed}, &out)
	for _, e := range out.Feed.Groups.Edges {
		groups = append(groups, e.Node)
	}
	return groups, out.Feed.UnseenCount, out.Feed.UnreadCount
}

func TestFeedAggregationAndSeenRead(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
	mention := func(user, verb, object string) {
		n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": verb, "object": object, "to": []string{"notification:" + u["bob"]}}}, nil)
	}
	mention(u["alice"], "mention", "m1")
	mention(u["carol"], "like", "l1")
	mention(u["alice"], "mention", "m2")
	mention(u["carol"], "mention", "m3")
	n.WaitForJobs(t)
	bob := env.Token(t, u["bob"])
	feed := "notification:" + u["bob"]
	groups, unseen, unread := feedGroups(t, n, bob, feed)
	day := time.Now().UTC().Format(time.DateOnly)
	if len(groups) != 2 || unseen != 2 || unread != 2 {
		t.Fatalf("groups %+v unseen %d unread %d", groups, unseen, unread)
	}
	m := groups[0]
	if m.ID != "mention/"+day || m.ActivityCount != 3 || m.ActorCount != 2 || len(m.Actors) != 2 || m.Actors[0].ID != u["carol"] ||
		fmt.Sprint(m.Activities) != "[{m3} {m2} {m1}]" || m.IsSeen || m.IsRead {
		t.Fatalf("mention group = %+v", m)
	}
	if groups[1].ID != "like/"+day || groups[1].ActivityCount != 1 {
		t.Fatalf("like group = %+v", groups[1])
	}

	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{"like/" + day}}, nil)
	groups, unseen, unread = feedGroups(t, n, bob, feed)
	if unseen != 1 || unread != 2 || !groups[1].IsSeen || groups[0].IsSeen {
		t.Fatalf("after marking like seen: unseen %d unread %d %+v", unseen, unread, groups)
	}
	// An empty list of groups marks nothing, as a literal and as a variable.
	n.Must(t, bob, `mutation($f: ID!) { markFeedRead(feed: $f, groups: []) { unreadCount } }`, brooktest.Vars{"f": feed}, nil)
	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`, brooktest.Vars{"f": feed, "g": []string{}}, nil)
	if _, unseen, unread = feedGroups(t, n, bob, feed); unseen != 1 || unread != 2 {
		t.Fatalf("after marking no groups: unseen %d unread %d", unseen, unread)
	}
	n.Must(t, bob, `mutation($f: ID!) { markFeedRead(feed: $f) { unreadCount } }`, brooktest.Vars{"f": feed}, nil)
	if _, unseen, unread = feedGroups(t, n, bob, feed); unseen != 0 || unread != 0 {
		t.Fatalf("after marking all read: unseen %d unread %d", unseen, unread)
	}
	// A new activity in a seen group makes it unseen again.
	mention(u["alice"], "like", "l2")
	n.WaitForJobs(t)
	groups, unseen, unread = feedGroups(t, n, bob, feed)
	if unseen != 1 || unread != 1 || groups[0].ID != "like/"+day || groups[0].IsSeen || groups[0].ActivityCount != 2 {
		t.Fatalf("after a new like: unseen %d unread %d %+v", unseen, unread, groups)
	}

	// timeline_aggregated groups what the timeline shows.
	follow(t, n, u["bob"], u["alice"], 100)
	follow(t, n, u["bob"], u["carol"], 100)
	n.WaitForJobs(t)
	groups, _, _ = feedGroups(t, n, bob, "timeline_aggregated:"+u["bob"])
	if len(groups) != 2 || groups[0].ID != "like/"+day || groups[0].ActivityCount != 2 || groups[1].ActivityCount != 3 {
		t.Fatalf("timeline_aggregated groups = %+v", groups)
	}
}

// Copies and groups at their edges: a verb holding "/" still names a
// group that can be marked; a copy to a timeline_aggregated feed (which
// only shows its timeline) or to a feed of no user is refused with
// nothing written; timeline_aggregated counts its timeline's follows.
func TestFeedCopiesAndGroupsAtTheirEdges(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	u := feedUsers(t, n, tag, "alice", "bob")
	add := func(to []string, verb string) *brooktest.Response {
		return n.Query(t, env.Token(t, u["alice"]), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": "user:" + u["alice"], "in": map[string]any{"verb": verb, "object": "photo:1", "to": to}})
	}
	if r := add([]string{"notification:" + u["bob"]}, "photo/upload"); len(r.Errors) > 0 {
		t.Fatalf("post: %+v", r.Errors)
	}
	n.WaitForJobs(t)
	bob := env.Token(t, u["bob"])
	feed := "notification:" + u["bob"]
	groups, unseen, _ := feedGroups(t, n, bob, feed)
	day := time.Now().UTC().Format(time.DateOnly)
	if len(groups) != 1 || groups[0].ID != "photo/upload/"+day || unseen != 1 {
		t.Fatalf("groups %+v, unseen %d", groups, unseen)
	}
	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{groups[0].ID}}, nil)
	if groups, unseen, _ = feedGroups(t, n, bob, feed); unseen != 0 || !groups[0].IsSeen {
		t.Fatalf("after marking %s seen: unseen %d, %+v", "photo/upload/"+day, unseen, groups)
	}
	brooktest.WantCode(t, n.Query(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{"photo/upload"}}), "BAD_USER_INPUT")

	before := n.Count(t, `SELECT count(*) FROM activities WHERE actor_id = $1`, u["alice"])
	brooktest.WantCode(t, add([]string{"timeline_aggregated:" + u["alice"]}, "post"), "BAD_USER_INPUT")
	brooktest.WantCode(t, add([]string{"notification:" + u["bob"], "notification:ghost-" + tag}, "post"), "NOT_FOUND")
	if after := n.Count(t, `SELECT count(*) FROM activities WHERE actor_id = $1`, u["alice"]); after != before {
		t.Fatalf("refused copies wrote %d activities", after-before)
	}

	follow(t, n, u["bob"], u["alice"], 10)
	var counts struct {
		Timeline, Aggregated struct {
			FollowingCount int
			Following      struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	n.Must(t, bob, `query($t: ID!, $a: ID!) { timeline: feed(id: $t) { followingCount following { edges { node { id } } } }
		aggregated: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"t": "timeline:" + u["bob"], "a": "timeline_aggregated:" + u["bob"]}, &counts)
	if counts.Timeline.FollowingCount != 1 || counts.Aggregated.FollowingCount != 1 || len(counts.Aggregated.Following.Edges) != 1 {
		t.Fatalf("following: %+v", counts)
	}
}

// Paging through groups shows each group once, whole: a group whose
// activities straddle a page's cursor is not shown again with its older
// ones.
func TestFeedGroupPages(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "alice", "bob", "carol")
	mention := func(user, verb, object string) {
		n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": verb, "object": object, "to": []string{"notification:" + u["bob"]}}}, nil)
	}
	mention(u["alice"], "mention", "a1")
	mention(u["carol"], "like", "b1")
	mention(u["alice"], "mention", "a2")
	n.WaitForJobs(t)
	var seen []string
	after := ""
	for page := 0; page < 5; page++ {
		var out struct {
			Feed struct {
				Groups struct {
					Edges []struct {
						Node struct {
							Verb          string
							ActivityCount int
						}
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		vars := brooktest.Vars{"f": "notification:" + u["bob"]}
		if after != "" {
			vars["after"] = after
		}
		n.Must(t, env.Token(t, u["bob"]), `query($f: ID!, $after: String) { feed(id: $f) { groups(first: 1, after: $after) {
			edges { node { verb activityCount } } pageInfo { hasNextPage endCursor } } } }`, vars, &out)
		for _, e := range out.Feed.Groups.Edges {
			seen = append(seen, fmt.Sprintf("%s(%d)", e.Node.Verb, e.Node.ActivityCount))
		}
		if !out.Feed.Groups.PageInfo.HasNextPage {
			break
		}
		after = out.Feed.Groups.PageInfo.EndCursor
	}
	if fmt.Sprint(seen) != "[mention(2) like(1)]" {
		t.Fatalf("groups page by page: %v", seen)
	}
}

// Unfollowing with keepHistory keeps what the timeline showed, whether
// the actor was pushed to it or merged at read time (above the pull
// threshold): the same story reads the same in both worlds.
func TestFeedUnfollowKeepsHistoryOfAPulledActor(t *testing.T) {
	t.Parallel()
	var timelines [][]string
	for _, threshold := range []int{1000, 1} {
		n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = threshold }})
		u := feedUsers(t, n, callTag(), "reader", "star", "fan")
		follow(t, n, u["fan"], u["star"], 10)
		follow(t, n, u["reader"], u["star"], 10) // two followers: above a threshold of 1
		post(t, n, u["star"], "s1")
		post(t, n, u["star"], "s2")
		n.WaitForJobs(t)
		reader := env.Token(t, u["reader"])
		before := feedObjects(t, n, reader, "timeline:"+u["reader"], 10)
		if !unfollow(t, n, u["reader"], u["star"], true) {
			t.Fatal("unfollow returned false")
		}
		n.WaitForJobs(t)
		after := feedObjects(t, n, reader, "timeline:"+u["reader"], 10)
		if len(before) != 2 || fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("threshold %d: timeline %v before the unfollow, %v after", threshold, before, after)
		}
		timelines = append(timelines, after)
	}
	for i := range timelines[0] {
		// Objects match; the actor ids differ by tag between the worlds.
		_, a, _ := strings.Cut(timelines[0][i], ":")
		_, b, _ := strings.Cut(timelines[1][i], ":")
		if a != b {
			t.Fatalf("push world %v, pull world %v", timelines[0], timelines[1])
		}
	}
}

// TestFeedPushPullEquivalence runs one story in two worlds: one where every
// actor is fanned out on write and one where the popular actor crosses the
// pull threshold (both ways). The timelines must read the same.
func TestFeedPushPullEquivalence(t *testing.T) {
	push := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = 1000 }})
	pull := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = 3 }})
	type world struct {
		n *brooktest.Node
		u map[string]string
	}
	tag := callTag()
	worlds := []world{
		{push, feedUsers(t, push, tag+"push", "reader", "star", "small", "f1", "f2", "f3", "f4")},
		{pull, feedUsers(t, pull, tag+"pull", "reader", "star", "small", "f1", "f2", "f3", "f4")},
	}
	step := func(fn func(w world)) {
		for _, w := range worlds {
			fn(w)
			w.n.WaitForJobs(t)
		}
	}
	// read returns the reader's timeline with the world's tag taken out.
	read := func(w world) []string {
		got := feedObjects(t, w.n, env.Token(t, w.u["reader"]), "timeline:"+w.u["reader"], 3)
		for i := range got {
			got[i] = strings.Replace(strings.Replace(got[i], tag+"push-", "", 1), tag+"pull-", "", 1)
		}
		return got
	}
	same := func(when string) {
		t.Helper()
		a, b := read(worlds[0]), read(worlds[1])
		if !slices.Equal(a, b) {
			t.Fatalf("%s: push world reads %v, pull world reads %v", when, a, b)
		}
		t.Logf("%s: %d activities, same in both worlds", when, len(a))
	}
	pulled := func(w world) bool {
		var since *string
		_ = w.n.Store.DB().QueryRow(context.Background(), `SELECT pulled_since::text FROM feeds WHERE id = $1`, "user:"+w.u["star"]).Scan(&since)
		return since != nil
	}

	step(func(w world) {
		for i := 0; i < 4; i++ {
			post(t, w.n, w.u["star"], fmt.Sprintf("s%d", i))
		}
		post(t, w.n, w.u["small"], "x0")
		follow(t, w.n, w.u["reader"], w.u["star"], 2)
		follow(t, w.n, w.u["reader"], w.u["small"], 100)
	})
	same("below the threshold")
	step(func(w world) {
		for _, f := range []string{"f1", "f2", "f3"} { // the star now has 4 followers
			follow(t, w.n, w.u[f], w.u["star"], 0)
		}
	})
	if !pulled(worlds[1]) || pulled(worlds[0]) {
		t.Fatal("the star did not cross the pull threshold in the pull world only")
	}
	step(func(w world) {
		post(t, w.n, w.u["star"], "s4")
		post(t, w.n, w.u["small"], "x1")
		post(t, w.n, w.u["star"], "s5")
	})
	same("above the threshold")
	var pushed int
	_ = pull.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM feed_entries e JOIN activities a ON a.id = e.activity_id
		WHERE e.feed_id = $1 AND a.object IN ('s4', 's5')`, "timeline:"+worlds[1].u["reader"]).Scan(&pushed)
	if pushed != 0 {
		t.Fatalf("%d activities of a pulled actor were written into the timeline", pushed)
	}
	step(func(w world) {
		unfollow(t, w.n, w.u["f1"], w.u["star"], false) // back to 3 followers
	})
	if pulled(worlds[1]) {
		t.Fatal("the star is still pulled after falling back to the threshold")
	}
	step(func(w world) {
		post(t, w.n, w.u["star"], "s6")
		follow(t, w.n, w.u["f4"], w.u["star"], 0) // and above again
		follow(t, w.n, w.u["f1"], w.u["star"], 0)
		post(t, w.n, w.u["star"], "s7")
	})
	same("back below and above again")
	step(func(w world) {
		unfollow(t, w.n, w.u["reader"], w.u["star"], false)
	})
	same("after unfollowing the star")
}

// TestFeedWorkerKilledMidJob cuts the worker's database connection in the
// middle of a fan-out; a fresh worker then finishes it: every follower has
// the activity exactly once.
func TestFeedWorkerKilledMidJob(t *testing.T) {
	// A threshold above the follower count: this actor is fanned out.
	big := func(o *node.Options) { o.FeedPullThreshold = 1_000_000 }
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: big})
	tag := callTag()
	star := tag + "-star"
	callUsers(t, n, star)
	const followers = 25_000 // three pages
	ctx := context.Background()
	if _, err := n.Store.DB().Exec(ctx, `INSERT INTO follows (source, target, pull_from)
		SELECT 'timeline:' || $1 || '-f' || g, 'user:' || $2, '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $3) g`,
		tag, star, followers); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Store.DB().Exec(ctx, `INSERT INTO feeds (id, follower_count) VALUES ($1, $2)`, "user:"+star, followers); err != nil {
		t.Fatal(err)
	}
	id := post(t, n, star, "big news")

	// Hold the timeline row of the last follower, so the worker blocks in the
	// middle of the fan-out (earlier pages committed, the last one writing)
	// until the test cuts its connection.
	hold, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT max(source), $1, $2 FROM follows WHERE target = $2`, id, "user:"+star); err != nil {
		t.Fatal(err)
	}
	// A node of its own whose one worker claims one job at a time, on
	// connections the test can find by name and kill.
	victim := env.StartNode(t, brooktest.NodeOptions{Workers: 1, Runner: func(o *workers.Options) { o.BatchSize = 1 },
		Node: func(o *node.Options) {
			big(o)
			u, err := url.Parse(o.DatabaseURL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("application_name", tag+"victim")
			u.RawQuery = q.Encode()
			o.DatabaseURL = u.String()
		}})
	brooktest.Eventually(t, "the worker is blocked in the middle of the fan-out", func() bool {
		var busy int
		_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1
			AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO feed_entries%'`, tag+"victim").Scan(&busy)
		return busy > 0
	})
	var written, killed int
	_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE activity_id = $1`, id).Scan(&written)
	if err := n.Store.DB().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		tag+"victim").Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("killed %d worker connections: %v", killed, err)
	}
	_ = hold.Rollback(ctx)
	t.Logf("worker killed with %d of %d timeline rows committed", written-1, followers)
	if written-1 < 10_000 || written-1 >= followers {
		t.Fatalf("the worker was killed with %d rows committed; want it mid-way", written-1)
	}
	victim.Stop()

	n2 := env.StartNode(t, brooktest.NodeOptions{Node: big})
	n2.WaitForJobs(t)
	brooktest.Eventually(t, "jobs done", func() bool {
		var left int
		_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE payload->>'activity' = $1`, id).Scan(&left)
		return left == 0
	})
	var rows, distinct int
	if err := n.Store.DB().QueryRow(ctx, `SELECT count(*), count(DISTINCT feed_id) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`,
		id).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != followers || distinct != followers {
		t.Fatalf("after the crash and a retry: %d timeline rows (%d distinct feeds), want %d", rows, distinct, followers)
	}
	t.Logf("fan-out to %d followers survived a killed worker: %d rows, no duplicates", followers, rows)
}

func TestFeedUpdatedAcrossNodes(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, a, callTag(), "alice", "bob")
	follow(t, a, u["alice"], u["bob"], 100)
	a.WaitForJobs(t)

	ws := b.MustDial(t, env.Token(t, u["alice"]))
	sub := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { feed { id } added { id object actor { id } } removed } }`,
		brooktest.Vars{"f": "timeline:" + u["alice"]})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := b.Bus.Stats(); return s > 0 })
	id := post(t, a, u["bob"], "hello")
	type update struct {
		FeedUpdated struct {
			Feed    struct{ ID string }
			Added   []activityNode
			Removed []string
		}
	}
	var got update
	sub.NextData(&got)
	if got.FeedUpdated.Feed.ID != "timeline:"+u["alice"] || len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != id ||
		got.FeedUpdated.Added[0].Actor.ID != u["bob"] {
		t.Fatalf("update = %+v", got)
	}
	a.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": id}, nil)
	sub.NextData(&got)
	if !slices.Equal(got.FeedUpdated.Removed, []string{id}) {
		t.Fatalf("removal update = %+v", got)
	}
	sub.Complete()

	// Someone else's timeline is not theirs to watch.
	other := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { removed } }`, brooktest.Vars{"f": "timeline:" + u["bob"]})
	m := other.Next()
	if !strings.Contains(string(m.Payload), "FORBIDDEN") {
		t.Fatalf("subscribing to another's timeline: %s %s", m.Type, m.Payload)
	}
}

// TestFeedTimelineStatements checks that a timeline page costs the same
// number of SQL statements whatever its size: one range scan plus one
// batch per loader.
func TestFeedTimelineStatements(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, callTag(), "reader", "a", "b", "c")
	for _, who := range []string{"a", "b", "c"} {
		follow(t, n, u["reader"], u[who], 0)
	}
	for i := 0; i < 10; i++ {
		for _, who := range []string{"a", "b", "c"} {
			id := post(t, n, u[who], fmt.Sprintf("%s%d", who, i))
			n.Must(t, env.Token(t, u["reader"]), `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`, brooktest.Vars{"a": id}, nil)
		}
	}
	n.WaitForJobs(t)
	// Read through a node without workers: their polling would count too.
	reader := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	q := `query($f: ID!, $n: Int) { feed(id: $f) { activities(first: $n) { edges { node { id verb actor { name } reactionCounts { kind count } ownReactions { kind } } } } } }`
	count := func(size int) int64 {
		reader.Must(t, env.Token(t, u["reader"]), `{ me { id } }`, nil, nil) // warms the sign-in
		before := reader.Store.Statements()
		var out struct {
			Feed struct{ Activities struct{ Edges []struct{} } }
		}
		reader.Must(t, env.Token(t, u["reader"]), q, brooktest.Vars{"f": "timeline:" + u["reader"], "n": size}, &out)
		if len(out.Feed.Activities.Edges) != size {
			t.Fatalf("page of %d has %d activities", size, len(out.Feed.Activities.Edges))
		}
		return reader.Store.Statements() - before
	}
	small, large := count(5), count(25)
	t.Logf("timeline page: %d statements for 5 activities, %d for 25", small, large)
	if small != large {
		t.Fatalf("statements grow with the page: %d for 5, %d for 25", small, large)
	}
}

// TestFeedFanoutMeetsBackfill checks the fan-out's fast path: when a
// follower's backfill already wrote the activity, the page still writes
// every other follower, once.
func TestFeedFanoutMeetsBackfill(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, callTag(), "star", "a", "b", "c")
	for _, who := range []string{"a", "b", "c"} {
		follow(t, n, u[who], u["star"], 0)
	}
	// n runs no workers: the post's fan-out waits in the queue for w below.
	id := post(t, n, u["star"], "raced")
	ctx := context.Background()
	// b's timeline has the activity before the fan-out runs.
	if _, err := n.Store.DB().Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin) VALUES ($1, $2, $3)`,
		"timeline:"+u["b"], id, "user:"+u["star"]); err != nil {
		t.Fatal(err)
	}
	w := env.StartNode(t, brooktest.NodeOptions{})
	w.WaitForJobs(t)
	var rows, distinct int
	if err := n.Store.DB().QueryRow(ctx, `SELECT count(*), count(DISTINCT feed_id) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`,
		id).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 3 || distinct != 3 {
		t.Fatalf("%d timeline rows (%d feeds), want 3", rows, distinct)
	}
}

// TestFeedUpdatedFollowsTheMergedSet keeps one timeline subscription open
// while the feeds it merges at read time change under it: a followed actor
// crossing the pull threshold through someone else's follow, falling back
// below it, and the reader unfollowing it while it is merged. Its live
// updates must match what reading the timeline shows throughout: every
// post once, none after the unfollow, and the unfollowed actor's
// activities announced as removed.
func TestFeedUpdatedFollowsTheMergedSet(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = 2 }})
	u := feedUsers(t, n, callTag(), "reader", "star", "fan1", "fan2")
	follow(t, n, u["reader"], u["star"], 0)
	follow(t, n, u["fan1"], u["star"], 0) // two followers: not above 2, pushed

	ws := n.MustDial(t, env.Token(t, u["reader"]))
	sub := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { added { id object } removed } }`,
		brooktest.Vars{"f": "timeline:" + u["reader"]})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := n.Bus.Stats(); return s >= 2 })
	type update struct {
		FeedUpdated struct {
			Added   []activityNode
			Removed []string
		}
	}
	expectAdded := func(id string) {
		t.Helper()
		var got update
		sub.NextData(&got)
		if len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != id {
			t.Fatalf("expected %s added, got %+v", id, got.FeedUpdated)
		}
	}

	pushed := post(t, n, u["star"], "pushed")
	expectAdded(pushed)

	// fan2's follow takes star above the threshold: star is merged at read
	// time from now on, and never written into the reader's timeline.
	_, base := n.Bus.Stats()
	follow(t, n, u["fan2"], u["star"], 0)
	// A post in the moment before the stream listens to star's feed
	// arrives only in reads (the README says so): wait for it.
	listening := func() bool { _, s := n.Bus.Stats(); return s == base+1 }
	brooktest.Eventually(t, "the stream listens to star's feed", listening)
	merged := post(t, n, u["star"], "merged")
	expectAdded(merged)
	sub.None(300 * time.Millisecond)

	// fan2 leaves: star falls back to fan-out on write, and the stream
	// stops listening to star's own feed; a post still arrives once.
	unfollow(t, n, u["fan2"], u["star"], false)
	n.WaitForJobs(t)
	again := post(t, n, u["star"], "pushed again")
	expectAdded(again)
	sub.None(300 * time.Millisecond)
	brooktest.Eventually(t, "the stream no longer listens to star's feed", func() bool { _, s := n.Bus.Stats(); return s == base })

	// Merged once more, then unfollowed by the reader: what the timeline
	// showed of star goes, and star's next post does not arrive.
	follow(t, n, u["fan2"], u["star"], 0)
	brooktest.Eventually(t, "the stream listens to star's feed again", listening)
	last := post(t, n, u["star"], "merged again")
	expectAdded(last)
	unfollow(t, n, u["reader"], u["star"], false)
	n.WaitForJobs(t)
	var got update
	sub.NextData(&got)
	for _, id := range []string{pushed, merged, again, last} {
		if !slices.Contains(got.FeedUpdated.Removed, id) {
			t.Fatalf("after the unfollow: removed %v, want %s among them", got.FeedUpdated.Removed, id)
		}
	}
	post(t, n, u["star"], "not followed")
	sub.None(300 * time.Millisecond)
	if objects := feedObjects(t, n, env.Token(t, u["reader"]), "timeline:"+u["reader"], 10); len(objects) != 0 {
		t.Fatalf("timeline after the unfollow: %v", objects)
	}

	// Followed again with a backfill: activities removed before come back.
	follow(t, n, u["reader"], u["star"], 10)
	n.WaitForJobs(t)
	sub.NextData(&got)
	var back []string
	for _, a := range got.FeedUpdated.Added {
		back = append(back, a.ID)
	}
	if !slices.Contains(back, last) || !slices.Contains(back, pushed) {
		t.Fatalf("after following again: added %v, want %s and %s among them", back, last, pushed)
	}
}
