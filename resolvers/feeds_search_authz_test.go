package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of imports, search and bookmarks (issue 19).
func init() {
	matrix = append(matrix,
		policy{op: "mutation.importFollows", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $t: ID!) { importFollows(edges: [{source: $s, target: $t}]) { inserted skipped } }`,
				brooktest.Vars{"s": "timeline:" + f.users[owner], "t": "user:" + f.users[stranger]}
		}},
		policy{op: "mutation.importActivities", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($f: ID!) { importActivities(feed: $f, activities: [{verb: "post", object: "x", foreignId: "x-1", time: "2025-01-01T00:00:00Z"}]) { inserted } }`,
				brooktest.Vars{"f": "user:" + f.users[owner]}
		}},
		policy{op: "query.searchActivities", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.activity(t)
			return `query($f: ID!) { searchActivities(query: "x", feed: $f) { edges { node { id } } } }`,
				brooktest.Vars{"f": "user:" + f.users[owner]}
		}},
		policy{op: "query.searchActivities", variant: "in a timeline", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($f: ID!) { searchActivities(query: "x", feed: $f) { edges { node { id } } } }`,
				brooktest.Vars{"f": "timeline:" + f.users[owner]}
		}},
		policy{op: "mutation.bookmark", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($a: ID!) { bookmark(activity: $a) { createdAt } }`, brooktest.Vars{"a": f.activity(t)}
		}},
		policy{op: "mutation.unbookmark", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a := f.activity(t)
			f.node.Must(t, f.token(t, owner), `mutation($a: ID!) { bookmark(activity: $a) { createdAt } }`, brooktest.Vars{"a": a}, nil)
			return `mutation($a: ID!) { unbookmark(activity: $a) }`, brooktest.Vars{"a": a}
		}},
		// User.bookmarks: only on the user themself, not even for an admin.
		policy{op: "query.user", variant: "bookmarks", want: participantOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($u: ID!) { user(id: $u) { bookmarks { edges { cursor } } } }`, brooktest.Vars{"u": f.users[owner]}
		}},
	)
}
