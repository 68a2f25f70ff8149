package feeds_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// Ranked feeds: activities(ranking:), upsertRanking and rankings.

type rankedEdge struct {
	Cursor string
	Score  *float64
	Node   struct{ ID, Object string }
}

type rankedPage struct {
	Edges    []rankedEdge
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

const rankedQuery = `query($f: ID!, $r: ID, $n: Int, $a: String) { feed(id: $f) { activities(ranking: $r, first: $n, after: $a) {
	edges { cursor score node { id object } } pageInfo { hasNextPage endCursor } } } }`

// rankedRead reads one page of a feed by a ranking.
func rankedRead(t *testing.T, n *brooktest.Node, token, feed, ranking string, first int, after *string) rankedPage {
	t.Helper()
	var out struct {
		Feed struct{ Activities rankedPage }
	}
	vars := brooktest.Vars{"f": feed, "n": first, "a": after}
	if ranking != "" {
		vars["r"] = ranking
	}
	n.Must(t, token, rankedQuery, vars, &out)
	return out.Feed.Activities
}

// rankedObjects reads a whole ranked list page by page, as "object=score".
func rankedObjects(t *testing.T, n *brooktest.Node, token, feed, ranking string, first int) []string {
	t.Helper()
	var out []string
	var after *string
	for pages := 0; ; pages++ {
		p := rankedRead(t, n, token, feed, ranking, first, after)
		for _, e := range p.Edges {
			out = append(out, fmt.Sprintf("%s=%g", e.Node.Object, *e.Score))
		}
		if !p.PageInfo.HasNextPage || pages > 100 {
			return out
		}
		after = p.PageInfo.EndCursor
	}
}

// upsertRanking sets a ranking as an admin.
func upsertRanking(t *testing.T, n *brooktest.Node, id, formula string) {
	t.Helper()
	n.Must(t, env.AdminToken(t, "ranking-admin"), `mutation($id: ID!, $f: String!) { upsertRanking(id: $id, formula: $f) { id } }`,
		brooktest.Vars{"id": id, "f": formula}, nil)
}

// postWith adds an activity with data by user to user:<user>.
func postWith(t *testing.T, n *brooktest.Node, user, object string, data map[string]any) string {
	t.Helper()
	var out struct{ AddActivity activityNode }
	n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": "post", "object": object, "data": data}}, &out)
	return out.AddActivity.ID
}

func like(t *testing.T, n *brooktest.Node, user, activity string) {
	t.Helper()
	n.Must(t, env.Token(t, user), `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`, brooktest.Vars{"a": activity}, nil)
}

// A ranking orders a feed by its formula, with the exact counts of likes
// made concurrently, and anyone who may read the feed may rank it.
func TestFeedRankedByFormula(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "bob", "carol", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8")
	ranking := "boosted-" + tag
	upsertRanking(t, n, ranking, "reactionCounts.like + data.boost")
	p1 := postWith(t, n, u["bob"], "p1", nil)
	postWith(t, n, u["bob"], "p2", map[string]any{"boost": 5})
	p3 := postWith(t, n, u["bob"], "p3", map[string]any{"boost": 1})
	postWith(t, n, u["bob"], "p4", map[string]any{"boost": "high"}) // not a number: 0
	var wg sync.WaitGroup
	for i := 1; i <= 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			like(t, n, u[fmt.Sprint("f", i)], p1)
			like(t, n, u[fmt.Sprint("f", i)], p1) // again: still one like
			if i <= 2 {
				like(t, n, u[fmt.Sprint("f", i)], p3)
			}
		}()
	}
	wg.Wait()
	env.CaughtUp(t) // bob posted, the followers liked; carol reads
	got := rankedObjects(t, n, env.Token(t, u["carol"]), "user:"+u["bob"], ranking, 3)
	if want := "[p1=8 p2=5 p3=3 p4=0]"; fmt.Sprint(got) != want {
		t.Fatalf("ranked feed %v, want %s", got, want)
	}
	// The plain list is still newest first, without scores.
	var plain struct {
		Feed struct{ Activities rankedPage }
	}
	n.Must(t, env.Token(t, u["carol"]), `query($f: ID!) { feed(id: $f) { activities { edges { cursor score node { id object } } pageInfo { hasNextPage endCursor } } } }`,
		brooktest.Vars{"f": "user:" + u["bob"]}, &plain)
	if e := plain.Feed.Activities.Edges; len(e) != 4 || e[0].Node.Object != "p4" || e[0].Score != nil {
		t.Fatalf("plain list %+v", e)
	}
	var list struct {
		Rankings []struct {
			ID, Formula string
			BuiltIn     bool
		}
	}
	n.Must(t, env.Token(t, u["carol"]), `{ rankings { id formula builtIn } }`, nil, &list)
	var ids []string
	for _, r := range list.Rankings {
		ids = append(ids, r.ID)
		if r.ID == "popular" && !r.BuiltIn || r.ID == ranking && (r.BuiltIn || r.Formula != "reactionCounts.like + data.boost") {
			t.Fatalf("rankings %+v", list.Rankings)
		}
	}
	if !slices.Contains(ids, "popular") || !slices.Contains(ids, ranking) || !slices.IsSorted(ids) {
		t.Fatalf("rankings %v", ids)
	}
}

// Pages of one ranked list rank the snapshot of its first page: likes
// added and activities posted while it is paged change nothing in it, so
// it neither repeats nor skips an activity; a fresh first page sees them.
func TestFeedRankedPagesHoldStill(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	names := []string{"bob", "reader"}
	for i := 1; i <= 12; i++ {
		names = append(names, fmt.Sprint("f", i))
	}
	u := feedUsers(t, n, tag, names...)
	ranking := "likes-" + tag
	upsertRanking(t, n, ranking, "reactionCounts.like")
	ids := map[int]string{}
	for i := 1; i <= 9; i++ {
		ids[i] = post(t, n, u["bob"], fmt.Sprint("p", i))
		for j := 1; j <= i; j++ {
			like(t, n, u[fmt.Sprint("f", j)], ids[i])
		}
	}
	reader := env.Token(t, u["reader"])
	feed := "user:" + u["bob"]
	first := rankedRead(t, n, reader, feed, ranking, 3, nil)
	var got []string
	for _, e := range first.Edges {
		got = append(got, e.Node.Object)
	}
	// Meanwhile: p1 gets 12 likes, more than any; p10 is posted and liked.
	for j := 1; j <= 12; j++ {
		like(t, n, u[fmt.Sprint("f", j)], ids[1])
	}
	p10 := post(t, n, u["bob"], "p10")
	like(t, n, u["f1"], p10)
	// Setting the same formula again keeps the list's cursors.
	upsertRanking(t, n, ranking, "reactionCounts.like")
	after := first.PageInfo.EndCursor
	for {
		p := rankedRead(t, n, reader, feed, ranking, 3, after)
		for _, e := range p.Edges {
			got = append(got, fmt.Sprintf("%s=%g", e.Node.Object, *e.Score))
		}
		if !p.PageInfo.HasNextPage {
			break
		}
		after = p.PageInfo.EndCursor
	}
	if want := "[p9 p8 p7 p6=6 p5=5 p4=4 p3=3 p2=2 p1=1]"; fmt.Sprint(got) != want {
		t.Fatalf("paged %v, want %s", got, want)
	}
	fresh := rankedObjects(t, n, reader, feed, ranking, 4)
	if want := "[p1=12 p9=9 p8=8 p7=7 p6=6 p5=5 p4=4 p3=3 p2=2 p10=1]"; fmt.Sprint(fresh) != want {
		t.Fatalf("a fresh list reads %v, want %s", fresh, want)
	}
	// A changed formula ends the lists paged under the old one.
	upsertRanking(t, n, ranking, "reactionCounts.like * 2")
	r := n.Query(t, reader, rankedQuery, brooktest.Vars{"f": feed, "r": ranking, "n": 3, "a": first.PageInfo.EndCursor})
	brooktest.WantCode(t, r, "BAD_USER_INPUT")
	if !strings.Contains(r.Errors[0].Message, "changed") {
		t.Fatalf("error %q does not say the ranking changed", r.Errors[0].Message)
	}
}

// Bad input of every kind is BAD_USER_INPUT with what is wrong (a syntax
// error with its position), only admins set rankings, and a refused
// upsert writes nothing.
func TestFeedRankingErrors(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "bob", "carol")
	admin := env.AdminToken(t, "ranking-admin")
	upsert := `mutation($id: ID!, $f: String!) { upsertRanking(id: $id, formula: $f) { id } }`
	id := "bad-" + tag
	for _, c := range []struct {
		id, formula string
		token       string
		code        string
		says        string
		line, col   int
	}{
		{id, "reactionCounts.like *", admin, "BAD_USER_INPUT", "syntax error", 1, 21},
		{id, "1 +\n  (2 * ", admin, "BAD_USER_INPUT", "syntax error", 2, 0},
		{id, "likes * 2", admin, "BAD_USER_INPUT", `unknown variable "likes"`, 1, 1},
		{id, "2 * sqrt(ageHours)", admin, "BAD_USER_INPUT", `unknown function "sqrt"`, 1, 5},
		{id, "", admin, "BAD_USER_INPUT", "must not be empty", 0, 0},
		{"a b", "ageHours", admin, "BAD_USER_INPUT", "not a valid ranking id", 0, 0},
		{id, "ageHours", env.Token(t, u["bob"]), "FORBIDDEN", "only admins", 0, 0},
	} {
		r := n.Query(t, c.token, upsert, brooktest.Vars{"id": c.id, "f": c.formula})
		brooktest.WantCode(t, r, c.code)
		e := r.Errors[0]
		if !strings.Contains(e.Message, c.says) {
			t.Errorf("%q: message %q, want %q", c.formula, e.Message, c.says)
		}
		if c.line > 0 {
			pos, _ := e.Extensions["position"].(map[string]any)
			if pos == nil || pos["line"] != float64(c.line) || (c.col > 0 && pos["column"] != float64(c.col)) || e.Extensions["field"] != "formula" {
				t.Errorf("%q: extensions %v, want position %d:%d", c.formula, e.Extensions, c.line, c.col)
			}
		}
	}
	var rows int
	if err := n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM rankings WHERE id = $1`, id).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("refused upserts wrote %d rankings (%v)", rows, err)
	}

	post(t, n, u["bob"], "x")
	post(t, n, u["bob"], "y")
	carol, feed := env.Token(t, u["carol"]), "user:"+u["bob"]
	for _, c := range []struct {
		feed, ranking string
		after         any
		code          string
	}{
		{feed, "nope-" + tag, nil, "BAD_USER_INPUT"},
		{feed, "no way", nil, "BAD_USER_INPUT"},
		{"timeline:" + u["bob"], "popular", nil, "FORBIDDEN"},
		{feed, "popular", "not-a-cursor", "BAD_USER_INPUT"},
	} {
		brooktest.WantCode(t, n.Query(t, carol, rankedQuery, brooktest.Vars{"f": c.feed, "r": c.ranking, "n": 1, "a": c.after}), c.code)
	}
	// A plain list's cursor is not a ranked one, nor the other way round,
	// nor one ranking's another's.
	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	plain := rankedRead(t, n, carol, feed, "", 1, nil)
	ranked := rankedRead(t, n, carol, feed, "popular", 1, nil)
	upsertRanking(t, n, "other-"+tag, "ageHours")
	for _, c := range []struct {
		ranking any
		after   *string
	}{{"popular", plain.PageInfo.EndCursor}, {nil, ranked.PageInfo.EndCursor}, {"other-" + tag, ranked.PageInfo.EndCursor}} {
		brooktest.WantCode(t, n.Query(t, carol, rankedQuery, brooktest.Vars{"f": feed, "r": c.ranking, "n": 1, "a": c.after}), "BAD_USER_INPUT")
	}
}

// A timeline ranks the activities of actors merged at read time (above
// the pull threshold) with those pushed into it, the same way: one story
// reads in the same order in a world where every actor is pushed and in
// one where the star is pulled.
func TestFeedRankedPushPullSameOrder(t *testing.T) {
	t.Parallel()
	var worlds [][]string
	for _, threshold := range []int{1000, 1} {
		n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = threshold }})
		u := feedUsers(t, n, brooktest.Tag(), "reader", "star", "small", "fan", "l1", "l2", "l3", "l4", "l5")
		follow(t, n, u["fan"], u["star"], 10)
		follow(t, n, u["reader"], u["star"], 10) // two followers: above a threshold of 1
		follow(t, n, u["reader"], u["small"], 10)
		likes := map[string]int{"s1": 0, "x1": 3, "s2": 1, "x2": 0, "s3": 5, "x3": 2, "s4": 4}
		for _, obj := range []string{"s1", "x1", "s2", "x2", "s3", "x3", "s4"} {
			actor := u["star"]
			if obj[0] == 'x' {
				actor = u["small"]
			}
			id := post(t, n, actor, obj)
			for j := 1; j <= likes[obj]; j++ {
				like(t, n, u[fmt.Sprint("l", j)], id)
			}
		}
		n.WaitForJobs(t)
		var pulled bool
		if err := n.Store.DB().QueryRow(context.Background(), `SELECT pulled FROM follows WHERE source = $1 AND target = $2`,
			"timeline:"+u["reader"], "user:"+u["star"]).Scan(&pulled); err != nil || pulled != (threshold == 1) {
			t.Fatalf("threshold %d: the star's follow pulled=%v (%v)", threshold, pulled, err)
		}
		var got []string
		for _, s := range rankedObjects(t, n, env.Token(t, u["reader"]), "timeline:"+u["reader"], "popular", 2) {
			obj, _, _ := strings.Cut(s, "=")
			got = append(got, obj)
		}
		worlds = append(worlds, got)
	}
	if want := "[s3 s4 x1 x3 s2 x2 s1]"; fmt.Sprint(worlds[0]) != want || fmt.Sprint(worlds[1]) != want {
		t.Fatalf("push world %v, pull world %v, want %s in both", worlds[0], worlds[1], want)
	}
}
