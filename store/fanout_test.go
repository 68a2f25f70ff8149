package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// A post that made its id before it waited for the follow taking its actor
// above the pull threshold was not pushed, and is older than the actor's
// pulled_since: when the actor drops back, the demotion still copies it
// into its followers' timelines. The feeds row lock puts the follow and
// the post in that order.
func TestDemoteKeepsAPostThatRacedTheCrossing(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{DatabaseURL: env.DatabaseURL, FeedPullThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	tag := store.NewID().String()[:8]
	actor, first, second := "actor-"+tag, "first-"+tag, "second-"+tag
	for _, u := range []string{actor, first, second} {
		if err := s.TouchUser(ctx, u, "user"); err != nil {
			t.Fatal(err)
		}
	}
	feed := func(id string) *store.Feed {
		f, err := store.ParseFeedID("feed", id)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if _, err := s.FollowFeed(ctx, feed("timeline:"+first), feed("user:"+actor), 0); err != nil {
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
		_, err := s.FollowFeed(ctx, feed("timeline:"+second), feed("user:"+actor), 0)
		followed <- err
	}()
	waiting(1)
	type result struct {
		a   *store.Activity
		err error
	}
	posted := make(chan result, 1)
	go func() {
		a, err := s.AddActivity(ctx, feed("user:"+actor), actor, store.ActivityInput{Verb: "post", Object: "raced"})
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
	if _, err := s.UnfollowFeed(ctx, feed("timeline:"+second), feed("user:"+actor), false); err != nil {
		t.Fatal(err)
	}
	jobs := workers.New(s, nil, workers.Options{Concurrency: 1})
	for {
		n, err := jobs.RunOnce(ctx, []string{store.JobFeedActivity, store.JobFeedDemote, store.JobFeedUnfollow, store.JobFeedBackfill})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var n int
	if err := s.DB().QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE feed_id = $1 AND activity_id = $2`,
		"timeline:"+first, p.a.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the raced post is in the first follower's timeline %d times (%v), want 1", n, err)
	}
}
