package feeds_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/workers"
)

// The outbox jobs: fan-out pages that survive a killed worker and meet a
// backfill.

// TestFeedWorkerKilledMidJob cuts the worker's database connection in the
// middle of a fan-out; a fresh worker then finishes it: every follower has
// the activity exactly once.
func TestFeedWorkerKilledMidJob(t *testing.T) {
	// A threshold above the follower count: this actor is fanned out.
	big := func(o *node.Options) { o.FeedPullThreshold = 1_000_000 }
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: big})
	tag := brooktest.Tag()
	star := tag + "-star"
	env.AddUsers(t, n, star)
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
	// Not our own backend: behind PgBouncer (BROOK_TEST_PG=pgbouncer) the
	// server connection this query runs on may still carry the name the
	// victim's last transaction on it set.
	if err := n.Store.DB().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`,
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

// TestFeedFanoutMeetsBackfill checks the fan-out's fast path: when a
// follower's backfill already wrote the activity, the page still writes
// every other follower, once.
func TestFeedFanoutMeetsBackfill(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, brooktest.Tag(), "star", "a", "b", "c")
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
