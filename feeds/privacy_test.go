package feeds_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// Private feeds, follow requests, and the follow graph's reads.

// setVisibility sets who reads user:<user>.
func setVisibility(t *testing.T, n *brooktest.Node, user, visibility string) {
	t.Helper()
	var out struct{ SetFeedVisibility struct{ Visibility string } }
	n.Must(t, env.Token(t, user), `mutation($f: ID!, $v: FeedVisibility!) { setFeedVisibility(feed: $f, visibility: $v) { visibility } }`,
		brooktest.Vars{"f": "user:" + user, "v": visibility}, &out)
	if out.SetFeedVisibility.Visibility != visibility {
		t.Fatalf("setFeedVisibility answered %q, want %q", out.SetFeedVisibility.Visibility, visibility)
	}
}

// followStatus follows user:<target> from timeline:<user> and returns the
// follow's status.
func followStatus(t *testing.T, n *brooktest.Node, user, target string, limit int) string {
	t.Helper()
	var out struct{ Follow struct{ Status string } }
	n.Must(t, env.Token(t, user), `mutation($s: ID!, $t: ID!, $l: Int) { follow(source: $s, target: $t, activityCopyLimit: $l) { status } }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target, "l": limit}, &out)
	return out.Follow.Status
}

// answer runs acceptFollow or rejectFollow as token.
func answer(t *testing.T, n *brooktest.Node, token, op, user, target string) *brooktest.Response {
	t.Helper()
	sel := ""
	if op == "acceptFollow" {
		sel = " { status }"
	}
	return n.Query(t, token, `mutation($s: ID!, $t: ID!) { `+op+`(source: $s, target: $t)`+sel+` }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target})
}

// feedCounts reads a feed's follow counts as its owner.
func feedCounts(t *testing.T, n *brooktest.Node, token, feed string) (followers, following int) {
	t.Helper()
	var out struct {
		Feed struct{ FollowerCount, FollowingCount int }
	}
	n.Must(t, token, `query($f: ID!) { feed(id: $f) { followerCount followingCount } }`, brooktest.Vars{"f": feed}, &out)
	return out.Feed.FollowerCount, out.Feed.FollowingCount
}

// requests lists the timelines asking to follow user:<user>.
func requests(t *testing.T, n *brooktest.Node, user string) []string {
	t.Helper()
	var out struct {
		Feed struct {
			FollowRequests struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	n.Must(t, env.Token(t, user), `query($f: ID!) { feed(id: $f) { followRequests { edges { node { id } } } } }`,
		brooktest.Vars{"f": "user:" + user}, &out)
	var ids []string
	for _, e := range out.Feed.FollowRequests.Edges {
		ids = append(ids, e.Node.ID)
	}
	return ids
}

// A request copies nothing; accepting it backfills as a follow would, and
// opens the feed and its activities to the follower.
func TestFeedFollowRequestAccepted(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	alice, bob := env.Token(t, u["alice"]), env.Token(t, u["bob"])
	for i := 1; i <= 3; i++ {
		post(t, n, u["bob"], fmt.Sprintf("old%d", i))
	}
	setVisibility(t, n, u["bob"], "FOLLOWERS")
	follow(t, n, u["carol"], u["bob"], 0) // a request too
	if got := followStatus(t, n, u["alice"], u["bob"], 2); got != "PENDING" {
		t.Fatalf("follow of a FOLLOWERS feed: status %s, want PENDING", got)
	}
	if got := followStatus(t, n, u["alice"], u["bob"], 50); got != "PENDING" {
		t.Fatalf("asking again: status %s, want PENDING", got)
	}
	hidden := post(t, n, u["bob"], "new1")
	n.WaitForJobs(t)

	// Pending: nothing copied, nothing counted, nothing readable.
	if got := feedObjects(t, n, alice, "timeline:"+u["alice"], 25); len(got) != 0 {
		t.Fatalf("a pending follower's timeline = %v, want empty", got)
	}
	if f, _ := feedCounts(t, n, bob, "user:"+u["bob"]); f != 0 {
		t.Fatalf("followerCount with two requests = %d, want 0", f)
	}
	if _, f := feedCounts(t, n, alice, "timeline:"+u["alice"]); f != 0 {
		t.Fatalf("followingCount of a pending follower = %d, want 0", f)
	}
	brooktest.WantCode(t, n.Query(t, alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "user:" + u["bob"]}), "FORBIDDEN")
	for _, q := range []string{
		`query($a: ID!) { activity(id: $a) { id } }`,
		`mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`,
	} {
		brooktest.WantCode(t, n.Query(t, alice, q, brooktest.Vars{"a": hidden}), "FORBIDDEN")
	}
	// ... nor reached inside another object.
	var rel struct {
		Feed struct {
			FollowRelation struct{ Following, FollowedBy *string }
		}
	}
	n.Must(t, alice, `query($me: ID!, $o: ID!) { feed(id: $me) { followRelation(other: $o) { following followedBy } } }`,
		brooktest.Vars{"me": "user:" + u["alice"], "o": "user:" + u["bob"]}, &rel)
	if r := rel.Feed.FollowRelation; r.Following == nil || *r.Following != "PENDING" || r.FollowedBy != nil {
		t.Fatalf("followRelation of a pending follower = %+v", r)
	}
	if got := requests(t, n, u["bob"]); !slices.Equal(got, sorted("timeline:"+u["alice"], "timeline:"+u["carol"])) {
		t.Fatalf("followRequests = %v", got)
	}
	brooktest.WantCode(t, n.Query(t, alice, `query($f: ID!) { feed(id: $f) { followRequests { edges { cursor } } } }`,
		brooktest.Vars{"f": "user:" + u["bob"]}), "FORBIDDEN")

	// Accepting: the follow starts with the two newest activities (the
	// request's activityCopyLimit), counted once however often accepted.
	var acc struct{ AcceptFollow struct{ Status string } }
	if r := answer(t, n, bob, "acceptFollow", u["alice"], u["bob"]); r.Code() != "" || r.Decode(&acc) != nil || acc.AcceptFollow.Status != "ACCEPTED" {
		t.Fatalf("acceptFollow: %s %s", r.Code(), r.Data)
	}
	if r := answer(t, n, bob, "acceptFollow", u["alice"], u["bob"]); r.Code() != "" {
		t.Fatalf("accepting again: %s", r.Code())
	}
	n.WaitForJobs(t)
	want := []string{u["bob"] + ":new1", u["bob"] + ":old3"}
	if got := feedObjects(t, n, alice, "timeline:"+u["alice"], 25); !slices.Equal(got, want) {
		t.Fatalf("timeline after accept = %v, want %v", got, want)
	}
	if f, _ := feedCounts(t, n, bob, "user:"+u["bob"]); f != 1 {
		t.Fatalf("followerCount after accepting = %d, want 1", f)
	}
	if got := feedObjects(t, n, alice, "user:"+u["bob"], 25); len(got) != 4 {
		t.Fatalf("an accepted follower reads %d of bob's activities, want 4", len(got))
	}
	n.Must(t, alice, `query($a: ID!) { activity(id: $a) { id } }`, brooktest.Vars{"a": hidden}, nil)
	// New posts are fanned out to the accepted follower.
	post(t, n, u["bob"], "new2")
	n.WaitForJobs(t)
	if got := feedObjects(t, n, alice, "timeline:"+u["alice"], 25); len(got) != 3 {
		t.Fatalf("timeline after a new post = %v, want 3 activities", got)
	}
	if got := requests(t, n, u["bob"]); !slices.Equal(got, []string{"timeline:" + u["carol"]}) {
		t.Fatalf("followRequests after accepting alice = %v", got)
	}
	// A stranger still may not read bob's feed, its followers or its activities.
	carol := env.Token(t, u["carol"])
	brooktest.WantCode(t, n.Query(t, carol, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "user:" + u["bob"]}), "FORBIDDEN")
	// ... nor reached inside another object (the target of its request).
	brooktest.WantCode(t, n.Query(t, carol, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) {
		status target { followerCount activities { edges { cursor } } } } }`,
		brooktest.Vars{"s": "timeline:" + u["carol"], "t": "user:" + u["bob"]}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, carol, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { target { followers { edges { cursor } } } } }`,
		brooktest.Vars{"s": "timeline:" + u["carol"], "t": "user:" + u["bob"]}), "FORBIDDEN")
	// An admin reads it.
	n.Must(t, env.AdminToken(t, "root-"+u["carol"]), `query($f: ID!) { feed(id: $f) { activities { edges { cursor } } } }`,
		brooktest.Vars{"f": "user:" + u["bob"]}, nil)
}

// sorted returns its arguments in order.
func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// Rejecting a request or withdrawing it leaves nothing behind; answering
// requests is the feed owner's.
func TestFeedFollowRequestRejected(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	bob := env.Token(t, u["bob"])
	post(t, n, u["bob"], "p1")
	setVisibility(t, n, u["bob"], "FOLLOWERS")
	followStatus(t, n, u["alice"], u["bob"], 10)
	followStatus(t, n, u["carol"], u["bob"], 10)

	brooktest.WantCode(t, answer(t, n, env.Token(t, u["alice"]), "acceptFollow", u["alice"], u["bob"]), "FORBIDDEN")
	brooktest.WantCode(t, answer(t, n, env.Token(t, u["carol"]), "rejectFollow", u["alice"], u["bob"]), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bob, `mutation { acceptFollow(source: "user:x", target: "timeline:y") { status } }`, nil), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($t: ID!) { acceptFollow(source: "user:x", target: $t) { status } }`,
		brooktest.Vars{"t": "user:" + u["bob"]}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($t: ID!) { acceptFollow(source: "nope", target: $t) { status } }`,
		brooktest.Vars{"t": "user:" + u["bob"]}), "BAD_USER_INPUT")

	var rej struct{ RejectFollow bool }
	if r := answer(t, n, bob, "rejectFollow", u["alice"], u["bob"]); r.Decode(&rej) != nil || !rej.RejectFollow {
		t.Fatalf("rejectFollow: %s %s", r.Code(), r.Data)
	}
	if r := answer(t, n, bob, "rejectFollow", u["alice"], u["bob"]); r.Decode(&rej) != nil || rej.RejectFollow {
		t.Fatalf("rejecting again: %s %s", r.Code(), r.Data)
	}
	brooktest.WantCode(t, answer(t, n, bob, "acceptFollow", u["alice"], u["bob"]), "NOT_FOUND")
	// carol withdraws hers.
	if !unfollow(t, n, u["carol"], u["bob"], false) {
		t.Fatal("unfollow did not report the withdrawn request")
	}
	n.WaitForJobs(t)
	if got := requests(t, n, u["bob"]); len(got) != 0 {
		t.Fatalf("requests after reject and withdrawal = %v", got)
	}
	var rows int
	_ = n.Store.DB().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM follows WHERE target = $1)
		+ (SELECT count(*) FROM follow_requests WHERE target = $1)`, "user:"+u["bob"]).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d follows or requests remain", rows)
	}
	for _, who := range []string{u["alice"], u["carol"]} {
		if got := feedObjects(t, n, env.Token(t, who), "timeline:"+who, 25); len(got) != 0 {
			t.Fatalf("timeline of a rejected follower = %v", got)
		}
	}
	// Once bob's feed is public, following again is a follow at once and
	// answers the old request.
	followStatus(t, n, u["alice"], u["bob"], 10)
	setVisibility(t, n, u["bob"], "PUBLIC")
	if got := followStatus(t, n, u["alice"], u["bob"], 10); got != "ACCEPTED" {
		t.Fatalf("follow of a public feed: %s", got)
	}
	if got := requests(t, n, u["bob"]); len(got) != 0 {
		t.Fatalf("requests after following = %v", got)
	}
	// Bad input.
	brooktest.WantCode(t, n.Query(t, bob, `mutation($f: ID!) { setFeedVisibility(feed: $f, visibility: PRIVATE) { id } }`,
		brooktest.Vars{"f": "timeline:" + u["bob"]}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($f: ID!) { setFeedVisibility(feed: $f, visibility: SECRET) { id } }`,
		brooktest.Vars{"f": "user:" + u["bob"]}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bob, `mutation($f: ID!) { setFeedVisibility(feed: $f, visibility: PRIVATE) { id } }`,
		brooktest.Vars{"f": "user:" + u["alice"]}), "FORBIDDEN")
}

// A PRIVATE feed is its owner's alone: no follows, no reads, and its posts
// reach no follower, pushed or pulled.
func TestFeedPrivate(t *testing.T) {
	for _, threshold := range []int{1000, 1} {
		t.Run(fmt.Sprintf("threshold %d", threshold), func(t *testing.T) {
			n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = threshold }})
			u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol", "dave")
			follow(t, n, u["alice"], u["bob"], 10)
			follow(t, n, u["dave"], u["bob"], 10) // two followers: above threshold 1, pulled
			post(t, n, u["bob"], "public")
			setVisibility(t, n, u["bob"], "PRIVATE")
			secret := post(t, n, u["bob"], "secret")
			n.WaitForJobs(t)
			alice := env.Token(t, u["alice"])
			if got := feedObjects(t, n, alice, "timeline:"+u["alice"], 25); len(got) != 0 {
				t.Fatalf("a follower's timeline while bob's feed is private = %v, want empty", got)
			}
			brooktest.WantCode(t, n.Query(t, alice, `query($f: ID!) { feed(id: $f) { id } }`, brooktest.Vars{"f": "user:" + u["bob"]}), "FORBIDDEN")
			brooktest.WantCode(t, n.Query(t, alice, `query($a: ID!) { activity(id: $a) { id } }`, brooktest.Vars{"a": secret}), "FORBIDDEN")
			brooktest.WantCode(t, n.Query(t, env.Token(t, u["carol"]), `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { status } }`,
				brooktest.Vars{"s": "timeline:" + u["carol"], "t": "user:" + u["bob"]}), "FORBIDDEN")
			if got := feedObjects(t, n, env.Token(t, u["bob"]), "user:"+u["bob"], 25); len(got) != 2 {
				t.Fatalf("bob reads %d of his activities, want 2", len(got))
			}
			env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
			if got := feedObjects(t, n, env.AdminToken(t, "root-"+u["bob"]), "user:"+u["bob"], 25); len(got) != 2 {
				t.Fatalf("an admin reads %d of bob's activities, want 2", len(got))
			}
			// Readable again, it is back in the timelines, pushed or pulled
			// alike, as far as each follow reaches.
			setVisibility(t, n, u["bob"], "FOLLOWERS")
			post(t, n, u["bob"], "later")
			n.WaitForJobs(t)
			want := []string{u["bob"] + ":later", u["bob"] + ":secret", u["bob"] + ":public"}
			if got := feedObjects(t, n, alice, "timeline:"+u["alice"], 25); !slices.Equal(got, want) {
				t.Fatalf("a follower's timeline once bob's feed is no longer private = %v, want %v", got, want)
			}
			n.Must(t, alice, `query($a: ID!) { activity(id: $a) { id } }`, brooktest.Vars{"a": secret}, nil)
		})
	}
}

// Follow counts are exact under concurrent follows, unfollows, requests,
// accepts, rejects and withdrawals.
func TestFeedFollowCountsUnderConcurrency(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	names := []string{"open", "closed"}
	for i := 0; i < 16; i++ {
		names = append(names, fmt.Sprintf("u%d", i))
	}
	u := feedUsers(t, n, tag, names...)
	setVisibility(t, n, u["closed"], "FOLLOWERS")
	closed := env.Token(t, u["closed"])
	var wg sync.WaitGroup
	run := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	for i := 0; i < 16; i++ {
		me := u[fmt.Sprintf("u%d", i)]
		run(func() {
			// open: followed by all, then unfollowed and followed again by
			// the odd ones, unfollowed for good by every fourth.
			follow(t, n, me, u["open"], 5)
			follow(t, n, me, u["open"], 5)
			if i%2 == 1 {
				unfollow(t, n, me, u["open"], false)
				follow(t, n, me, u["open"], 5)
			}
			if i%4 == 0 {
				unfollow(t, n, me, u["open"], false)
			}
		})
		run(func() { followStatus(t, n, me, u["closed"], 5) })
	}
	wg.Wait()
	// Answer closed's requests while their senders act on them too: the
	// owner accepts every one twice; the first third withdraw theirs, and
	// the owner also rejects the last third.
	for i := 0; i < 16; i++ {
		me := u[fmt.Sprintf("u%d", i)]
		for range 2 {
			run(func() {
				if r := answer(t, n, closed, "acceptFollow", me, u["closed"]); r.Code() != "" && r.Code() != "NOT_FOUND" {
					t.Errorf("acceptFollow: %s", r.Code())
				}
			})
		}
		switch {
		case i < 5:
			run(func() { unfollow(t, n, me, u["closed"], false) })
		case i >= 11:
			run(func() { answer(t, n, closed, "rejectFollow", me, u["closed"]) })
		}
	}
	wg.Wait()
	n.WaitForJobs(t)
	ctx := context.Background()
	for _, target := range []string{"open", "closed"} {
		var rows, requests int
		_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM follows WHERE target = $1`, "user:"+u[target]).Scan(&rows)
		_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM follow_requests WHERE target = $1`, "user:"+u[target]).Scan(&requests)
		got, _ := feedCounts(t, n, env.Token(t, u[target]), "user:"+u[target])
		if got != rows || requests != 0 {
			t.Fatalf("%s: followerCount %d, %d follows, %d requests left", target, got, rows, requests)
		}
		if target == "open" && rows != 12 {
			t.Fatalf("open has %d followers, want 12", rows)
		}
		if target == "closed" && (rows < 0 || rows > 16) {
			t.Fatalf("closed has %d followers", rows)
		}
	}
	for i := 0; i < 16; i++ {
		me := u[fmt.Sprintf("u%d", i)]
		var rows int
		_ = n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM follows WHERE source = $1`, "timeline:"+me).Scan(&rows)
		if _, got := feedCounts(t, n, env.Token(t, me), "timeline:"+me); got != rows {
			t.Fatalf("%s: followingCount %d, %d follows", me, got, rows)
		}
	}
}

// followRelation says both ways; followSuggestions ranks the feeds the
// followed follow.
func TestFeedFollowRelationAndSuggestions(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol", "dave", "erin", "frank", "gina")
	follow(t, n, u["alice"], u["bob"], 0)
	follow(t, n, u["alice"], u["carol"], 0)
	follow(t, n, u["bob"], u["alice"], 0) // alice's own feed: never suggested
	for _, by := range []string{"bob", "carol"} {
		follow(t, n, u[by], u["dave"], 0)
		follow(t, n, u[by], u["frank"], 0)
		follow(t, n, u[by], u["gina"], 0)
	}
	follow(t, n, u["bob"], u["erin"], 0)
	setVisibility(t, n, u["frank"], "PRIVATE")  // not suggested
	setVisibility(t, n, u["gina"], "FOLLOWERS") // requested: not suggested
	followStatus(t, n, u["alice"], u["gina"], 0)
	alice := env.Token(t, u["alice"])

	var out struct {
		FollowSuggestions []struct {
			Feed        struct{ ID string }
			MutualCount int
		}
	}
	n.Must(t, alice, `{ followSuggestions { feed { id } mutualCount } }`, nil, &out)
	var got []string
	for _, s := range out.FollowSuggestions {
		got = append(got, fmt.Sprintf("%s:%d", s.Feed.ID, s.MutualCount))
	}
	want := []string{"user:" + u["dave"] + ":2", "user:" + u["erin"] + ":1"}
	if !slices.Equal(got, want) {
		t.Fatalf("followSuggestions = %v, want %v", got, want)
	}
	n.Must(t, alice, `{ followSuggestions(first: 1) { feed { id } mutualCount } }`, nil, &out)
	if len(out.FollowSuggestions) != 1 {
		t.Fatalf("first: 1 gave %d suggestions", len(out.FollowSuggestions))
	}
	brooktest.WantCode(t, n.Query(t, alice, `{ followSuggestions(first: 101) { mutualCount } }`, nil), "BAD_USER_INPUT")

	rel := func(token, feed, other string) (string, string) {
		var out struct {
			Feed struct {
				FollowRelation struct{ Following, FollowedBy *string }
			}
		}
		n.Must(t, token, `query($f: ID!, $o: ID!) { feed(id: $f) { followRelation(other: $o) { following followedBy } } }`,
			brooktest.Vars{"f": feed, "o": other}, &out)
		s := func(p *string) string {
			if p == nil {
				return "none"
			}
			return *p
		}
		return s(out.Feed.FollowRelation.Following), s(out.Feed.FollowRelation.FollowedBy)
	}
	if a, b := rel(alice, "timeline:"+u["alice"], "user:"+u["bob"]); a != "ACCEPTED" || b != "ACCEPTED" {
		t.Fatalf("alice and bob: %s, %s", a, b)
	}
	if a, b := rel(env.Token(t, u["carol"]), "user:"+u["alice"], "user:"+u["carol"]); a != "ACCEPTED" || b != "none" {
		t.Fatalf("alice and carol, asked by carol: %s, %s", a, b)
	}
	if a, b := rel(env.Token(t, u["gina"]), "user:"+u["gina"], "user:"+u["alice"]); a != "none" || b != "PENDING" {
		t.Fatalf("gina and alice: %s, %s", a, b)
	}
	// Strangers to both may not ask.
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["erin"]), `query($f: ID!, $o: ID!) { feed(id: $f) { followRelation(other: $o) { following } } }`,
		brooktest.Vars{"f": "user:" + u["alice"], "o": "user:" + u["bob"]}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, alice, `query($f: ID!) { feed(id: $f) { followRelation(other: "bob") { following } } }`,
		brooktest.Vars{"f": "user:" + u["alice"]}), "BAD_USER_INPUT")
}
