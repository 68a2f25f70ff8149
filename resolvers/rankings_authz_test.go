package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The ranked feeds' rows of the authorization matrix. A ranked page is
// read with the same rule as a plain one (the feed's); setting rankings is
// for admins alone. (Follower and pending-follower roles come with private
// feeds; a ranked page of a FOLLOWERS feed follows query.feed's rule.)
func init() {
	matrix = append(matrix,
		policy{op: "mutation.upsertRanking", want: adminOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation { upsertRanking(id: "authz-ranking", formula: "reactionCounts.like * decay(ageHours, 12)") { id formula } }`, nil
		}},
		policy{op: "query.rankings", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `{ rankings { id formula builtIn } }`, nil
		}},
		policy{op: "query.feed", variant: "ranked timeline", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.activity(t)
			return `query($id: ID!) { feed(id: $id) { activities(ranking: "popular") { edges { score node { id } } } } }`,
				brooktest.Vars{"id": "timeline:" + f.users[owner]}
		}},
		policy{op: "query.feed", variant: "ranked user feed", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.activity(t)
			return `query($id: ID!) { feed(id: $id) { activities(ranking: "popular") { edges { score node { id } } } } }`,
				brooktest.Vars{"id": "user:" + f.users[owner]}
		}},
	)
}
