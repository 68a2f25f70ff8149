package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The issue-19 operations' rows on a FOLLOWERS feed (f.closedFeed), so
// that each has the follower's and the pending follower's outcome beside
// the owner's, the stranger's and the admin's: an accepted follow opens
// the feed's activities (commenting, reacting, bookmarking, watching new
// comments), a pending request opens nothing; what is the caller's own (a
// comment or reaction it wrote) stays its own; managing and importing stay
// the owner's and admins'.

// closedComment makes the owner's feed FOLLOWERS and has who (a reader of
// it) comment on one of its activities; it returns the activity and the
// comment.
func (f *fixture) closedComment(t *testing.T, who role) (activity, comment string) {
	t.Helper()
	activity = f.activity(t)
	f.closedFeed(t)
	var out struct{ AddComment struct{ ID string } }
	f.node.Must(t, f.token(t, who), `mutation($a: ID!) { addComment(activity: $a, text: "hello") { id } }`,
		brooktest.Vars{"a": activity}, &out)
	return activity, out.AddComment.ID
}

// closedReaction makes the owner's feed FOLLOWERS and has the follower
// react to one of its activities (or, with onComment, to a comment on it);
// it returns the reaction.
func (f *fixture) closedReaction(t *testing.T, onComment bool) string {
	t.Helper()
	a, c := f.closedComment(t, follower)
	vars := brooktest.Vars{"a": a, "c": nil}
	if onComment {
		vars["c"] = c
	}
	var out struct{ AddReaction struct{ ID string } }
	f.node.Must(t, f.token(t, follower), `mutation($a: ID!, $c: ID) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`,
		vars, &out)
	return out.AddReaction.ID
}

func init() {
	const closed = "followers-only feed"
	// followerOwns: the follower's own comment or reaction on the owner's
	// FOLLOWERS feed: the follower and admins change it.
	followerOwns := map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: "FORBIDDEN", nonMember: "FORBIDDEN", admin: allowed}
	onClosedComment := func(op, variant, query string, want map[role]outcome) policy {
		return policy{op: op, variant: variant, want: want, also: followersRead, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a, c := f.closedComment(t, follower)
			return query, brooktest.Vars{"a": a, "c": c}
		}}
	}
	onClosedReaction := func(op, variant, query string, onComment bool) policy {
		return policy{op: op, variant: variant, want: followerOwns, also: followersRead, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return query, brooktest.Vars{"r": f.closedReaction(t, onComment)}
		}}
	}
	matrix = append(matrix,
		onClosedActivity("mutation.addComment", `mutation($a: ID!) { addComment(activity: $a, text: "hi") { id } }`, followersRead),
		onClosedComment("mutation.addComment", "reply, "+closed,
			`mutation($a: ID!, $c: ID!) { addComment(activity: $a, text: "hi", parentId: $c) { id } }`, ownerOrFollower),
		onClosedComment("mutation.updateComment", closed, `mutation($c: ID!) { updateComment(id: $c, text: "edited") { id } }`, followerOwns),
		// The owner, the activity's actor, moderates the follower's comment.
		onClosedComment("mutation.deleteComment", closed, `mutation($c: ID!) { deleteComment(id: $c) }`, ownerOrFollower),
		onClosedComment("mutation.addReaction", "on a comment, "+closed,
			`mutation($a: ID!, $c: ID!) { addReaction(activity: $a, comment: $c, kind: "like") { id } }`, ownerOrFollower),
		policy{op: "query.activity", variant: "comments and replies, " + closed, want: ownerOrFollower, also: followersRead,
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				a, _ := f.closedComment(t, follower)
				return `query($a: ID!) { activity(id: $a) { commentCount comments { edges { node { id replyCount replies { edges { node { id } } } } } } } }`,
					brooktest.Vars{"a": a}
			}},
		onClosedComment("query.comment", closed, `query($c: ID!) { comment(id: $c) { id replyCount replies { edges { node { id } } } } }`, ownerOrFollower),
		policy{op: "query.activity", variant: "reactions, " + closed, want: ownerOrFollower, also: followersRead,
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				a := f.activity(t)
				f.closedFeed(t)
				return `query($a: ID!) { activity(id: $a) { reactions(kind: "like") { edges { node { id } } } } }`, brooktest.Vars{"a": a}
			}},
		onClosedReaction("mutation.updateReaction", closed, `mutation($r: ID!) { updateReaction(id: $r, data: {a: 1}) { id } }`, false),
		onClosedReaction("mutation.removeReaction", closed, `mutation($r: ID!) { removeReaction(id: $r) }`, false),
		onClosedReaction("mutation.removeReaction", "on a comment, "+closed, `mutation($r: ID!) { removeReaction(id: $r) }`, true),
		onClosedActivity("subscription.commentAdded", `subscription($a: ID!) { commentAdded(activity: $a) { id } }`, followersRead),
		onClosedActivity("mutation.bookmark", `mutation($a: ID!) { bookmark(activity: $a) { createdAt } }`, followersRead),
		// Unbookmarking touches the caller's own bookmarks only.
		policy{op: "mutation.unbookmark", variant: closed, want: everyone, also: followersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a := f.activity(t)
			f.closedFeed(t)
			return `mutation($a: ID!) { unbookmark(activity: $a) }`, brooktest.Vars{"a": a}
		}},
		// Everyone reads their own bookmarks; those of activities they may
		// no longer read are left out of the page, not refused.
		policy{op: "query.me", variant: "bookmarks", want: everyone, also: followersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			a := f.activity(t)
			for _, r := range []role{owner, stranger, follower, pendingFollower} {
				f.node.Must(t, f.token(t, r), `mutation($a: ID!) { bookmark(activity: $a) { createdAt } }`, brooktest.Vars{"a": a}, nil)
			}
			f.closedFeed(t)
			return `{ me { bookmarks { edges { node { activity { id } } } } } }`, nil
		}},
		onClosedFeed("query.feed", "ranked "+closed, `query($f: ID!) { feed(id: $f) { activities(ranking: "popular") { edges { score node { id } } } } }`,
			ownerOrFollower, followersRead),
		onClosedFeed("query.searchActivities", closed, `query($f: ID!) { searchActivities(query: "x", feed: $f) { edges { node { id } } } }`,
			ownerOrFollower, followersRead),
		onClosedFeed("mutation.upsertRanking", closed, `mutation { upsertRanking(id: "authz-closed", formula: "commentCount") { id } }`,
			adminOnly, followersNone),
		policy{op: "mutation.importFollows", variant: closed, want: adminOnly, also: followersNone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $t: ID!) { importFollows(edges: [{source: $s, target: $t}]) { inserted } }`,
				brooktest.Vars{"t": f.closedFeed(t), "s": "timeline:" + f.users[stranger]}
		}},
		onClosedFeed("mutation.importActivities", closed,
			`mutation($f: ID!) { importActivities(feed: $f, activities: [{verb: "post", object: "x", foreignId: "x-1", time: "2025-01-01T00:00:00Z"}]) { inserted } }`,
			adminOnly, followersNone),
	)
}
