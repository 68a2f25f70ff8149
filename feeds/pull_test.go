package feeds_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// The push/pull threshold: actors above it are merged into timelines at
// read time, and a timeline reads the same either way.

// Unfollowing with keepHistory keeps what the timeline showed, whether
// the actor was pushed to it or merged at read time (above the pull
// threshold): the same story reads the same in both worlds.
func TestFeedUnfollowKeepsHistoryOfAPulledActor(t *testing.T) {
	t.Parallel()
	var timelines [][]string
	for _, threshold := range []int{1000, 1} {
		n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = threshold }})
		u := feedUsers(t, n, brooktest.Tag(), "reader", "star", "fan")
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
	tag := brooktest.Tag()
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

// A post that made its id before it waited for the follow taking its actor
// above the pull threshold was not pushed, and is older than the actor's
// pulled_since: when the actor drops back, the demotion still copies it
// into its followers' timelines. The feeds row lock puts the follow and
// the post in that order.
func TestDemoteKeepsAPostThatRacedTheCrossing(t *testing.T) {
	ctx := context.Background()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.FeedPullThreshold = 1 }})
	s, feeds := n.Store, n.Feeds
	tag := store.NewID().String()[:8]
	actor, first, second := "actor-"+tag, "first-"+tag, "second-"+tag
	for _, u := range []string{actor, first, second} {
		if err := s.TouchUser(ctx, u, "user"); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) context.Context {
		return auth.WithIdentity(ctx, auth.Identity{UserID: user, Role: auth.RoleUser})
	}
	noCopies := 0
	if _, err := feeds.Follow(as(first), "timeline:"+first, "user:"+actor, &noCopies, nil); err != nil {
		t.Fatal(err)
	}
	waiting := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := s.DB().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%feeds%'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d statements waiting for the feeds row, want %d", n, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hold, err := s.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM feeds WHERE id = $1 FOR UPDATE`, "user:"+actor); err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() {
		_, err := feeds.Follow(as(second), "timeline:"+second, "user:"+actor, &noCopies, nil)
		followed <- err
	}()
	waiting(1)
	type result struct {
		a   *store.Activity
		err error
	}
	posted := make(chan result, 1)
	go func() {
		a, err := feeds.AddActivity(as(actor), "user:"+actor, store.ActivityInput{Verb: "post", Object: "raced"})
		posted <- result{a, err}
	}()
	waiting(2)
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	p := <-posted
	if p.err != nil {
		t.Fatal(p.err)
	}

	// Back to one follower: the actor drops back, and its demotion runs.
	if _, err := feeds.Unfollow(as(second), "timeline:"+second, "user:"+actor, nil); err != nil {
		t.Fatal(err)
	}
	jobs := workers.New(s, n.Bus, workers.Options{Concurrency: 1})
	feeds.RegisterJobs(jobs)
	for {
		n, err := jobs.RunOnce(ctx, []string{store.JobFeedActivity, store.JobFeedDemote, store.JobFeedUnfollow, store.JobFeedBackfill})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var rows int
	if err := s.DB().QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE feed_id = $1 AND activity_id = $2`,
		"timeline:"+first, p.a.ID).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("the raced post is in the first follower's timeline %d times (%v), want 1", rows, err)
	}
}
