package feeds_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// TestFeedFanoutWatchedFirst checks the online-first fan-out: the activity
// job writes and announces the watched followers' rows alone, the pages
// (jobs) leave them out; a page whose worker dies before committing is
// retried and loses nothing, a retried page writes nothing twice, and a
// follower who starts watching between the two parts gets the page's event.
func TestFeedFanoutWatchedFirst(t *testing.T) {
	big := func(o *node.Options) { o.FeedPullThreshold = 1_000_000 }
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: big})
	tag := brooktest.Tag()
	star := tag + "-star"
	env.AddUsers(t, n, star)
	const followers = 10_001 // two pages: the second holds f9999 alone
	ctx := context.Background()
	db := n.Store.DB()
	if _, err := db.Exec(ctx, `INSERT INTO follows (source, target, pull_from)
		SELECT 'timeline:' || $1 || '-f' || g, 'user:' || $2, '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $3) g`,
		tag, star, followers); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO feeds (id, follower_count) VALUES ($1, $2)`, "user:"+star, followers); err != nil {
		t.Fatal(err)
	}
	timeline := func(i string) string { return "timeline:" + tag + "-f" + i }
	subscribe := func(feed string) *bus.Subscription {
		s, err := n.Bus.Subscribe(ctx, feeds.FeedTopic(feed))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	watched := []string{timeline("10"), timeline("5000"), timeline("9999")}
	subs := map[string]*bus.Subscription{}
	for _, f := range watched {
		subs[f] = subscribe(f)
	}
	id := post(t, n, star, "online first")

	jobs := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1})
	n.Feeds.RegisterJobs(jobs)
	if done, err := jobs.RunOnce(ctx, []string{store.JobFeedActivity}); err != nil || done != 1 {
		t.Fatalf("activity job: %d run, %v", done, err)
	}
	written := func() []string {
		rows, err := db.Query(ctx, `SELECT feed_id FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%' ORDER BY feed_id`, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				t.Fatal(err)
			}
			out = append(out, f)
		}
		return out
	}
	if got := written(); !slices.Equal(got, watched) {
		t.Fatalf("after the activity job the timelines %v have the activity; want the watched %v", got, watched)
	}
	for f, s := range subs {
		if ev := receiveEvent(t, s); !strings.Contains(string(ev.Data), id) {
			t.Fatalf("%s got %s; want the activity", f, ev.Data)
		}
	}

	// One job waits to plan the pages, with the feeds they skip.
	fanoutJobs := func() []store.FanoutJob {
		rows, err := db.Query(ctx, `SELECT payload FROM jobs WHERE kind = $1 AND payload->>'activity' = $2 ORDER BY payload->>'after'`,
			store.JobFeedFanout, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []store.FanoutJob
		for rows.Next() {
			var raw []byte
			var p store.FanoutJob
			if err := rows.Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		return out
	}
	plan := fanoutJobs()
	if len(plan) != 1 || !plan[0].Plan || !slices.Equal(plan[0].Skip, watched) {
		t.Fatalf("fan-out jobs %+v; want one planning job skipping %v", plan, watched)
	}

	// The node dies between the two parts, its worker in the middle of the
	// first page: nothing of the page stays, the job waits for a retry.
	crashed, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := n.Store.WithTx(crashed).PlanFanout(ctx, store.ActivityJob{Activity: plan[0].Activity, Origin: plan[0].Origin})
	if err != nil || len(pages) != 2 {
		t.Fatalf("plan: %d pages, %v; want 2", len(pages), err)
	}
	store.SkipWritten(pages, plan[0].Skip)
	if !slices.Equal(pages[0].Skip, watched[:2]) || !slices.Equal(pages[1].Skip, watched[2:]) {
		t.Fatalf("pages skip %v and %v; want %v and %v", pages[0].Skip, pages[1].Skip, watched[:2], watched[2:])
	}
	if got, err := n.Store.WithTx(crashed).FanoutPage(ctx, pages[0]); err != nil || len(got) != 10_000-2 {
		t.Fatalf("first page wrote %d feeds, %v; want %d", len(got), err, 10_000-2)
	}
	_ = crashed.Rollback(ctx)

	// A follower starts watching between the two parts.
	late := timeline("2000")
	lateSub := subscribe(late)
	// Another worker takes the job: it writes the first page and queues
	// the second, which skips its one follower, written first.
	retry := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1, BatchSize: 1})
	n.Feeds.RegisterJobs(retry)
	if done, err := retry.RunOnce(ctx, []string{store.JobFeedFanout}); err != nil || done != 1 {
		t.Fatalf("planning job: %d run, %v", done, err)
	}
	if left := fanoutJobs(); len(left) != 1 || left[0].Plan || !slices.Equal(left[0].Skip, watched[2:]) {
		t.Fatalf("after the planning job: %+v; want the second page skipping %v", left, watched[2:])
	}
	for {
		done, err := jobs.RunOnce(ctx, []string{store.JobFeedFanout})
		if err != nil {
			t.Fatal(err)
		}
		if done == 0 {
			break
		}
	}
	if ev := receiveEvent(t, lateSub); !strings.Contains(string(ev.Data), id) {
		t.Fatalf("%s got %s; want the activity", late, ev.Data)
	}
	// A page run again (its job retried after it committed) writes nothing.
	for _, p := range pages {
		if got, err := n.Store.FanoutPage(ctx, p); err != nil || len(got) != 0 {
			t.Fatalf("page run again wrote %d feeds, %v", len(got), err)
		}
	}
	var rowsN, distinct int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT feed_id) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`,
		id).Scan(&rowsN, &distinct); err != nil {
		t.Fatal(err)
	}
	if rowsN != followers || distinct != followers {
		t.Fatalf("%d timeline rows (%d feeds); want %d", rowsN, distinct, followers)
	}
	// The watched followers got their one event, not a second from a page
	// (the late follower's event, published after, has arrived).
	time.Sleep(100 * time.Millisecond)
	for f, s := range subs {
		if len(s.C) != 0 {
			t.Fatalf("%s got a second event", f)
		}
	}

	// A removed activity is written to no watched timeline.
	gone := post(t, n, star, "removed before its fan-out")
	goneID, err := uuid.Parse(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Store.RemoveActivity(ctx, goneID); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Store.FanoutWatched(ctx, store.ActivityJob{Activity: goneID, Origin: "user:" + star}, watched); err != nil || len(got) != 0 {
		t.Fatalf("removed activity written to %v, %v", got, err)
	}
}

// receiveEvent waits for the next event of s.
func receiveEvent(t *testing.T, s *bus.Subscription) *bus.Event {
	t.Helper()
	select {
	case ev, ok := <-s.C:
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return nil
}
