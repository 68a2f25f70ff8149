package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The feeds product's rows of the authorization matrix.
func init() {
	matrix = append(matrix,
		policy{op: "query.feed", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($id: ID!) { feed(id: $id) { id } }`, brooktest.Vars{"id": "timeline:" + f.users[owner]}
		}},
		policy{op: "query.activity", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($id: ID!) { activity(id: $id) { id } }`, brooktest.Vars{"id": f.activity(t)}
		}},
		policy{op: "mutation.addActivity", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($f: ID!) { addActivity(feed: $f, input: {verb: "post", object: "x"}) { id } }`,
				brooktest.Vars{"f": "user:" + f.users[owner]}
		}},
		policy{op: "mutation.updateActivity", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { updateActivity(id: $id, data: {a: 1}) { id } }`, brooktest.Vars{"id": f.activity(t)}
		}},
		policy{op: "mutation.removeActivity", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": f.activity(t)}
		}},
		policy{op: "mutation.follow", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
				brooktest.Vars{"s": "timeline:" + f.users[owner], "t": "user:" + f.users[stranger]}
		}},
		policy{op: "mutation.unfollow", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $t: ID!) { unfollow(source: $s, target: $t) }`,
				brooktest.Vars{"s": "timeline:" + f.users[owner], "t": "user:" + f.users[stranger]}
		}},
		policy{op: "mutation.addReaction", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`, brooktest.Vars{"a": f.activity(t)}
		}},
		policy{op: "mutation.removeReaction", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			var out struct{ AddReaction struct{ ID string } }
			f.node.Must(t, f.token(t, owner), `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`,
				brooktest.Vars{"a": f.activity(t)}, &out)
			return `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": out.AddReaction.ID}
		}},
		policy{op: "mutation.markFeedSeen", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($f: ID!) { markFeedSeen(feed: $f) { id } }`, brooktest.Vars{"f": "notification:" + f.users[owner]}
		}},
		policy{op: "mutation.markFeedRead", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($f: ID!) { markFeedRead(feed: $f) { id } }`, brooktest.Vars{"f": "notification:" + f.users[owner]}
		}},
		policy{op: "subscription.feedUpdated", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `subscription($f: ID!) { feedUpdated(feed: $f) { removed } }`, brooktest.Vars{"f": "timeline:" + f.users[owner]}
		}},
	)
}

// activity posts an activity by the fixture's owner to its user feed.
func (f *fixture) activity(t *testing.T) string {
	t.Helper()
	var out struct{ AddActivity struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($f: ID!) { addActivity(feed: $f, input: {verb: "post", object: "x"}) { id } }`,
		brooktest.Vars{"f": "user:" + f.users[owner]}, &out)
	return out.AddActivity.ID
}
