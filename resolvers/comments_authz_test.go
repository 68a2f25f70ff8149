package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of comments and the newer reaction operations. Whoever may read
// an activity comments on it, reacts to its comments and watches its new
// comments; a comment's author (or an admin) edits it; its author, the
// activity's actor or an admin deletes it.
func init() {
	// actorMayModerate: a stranger's comment on the owner's activity;
	// the stranger wrote it, the owner moderates it.
	actorMayModerate := map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: allowed, owner: allowed, nonMember: "FORBIDDEN", admin: allowed}
	authorOnly := map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: allowed, owner: "FORBIDDEN", nonMember: "FORBIDDEN", admin: allowed}
	matrix = append(matrix,
		policy{op: "mutation.addComment", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($a: ID!) { addComment(activity: $a, text: "hi") { id } }`, brooktest.Vars{"a": f.activity(t)}
		}},
		policy{op: "mutation.addComment", variant: "reply", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a, c := f.comment(t, owner)
			return `mutation($a: ID!, $p: ID!) { addComment(activity: $a, text: "hi", parentId: $p) { id } }`, brooktest.Vars{"a": a, "p": c}
		}},
		policy{op: "query.comment", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			_, c := f.comment(t, owner)
			return `query($id: ID!) { comment(id: $id) { id text } }`, brooktest.Vars{"id": c}
		}},
		policy{op: "mutation.updateComment", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			_, c := f.comment(t, owner)
			return `mutation($id: ID!) { updateComment(id: $id, text: "edited") { id } }`, brooktest.Vars{"id": c}
		}},
		policy{op: "mutation.updateComment", variant: "on the owner's activity", want: authorOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			_, c := f.comment(t, stranger)
			return `mutation($id: ID!) { updateComment(id: $id, text: "edited") { id } }`, brooktest.Vars{"id": c}
		}},
		policy{op: "mutation.deleteComment", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			_, c := f.comment(t, owner)
			return `mutation($id: ID!) { deleteComment(id: $id) }`, brooktest.Vars{"id": c}
		}},
		policy{op: "mutation.deleteComment", variant: "moderated by the actor", want: actorMayModerate, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			_, c := f.comment(t, stranger)
			return `mutation($id: ID!) { deleteComment(id: $id) }`, brooktest.Vars{"id": c}
		}},
		policy{op: "mutation.addReaction", variant: "on a comment", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a, c := f.comment(t, owner)
			return `mutation($a: ID!, $c: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`, brooktest.Vars{"a": a, "c": c}
		}},
		policy{op: "mutation.updateReaction", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			var out struct{ AddReaction struct{ ID string } }
			f.node.Must(t, f.token(t, owner), `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`,
				brooktest.Vars{"a": f.activity(t)}, &out)
			return `mutation($id: ID!) { updateReaction(id: $id, data: {a: 1}) { id } }`, brooktest.Vars{"id": out.AddReaction.ID}
		}},
		policy{op: "mutation.removeReaction", variant: "on a comment", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a, c := f.comment(t, owner)
			var out struct{ AddReaction struct{ ID string } }
			f.node.Must(t, f.token(t, owner), `mutation($a: ID!, $c: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`,
				brooktest.Vars{"a": a, "c": c}, &out)
			return `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": out.AddReaction.ID}
		}},
		policy{op: "subscription.commentAdded", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `subscription($a: ID!) { commentAdded(activity: $a) { id } }`, brooktest.Vars{"a": f.activity(t)}
		}},
		policy{op: "subscription.commentAdded", variant: "a notification", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			// An admin's activity whose origin is the owner's notification
			// feed: the owner and admins read it.
			var out struct{ AddActivity struct{ ID string } }
			f.node.Must(t, f.token(t, admin), `mutation($f: ID!) { addActivity(feed: $f, input: {verb: "note", object: "x"}) { id } }`,
				brooktest.Vars{"f": "notification:" + f.users[owner]}, &out)
			return `subscription($a: ID!) { commentAdded(activity: $a) { id } }`, brooktest.Vars{"a": out.AddActivity.ID}
		}},
	)
}

// comment adds a comment by who to an activity of the fixture's owner and
// returns the activity's and the comment's ids.
func (f *fixture) comment(t *testing.T, who role) (activity, comment string) {
	t.Helper()
	activity = f.activity(t)
	var out struct{ AddComment struct{ ID string } }
	f.node.Must(t, f.token(t, who), `mutation($a: ID!) { addComment(activity: $a, text: "hello") { id } }`,
		brooktest.Vars{"a": activity}, &out)
	return activity, out.AddComment.ID
}
