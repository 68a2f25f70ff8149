package feeds_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// importResult is importFollows' and importActivities' answer.
type importResult struct{ Inserted, Skipped int }

const importFollowsQuery = `mutation($e: [FollowEdgeInput!]!, $l: Int) { importFollows(edges: $e, activityCopyLimit: $l) { inserted skipped } }`

const importActivitiesQuery = `mutation($f: ID!, $a: [ImportedActivityInput!]!) { importActivities(feed: $f, activities: $a) { inserted skipped } }`

func importFollows(t *testing.T, n *brooktest.Node, edges [][2]string, limit int) importResult {
	t.Helper()
	var out struct{ ImportFollows importResult }
	n.Must(t, env.AdminToken(t, "root"), importFollowsQuery, brooktest.Vars{"e": edgeVars(edges), "l": limit}, &out)
	return out.ImportFollows
}

func edgeVars(edges [][2]string) []map[string]any {
	out := make([]map[string]any, len(edges))
	for i, e := range edges {
		out[i] = map[string]any{"source": e[0], "target": e[1]}
	}
	return out
}

func importActivities(t *testing.T, n *brooktest.Node, feed string, acts []map[string]any) importResult {
	t.Helper()
	var out struct{ ImportActivities importResult }
	n.Must(t, env.AdminToken(t, "root"), importActivitiesQuery, brooktest.Vars{"f": feed, "a": acts}, &out)
	return out.ImportActivities
}

// history is n activities, an hour apart from 2025-03-01, oldest first:
// objects prefix0, prefix1, ..., foreign ids prefix-0, prefix-1, ...
func history(prefix string, n int) []map[string]any {
	start := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"verb": "post", "object": fmt.Sprint(prefix, i), "foreignId": fmt.Sprint(prefix, "-", i),
			"time": start.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano), "data": map[string]any{"text": "imported"}}
	}
	return out
}

// Importing a graph twice changes nothing the second time; the new
// followers' timelines hold the targets' activities at once, without jobs.
func TestImportFollowsIdempotent(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "ann", "ben", "cal")
	for i := 0; i < 3; i++ {
		post(t, n, u["ben"], fmt.Sprint("b", i))
	}
	n.WaitForJobs(t)
	jobs := n.Count(t, `SELECT count(*) FROM jobs WHERE payload::text LIKE '%' || $1 || '%'`, tag)
	edges := [][2]string{
		{"timeline:" + u["ann"], "user:" + u["ben"]},
		{"timeline:" + u["cal"], "user:" + u["ben"]},
		{"timeline:" + u["ann"], "user:" + u["cal"]},
		{"timeline:" + u["ann"], "user:" + u["ben"]}, // a repeat
	}
	if got := importFollows(t, n, edges, 2); got != (importResult{3, 1}) {
		t.Fatalf("first import = %+v, want 3 inserted, 1 skipped", got)
	}
	check := func() {
		env.CaughtUp(t) // the import's writes, read by its users (BROOK_TEST_PG=replica)
		t.Helper()
		if got := feedObjects(t, n, env.Token(t, u["ann"]), "timeline:"+u["ann"], 10); strings.Join(got, ",") != u["ben"]+":b2,"+u["ben"]+":b1" {
			t.Fatalf("ann's timeline = %v, want ben's two newest (copy limit 2)", got)
		}
		if got := n.Count(t, `SELECT count(*) FROM feed_entries WHERE feed_id LIKE 'timeline:%' AND origin = $1`, "user:"+u["ben"]); got != 4 {
			t.Fatalf("%d timeline rows of ben's, want 4", got)
		}
		if got := n.Count(t, `SELECT follower_count FROM feeds WHERE id = $1`, "user:"+u["ben"]); got != 2 {
			t.Fatalf("ben's follower count = %d, want 2", got)
		}
		if got := n.Count(t, `SELECT following_count FROM feeds WHERE id = $1`, "timeline:"+u["ann"]); got != 2 {
			t.Fatalf("ann's following count = %d, want 2", got)
		}
		if got := n.Count(t, `SELECT count(*) FROM jobs WHERE payload::text LIKE '%' || $1 || '%'`, tag); got != jobs {
			t.Fatalf("the import left %d jobs, want none", got-jobs)
		}
	}
	check()
	if got := importFollows(t, n, edges, 2); got != (importResult{0, 4}) {
		t.Fatalf("second import = %+v, want 0 inserted, 4 skipped", got)
	}
	// An empty batch imports nothing (it once failed: no staging table).
	if got := importFollows(t, n, nil, 2); got != (importResult{}) {
		t.Fatalf("an empty batch: %+v", got)
	}
	check()
}

// Bad input is refused with its field and writes nothing.
func TestImportRefusesBadInput(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, brooktest.Tag(), "dee", "eve")
	admin := env.AdminToken(t, "root")
	good := "timeline:" + u["dee"]
	for _, c := range []struct {
		edges [][2]string
		code  string
		in    string
	}{
		{[][2]string{{good, "user:" + u["eve"]}, {"user:" + u["dee"], "user:" + u["eve"]}}, "BAD_USER_INPUT", "edges[1].source"},
		{[][2]string{{good, "timeline:" + u["eve"]}}, "BAD_USER_INPUT", "edges[0].target"},
		{[][2]string{{good, "user:" + u["eve"]}, {good, "nofeed"}}, "BAD_USER_INPUT", "edges[1].target"},
		{[][2]string{{good, "user:" + u["eve"]}, {good, "user:nobody-" + u["eve"]}}, "NOT_FOUND", "nobody"},
	} {
		r := n.Query(t, admin, importFollowsQuery, brooktest.Vars{"e": edgeVars(c.edges)})
		brooktest.WantCode(t, r, c.code)
		if !strings.Contains(r.Errors[0].Message, c.in) {
			t.Errorf("%v: message %q does not name %s", c.edges, r.Errors[0].Message, c.in)
		}
	}
	brooktest.WantCode(t, n.Query(t, admin, importFollowsQuery, brooktest.Vars{"e": edgeVars([][2]string{{good, "user:" + u["eve"]}}), "l": 1001}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["dee"]), importFollowsQuery, brooktest.Vars{"e": edgeVars([][2]string{{good, "user:" + u["eve"]}})}), "FORBIDDEN")
	if got := n.Count(t, `SELECT count(*) FROM follows WHERE source = $1`, good); got != 0 {
		t.Fatalf("refused imports wrote %d follows", got)
	}

	acts := history("x", 5)
	acts[3]["verb"] = ""
	r := n.Query(t, admin, importActivitiesQuery, brooktest.Vars{"f": "user:" + u["eve"], "a": acts})
	brooktest.WantCode(t, r, "BAD_USER_INPUT")
	if !strings.Contains(r.Errors[0].Message, "activities[3].verb") {
		t.Errorf("message %q does not name activities[3].verb", r.Errors[0].Message)
	}
	acts = history("x", 2)
	acts[1]["time"] = time.Now().Add(time.Hour).Format(time.RFC3339)
	brooktest.WantCode(t, n.Query(t, admin, importActivitiesQuery, brooktest.Vars{"f": "user:" + u["eve"], "a": acts}), "BAD_USER_INPUT")
	acts = history("x", 2)
	acts[0]["data"] = map[string]any{"n": 1e300, "m": "1e400"}
	acts[1]["data"] = "not an object"
	brooktest.WantCode(t, n.Query(t, admin, importActivitiesQuery, brooktest.Vars{"f": "user:" + u["eve"], "a": acts}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, admin, importActivitiesQuery, brooktest.Vars{"f": "timeline:" + u["eve"], "a": history("x", 1)}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, admin, importActivitiesQuery, brooktest.Vars{"f": "user:nobody-" + u["eve"], "a": history("x", 1)}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, env.Token(t, u["eve"]), importActivitiesQuery, brooktest.Vars{"f": "user:" + u["eve"], "a": history("x", 1)}), "FORBIDDEN")
	if got := n.Count(t, `SELECT count(*) FROM activities WHERE actor_id = $1`, u["eve"]); got != 0 {
		t.Fatalf("refused imports wrote %d activities", got)
	}
}

// Imported activities reach the followers' timelines in the same call, in
// the order they happened, below what was posted since; importing them
// again changes nothing.
func TestImportActivitiesIdempotent(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "fay", "gus", "hal")
	follow(t, n, u["gus"], u["fay"], 100)
	follow(t, n, u["hal"], u["fay"], 100)
	post(t, n, u["fay"], "live")
	n.WaitForJobs(t)
	jobs := n.Count(t, `SELECT count(*) FROM jobs WHERE payload::text LIKE '%' || $1 || '%'`, tag)
	acts := history("h", 4)
	if got := importActivities(t, n, "user:"+u["fay"], acts); got != (importResult{4, 0}) {
		t.Fatalf("first import = %+v, want 4 inserted", got)
	}
	want := []string{u["fay"] + ":h3", u["fay"] + ":h2", u["fay"] + ":h1", u["fay"] + ":h0"}
	check := func() {
		t.Helper()
		// Below the live post: they happened before it.
		if got := feedObjects(t, n, env.Token(t, u["gus"]), "timeline:"+u["gus"], 3); strings.Join(got, ",") != u["fay"]+":live,"+strings.Join(want, ",") {
			t.Fatalf("gus's timeline = %v, want %v", got, want)
		}
		if got := feedObjects(t, n, env.Token(t, u["fay"]), "user:"+u["fay"], 2); strings.Join(got, ",") != u["fay"]+":live,"+strings.Join(want, ",") {
			t.Fatalf("fay's feed = %v", got)
		}
		if got := n.Count(t, `SELECT count(*) FROM feed_entries fe JOIN activities a ON a.id = fe.activity_id WHERE a.actor_id = $1`, u["fay"]); got != 3+3*4 {
			t.Fatalf("%d feed rows of fay's activities, want 15", got)
		}
		if got := n.Count(t, `SELECT count(*) FROM jobs WHERE payload::text LIKE '%' || $1 || '%'`, tag); got != jobs {
			t.Fatalf("the import left %d jobs, want none", got-jobs)
		}
	}
	check()
	if got := importActivities(t, n, "user:"+u["fay"], acts); got != (importResult{0, 4}) {
		t.Fatalf("second import = %+v, want 4 skipped", got)
	}
	check()
	// The same batch with one more, and a repeat inside it.
	more := append(history("h", 5), history("h", 1)...)
	if got := importActivities(t, n, "user:"+u["fay"], more); got != (importResult{1, 5}) {
		t.Fatalf("third import = %+v, want 1 inserted, 5 skipped", got)
	}
	var got struct {
		Feed struct {
			Activities struct {
				Edges []struct {
					Node struct {
						ForeignID string
						Time      time.Time
						Actor     struct{ ID string }
						Data      map[string]any
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, u["hal"]), `query($f: ID!) { feed(id: $f) { activities(first: 2) { edges { node { foreignId time actor { id } data } } } } }`,
		brooktest.Vars{"f": "timeline:" + u["hal"]}, &got)
	e := got.Feed.Activities.Edges[1:] // below the live post
	if len(e) != 1 || e[0].Node.ForeignID != "h-4" || e[0].Node.Actor.ID != u["fay"] || e[0].Node.Data["text"] != "imported" ||
		e[0].Node.Time.Format(time.RFC3339) != more[4]["time"] {
		t.Fatalf("hal's newest = %+v, want h-4 by fay at %v", e, more[4]["time"])
	}
}

// Concurrent imports of overlapping batches count every follow once.
func TestImportFollowsConcurrentCounts(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	names := make([]string, 30)
	for i := range names {
		names[i] = fmt.Sprint("p", i)
	}
	u := feedUsers(t, n, tag, names...)
	// Everyone follows everyone: 8 importers each send all 900 edges, in
	// different orders.
	var all [][2]string
	for _, a := range names {
		for _, b := range names {
			all = append(all, [2]string{"timeline:" + u[a], "user:" + u[b]})
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	inserted := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([][2]string, len(all))
			for i := range all {
				batch[i] = all[(i*(w+1)+w*97)%len(all)]
			}
			got := importFollows(t, n, batch, 0)
			mu.Lock()
			inserted += got.Inserted
			mu.Unlock()
		}()
	}
	wg.Wait()
	if inserted != len(all) {
		t.Fatalf("imports inserted %d follows in all, want %d", inserted, len(all))
	}
	for _, name := range names {
		if got := n.Count(t, `SELECT follower_count FROM feeds WHERE id = $1`, "user:"+u[name]); got != len(names) {
			t.Fatalf("%s has follower count %d, want %d", name, got, len(names))
		}
		if got := n.Count(t, `SELECT following_count FROM feeds WHERE id = $1`, "timeline:"+u[name]); got != len(names) {
			t.Fatalf("%s has following count %d, want %d", name, got, len(names))
		}
	}
}

// A batch that takes a feed above the pull threshold makes its followers
// merge it at read time, as follow does.
func TestImportFollowsAcrossPullThreshold(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = 2 }})
	u := feedUsers(t, n, brooktest.Tag(), "star", "r1", "r2", "r3")
	importFollows(t, n, [][2]string{{"timeline:" + u["r1"], "user:" + u["star"]}, {"timeline:" + u["r2"], "user:" + u["star"]},
		{"timeline:" + u["r3"], "user:" + u["star"]}}, 100)
	if got := n.Count(t, `SELECT count(*) FROM follows WHERE target = $1 AND pulled`, "user:"+u["star"]); got != 3 {
		t.Fatalf("%d follows merge star at read time, want 3", got)
	}
	if got := n.Count(t, `SELECT count(*) FROM feeds WHERE id = $1 AND pulled_since IS NOT NULL`, "user:"+u["star"]); got != 1 {
		t.Fatal("star is not pulled")
	}
	post(t, n, u["star"], "big")
	n.WaitForJobs(t)
	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	if got := feedObjects(t, n, env.Token(t, u["r2"]), "timeline:"+u["r2"], 5); strings.Join(got, ",") != u["star"]+":big" {
		t.Fatalf("r2's timeline = %v, want star's post", got)
	}
	if got := n.Count(t, `SELECT count(*) FROM feed_entries WHERE feed_id LIKE 'timeline:%' AND origin = $1`, "user:"+u["star"]); got != 0 {
		t.Fatalf("star's post was pushed into %d timelines; it is merged at read time", got)
	}
	// A fourth follower imported later merges it from the start.
	u4 := feedUsers(t, n, brooktest.Tag(), "r4")["r4"]
	importFollows(t, n, [][2]string{{"timeline:" + u4, "user:" + u["star"]}}, 100)
	env.CaughtUp(t) // the admin's import (BROOK_TEST_PG=replica)
	if got := feedObjects(t, n, env.Token(t, u4), "timeline:"+u4, 5); strings.Join(got, ",") != u["star"]+":big" {
		t.Fatalf("r4's timeline = %v, want star's post", got)
	}
	if got := n.Count(t, `SELECT count(*) FROM follows WHERE target = $1 AND pulled`, "user:"+u["star"]); got != 4 {
		t.Fatalf("%d follows merge star at read time, want 4", got)
	}
}
