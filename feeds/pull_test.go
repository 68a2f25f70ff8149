package feeds_test

import (
	"context"
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
