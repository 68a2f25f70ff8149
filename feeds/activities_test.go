package feeds_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// Posting and removing activities, and the pages that show them.

func TestFeedIdempotentPost(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice")
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

// A removed activity whose entries are still waiting for their job
// neither shortens a page nor ends the feed there.
func TestFeedPagesSkipARemovedActivity(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, brooktest.Tag(), "bob")
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
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob")
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

// TestFeedTimelineStatements checks that a timeline page costs the same
// number of SQL statements whatever its size: one range scan plus one
// batch per loader.
func TestFeedTimelineStatements(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "reader", "a", "b", "c")
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
	q := `query($f: ID!, $n: Int, $r: ID) { feed(id: $f) { activities(first: $n, ranking: $r) { edges { node { id verb actor { name } reactionCounts { kind count } ownReactions { kind } commentCount } } } } }`
	var ranking any // nil: newest first
	var trips int64
	count := func(size int) int64 {
		reader.Must(t, env.Token(t, u["reader"]), `{ me { id } }`, nil, nil) // warms the sign-in
		before, tripsBefore := reader.Store.Statements(), reader.Store.RoundTrips()
		defer func() { trips = reader.Store.RoundTrips() - tripsBefore }()
		var out struct {
			Feed struct{ Activities struct{ Edges []struct{} } }
		}
		reader.Must(t, env.Token(t, u["reader"]), q, brooktest.Vars{"f": "timeline:" + u["reader"], "n": size, "r": ranking}, &out)
		if len(out.Feed.Activities.Edges) != size {
			t.Fatalf("page of %d has %d activities", size, len(out.Feed.Activities.Edges))
		}
		return reader.Store.Statements() - before
	}
	small, large := count(5), count(25)
	t.Logf("timeline page: %d statements for 5 activities, %d for 25, in %d round trip(s)", small, large, trips)
	if small != large {
		t.Fatalf("statements grow with the page: %d for 5, %d for 25", small, large)
	}
	// The feed, then the page with its actors, counts and own reactions.
	if small > 2 {
		t.Fatalf("timeline page costs %d statements, want at most 2", small)
	}
	// ... in one round trip, unless the page may be read from a replica.
	if env.Replica == nil && trips != 1 {
		t.Fatalf("timeline page costs %d round trips to PostgreSQL, want 1", trips)
	}
	// A ranked page costs two statements more (reading the ranking, and the
	// extras of the activities it ranked), also whatever its size.
	ranking = "popular"
	rankedSmall, rankedLarge := count(5), count(25)
	t.Logf("ranked timeline page: %d statements for 5 activities, %d for 25", rankedSmall, rankedLarge)
	if rankedSmall != rankedLarge || rankedSmall != small+2 {
		t.Fatalf("ranked pages cost %d statements for 5, %d for 25; plain pages %d", rankedSmall, rankedLarge, small)
	}
}
