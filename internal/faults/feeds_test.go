package faults

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// Fault 1: a `brook worker` process is killed with SIGKILL in the middle of
// fanning out a post to 50,000 followers. After a worker starts again,
// every follower's timeline has the activity exactly once.
//
// To kill it deterministically mid-way, the test holds (in an open
// transaction) the timeline rows of the 25,000th and the 50,000th follower,
// so each of the two worker goroutines blocks in one page of 10,000 (the
// third and the fifth) while the other pages commit (the first inline with
// the activity job, which plans the others); then it kills the process,
// releases the rows and starts another worker.
func TestWorkerKilledMidFanout(t *testing.T) {
	const followers = 50_000
	c := newCluster(t, false)
	// A threshold above the follower count: the actor is pushed (fanned
	// out), not merged at read time.
	const threshold = "1000000"
	api := c.startBrook(t, nil, map[string]string{"BROOK_WORKERS": "0", "FEED_PULL_THRESHOLD": threshold})
	c.users(t, api, "star")
	ctx := context.Background()
	if _, err := c.DB.Exec(ctx, `INSERT INTO follows (source, target, pull_from)
		SELECT 'timeline:f' || g, 'user:star', '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $1) g`,
		followers); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB.Exec(ctx, `INSERT INTO feeds (id, follower_count) VALUES ('user:star', $1)
		ON CONFLICT (id) DO UPDATE SET follower_count = excluded.follower_count`, followers); err != nil {
		t.Fatal(err)
	}
	var post struct{ AddActivity struct{ ID string } }
	if err := api.Client(c.token(t, "star", false)).Run(ctx,
		`mutation { addActivity(feed: "user:star", input: {verb: "post", object: "big news"}) { id } }`, nil, &post); err != nil {
		t.Fatal(err)
	}
	id := post.AddActivity.ID

	hold, err := c.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT source, $1, 'user:star' FROM (
			SELECT source, row_number() OVER (ORDER BY source) AS n FROM follows WHERE target = 'user:star') x
		WHERE n IN (25000, 50000)`, id); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(c.DatabaseURL)
	q := u.Query()
	q.Set("application_name", "victim")
	u.RawQuery = q.Encode()
	victim := c.startBrook(t, []string{"worker"}, map[string]string{"DATABASE_URL": u.String(), "BROOK_WORKERS": "2",
		"FEED_PULL_THRESHOLD": threshold})
	var state string
	eventually(t, 60*time.Second, "both worker goroutines blocked in a fan-out page", func() bool {
		var blocked, ready int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'
			AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO feed_entries%'`).Scan(&blocked)
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE payload->>'activity' = $1`, id).Scan(&ready)
		if blocked == 2 {
			return true
		}
		state = fmt.Sprintf("%d blocked, %d jobs left", blocked, ready)
		return false
	}, &state)
	var committed, pagesLeft int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`,
		id).Scan(&committed); err != nil {
		t.Fatal(err)
	}
	_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE payload->>'activity' = $1`, id).Scan(&pagesLeft)
	victim.Kill()
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if committed <= 0 || committed >= followers {
		t.Fatalf("the worker was killed with %d timeline rows committed; want it mid-way", committed)
	}
	// The killed process's transactions end without committing: its
	// backends go away once they notice the client is gone.
	eventually(t, 60*time.Second, "the killed worker's sessions are gone", func() bool {
		var n int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'`).Scan(&n)
		return n == 0
	})
	var afterKill int
	_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`, id).Scan(&afterKill)
	if afterKill != committed {
		t.Fatalf("%d timeline rows after the kill, %d before: the killed worker's pages must not commit", afterKill, committed)
	}

	restarted := time.Now()
	c.startBrook(t, []string{"worker"}, map[string]string{"BROOK_WORKERS": "2", "FEED_PULL_THRESHOLD": threshold})
	eventually(t, 60*time.Second, "the restarted worker finished the fan-out", func() bool {
		var left int
		_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE payload->>'activity' = $1`, id).Scan(&left)
		return left == 0
	})
	took := time.Since(restarted)
	var rows, distinct, parked int
	if err := c.DB.QueryRow(ctx, `SELECT count(*), count(DISTINCT feed_id) FROM feed_entries
		WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`, id).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE parked_at IS NOT NULL`).Scan(&parked)
	if rows != followers || distinct != followers || parked != 0 {
		t.Fatalf("after the kill and a restart: %d timeline rows, %d distinct feeds, %d parked jobs; want %d, %d, 0",
			rows, distinct, parked, followers, followers)
	}
	// A follower reads it through the API, once.
	var feed struct {
		Feed struct {
			Activities struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	if err := api.Client(c.token(t, "f777", false)).Run(ctx, `{ feed(id: "timeline:f777") { activities(first: 5) { edges { node { id } } } } }`,
		client.Vars{}, &feed); err != nil {
		t.Fatal(err)
	}
	if n := len(feed.Feed.Activities.Edges); n != 1 || feed.Feed.Activities.Edges[0].Node.ID != id {
		t.Fatalf("timeline:f777 reads %+v, want the activity once", feed)
	}
	t.Logf("fault 1: worker process SIGKILLed with %d of %d timeline rows committed (%d page jobs left, 2 of them in flight); "+
		"a new worker finished in %s: %d rows, %d distinct timelines, 0 duplicates, 0 missing",
		committed, followers, pagesLeft, took.Round(10*time.Millisecond), rows, distinct)
}
