package feeds_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

const searchQuery = `query($q: String!, $f: ID, $v: String, $a: ID, $from: Time, $to: Time, $n: Int, $after: String) {
	searchActivities(query: $q, feed: $f, verb: $v, actor: $a, from: $from, to: $to, first: $n, after: $after) {
		edges { node { object } } pageInfo { hasNextPage endCursor } } }`

// search runs searchActivities to its end, page by page, and returns the
// objects found.
func search(t *testing.T, n *brooktest.Node, token string, vars brooktest.Vars) []string {
	t.Helper()
	var out []string
	for pages := 0; pages < 20; pages++ {
		var page struct {
			SearchActivities struct {
				Edges    []struct{ Node struct{ Object string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		n.Must(t, token, searchQuery, vars, &page)
		for _, e := range page.SearchActivities.Edges {
			out = append(out, e.Node.Object)
		}
		if !page.SearchActivities.PageInfo.HasNextPage {
			return out
		}
		vars["after"] = *page.SearchActivities.PageInfo.EndCursor
	}
	t.Fatal("search did not end")
	return nil
}

func addActivity(t *testing.T, n *brooktest.Node, token, feed string, in map[string]any) string {
	t.Helper()
	var out struct{ AddActivity struct{ ID string } }
	n.Must(t, token, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": feed, "in": in}, &out)
	return out.AddActivity.ID
}

// Search matches object, target and data's text, filters, pages, and
// shows only what the caller may read.
func TestSearchActivities(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "ivy", "jon", "kim")
	word := "sunset" + tag // a word only this test uses
	ivy, jon, kim := env.Token(t, u["ivy"]), env.Token(t, u["jon"]), env.Token(t, u["kim"])
	addActivity(t, n, ivy, "user:"+u["ivy"], map[string]any{"verb": "post", "object": "photo:" + word})
	addActivity(t, n, ivy, "user:"+u["ivy"], map[string]any{"verb": "post", "object": "photo:2", "data": map[string]any{"caption": "Golden " + word + " at the beach", "n": 7}})
	addActivity(t, n, jon, "user:"+u["jon"], map[string]any{"verb": "share", "object": "video:9", "target": "album:" + word})
	addActivity(t, n, ivy, "user:"+u["ivy"], map[string]any{"verb": "post", "object": "photo:3", "data": map[string]any{"caption": "coffee" + tag}})
	// Posted by an admin straight into kim's timeline: only kim (and
	// admins) may read it.
	addActivity(t, n, env.AdminToken(t, "root"), "timeline:"+u["kim"], map[string]any{"verb": "note", "object": "private " + word})
	importActivities(t, n, "user:"+u["jon"], []map[string]any{{"verb": "post", "object": "old", "foreignId": "old-1",
		"time": "2024-06-01T12:00:00Z", "data": map[string]any{"text": "an old " + word}}})

	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	all := []string{"video:9", "photo:2", "photo:" + word, "old"}
	for _, c := range []struct {
		name  string
		token string
		vars  brooktest.Vars
		want  []string
	}{
		{"a stranger, one per page", jon, brooktest.Vars{"q": word, "n": 1}, all},
		{"the timeline's owner", kim, brooktest.Vars{"q": word, "n": 2}, append([]string{"private " + word}, all...)},
		{"case and phrase", jon, brooktest.Vars{"q": `"golden ` + strings.ToUpper(word) + `"`}, []string{"photo:2"}},
		{"excluded word", jon, brooktest.Vars{"q": word + " -beach"}, []string{"video:9", "photo:" + word, "old"}},
		{"either word", jon, brooktest.Vars{"q": word + " or coffee" + tag}, append([]string{"photo:3"}, all...)},
		{"verb", jon, brooktest.Vars{"q": word, "v": "share"}, []string{"video:9"}},
		{"actor", jon, brooktest.Vars{"q": word, "a": u["ivy"]}, []string{"photo:2", "photo:" + word}},
		{"feed", kim, brooktest.Vars{"q": word, "f": "user:" + u["jon"]}, []string{"video:9", "old"}},
		{"from", jon, brooktest.Vars{"q": word, "from": "2025-01-01T00:00:00Z"}, all[:3]},
		{"to", jon, brooktest.Vars{"q": word, "to": "2025-01-01T00:00:00Z"}, []string{"old"}},
		{"nothing", jon, brooktest.Vars{"q": "nothing" + tag}, nil},
	} {
		if got := search(t, n, c.token, c.vars); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: found %v, want %v", c.name, got, c.want)
		}
	}
	// The search's expression is the index's: with sequential scans off,
	// the planner reaches for activities_search.
	tx, err := n.Store.DB().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(t.Context(), `EXPLAIN SELECT id FROM activities WHERE `+store.ActivitySearchDoc+` @@ websearch_to_tsquery('simple', $1)`, word)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !strings.Contains(strings.Join(lines, "\n"), "activities_search") {
		t.Fatalf("the search does not use its index (%v):\n%s", err, strings.Join(lines, "\n"))
	}
	_ = tx.Rollback(t.Context())

	for _, c := range []struct {
		vars brooktest.Vars
		code string
	}{
		{brooktest.Vars{"q": "  "}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": strings.Repeat("x", 201)}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": word, "f": "timeline:" + u["kim"]}, "FORBIDDEN"},
		{brooktest.Vars{"q": word, "f": "nofeed"}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": word, "a": "no:one"}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": word, "from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": word, "n": 101}, "BAD_USER_INPUT"},
		{brooktest.Vars{"q": word, "after": "bad"}, "BAD_USER_INPUT"},
	} {
		brooktest.WantCode(t, n.Query(t, jon, searchQuery, c.vars), c.code)
	}
	brooktest.WantCode(t, n.Query(t, "", searchQuery, brooktest.Vars{"q": word}), "UNAUTHENTICATED")
}

const bookmarksQuery = `query($f: String, $n: Int, $a: String) { me { bookmarks(folder: $f, first: $n, after: $a) {
	edges { node { folder activity { object } } } pageInfo { hasNextPage endCursor } } } }`

// bookmarks lists the caller's bookmarks to the end as "folder/object".
func bookmarks(t *testing.T, n *brooktest.Node, token string, folder *string, size int) []string {
	t.Helper()
	var out []string
	var after *string
	for {
		var page struct {
			Me struct {
				Bookmarks struct {
					Edges []struct {
						Node struct {
							Folder   string
							Activity struct{ Object string }
						}
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		n.Must(t, token, bookmarksQuery, brooktest.Vars{"f": folder, "n": size, "a": after}, &page)
		for _, e := range page.Me.Bookmarks.Edges {
			out = append(out, e.Node.Folder+"/"+e.Node.Activity.Object)
		}
		if !page.Me.Bookmarks.PageInfo.HasNextPage {
			return out
		}
		after = page.Me.Bookmarks.PageInfo.EndCursor
	}
}

// Bookmarks: saved once per folder, listed newest first by folder or all,
// removed from one folder or all, gone with their activity, private.
func TestBookmarks(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, n, brooktest.Tag(), "lea", "max")
	lea, max := env.Token(t, u["lea"]), env.Token(t, u["max"])
	a := post(t, n, u["max"], "a")
	b := post(t, n, u["max"], "b")
	c := post(t, n, u["max"], "c")
	const mark = `mutation($a: ID!, $f: String) { bookmark(activity: $a, folder: $f) { folder createdAt activity { id object } } }`
	var first, again struct {
		Bookmark struct {
			Folder    string
			CreatedAt time.Time
			Activity  struct{ ID, Object string }
		}
	}
	n.Must(t, lea, mark, brooktest.Vars{"a": a}, &first)
	n.Must(t, lea, mark, brooktest.Vars{"a": a}, &again)
	if first.Bookmark.Folder != "" || first.Bookmark.Activity.ID != a || again.Bookmark.CreatedAt != first.Bookmark.CreatedAt {
		t.Fatalf("bookmark twice: %+v then %+v", first, again)
	}
	n.Must(t, lea, mark, brooktest.Vars{"a": b, "f": "trips"}, nil)
	n.Must(t, lea, mark, brooktest.Vars{"a": a, "f": "trips"}, nil)
	n.Must(t, lea, mark, brooktest.Vars{"a": c, "f": "later"}, nil)
	trips := "trips"
	if got := bookmarks(t, n, lea, nil, 1); strings.Join(got, ",") != "later/c,trips/a,trips/b,/a" {
		t.Fatalf("all bookmarks = %v", got)
	}
	if got := bookmarks(t, n, lea, &trips, 25); strings.Join(got, ",") != "trips/a,trips/b" {
		t.Fatalf("trips = %v", got)
	}
	if got := bookmarks(t, n, max, nil, 25); len(got) != 0 {
		t.Fatalf("max has bookmarks %v", got)
	}
	if got := n.Count(t, `SELECT count(*) FROM bookmarks WHERE user_id = $1`, u["lea"]); got != 4 {
		t.Fatalf("%d bookmark rows, want 4", got)
	}

	const unmark = `mutation($a: ID!, $f: String) { unbookmark(activity: $a, folder: $f) }`
	var un struct{ Unbookmark bool }
	n.Must(t, lea, unmark, brooktest.Vars{"a": a, "f": "trips"}, &un)
	if !un.Unbookmark {
		t.Fatal("unbookmark from trips said there was none")
	}
	n.Must(t, lea, unmark, brooktest.Vars{"a": a, "f": "trips"}, &un)
	if un.Unbookmark {
		t.Fatal("unbookmark again said there was one")
	}
	if got := bookmarks(t, n, lea, nil, 25); strings.Join(got, ",") != "later/c,trips/b,/a" {
		t.Fatalf("after unbookmark from trips = %v", got)
	}
	n.Must(t, lea, mark, brooktest.Vars{"a": a, "f": "trips"}, nil)
	n.Must(t, lea, unmark, brooktest.Vars{"a": a}, &un)
	if got := bookmarks(t, n, lea, nil, 25); !un.Unbookmark || strings.Join(got, ",") != "later/c,trips/b" {
		t.Fatalf("after unbookmark from all = %v (%v)", got, un.Unbookmark)
	}
	// A removed activity leaves every list at once.
	n.Must(t, max, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": b}, nil)
	if got := bookmarks(t, n, lea, nil, 1); strings.Join(got, ",") != "later/c" {
		t.Fatalf("after removal = %v", got)
	}

	hidden := addActivity(t, n, env.AdminToken(t, "root"), "timeline:"+u["max"], map[string]any{"verb": "note", "object": "hidden"})
	brooktest.WantCode(t, n.Query(t, lea, mark, brooktest.Vars{"a": hidden}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, lea, mark, brooktest.Vars{"a": b}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, lea, mark, brooktest.Vars{"a": "nope"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, lea, mark, brooktest.Vars{"a": c, "f": strings.Repeat("f", 65)}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, lea, unmark, brooktest.Vars{"a": "nope"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, lea, `query($u: ID!) { user(id: $u) { bookmarks { edges { cursor } } } }`, brooktest.Vars{"u": u["max"]}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.AdminToken(t, "root"), `query($u: ID!) { user(id: $u) { bookmarks { edges { cursor } } } }`, brooktest.Vars{"u": u["max"]}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, lea, bookmarksQuery, brooktest.Vars{"n": 101}), "BAD_USER_INPUT")
}
