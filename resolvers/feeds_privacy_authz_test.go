package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for private feeds and follow
// requests (issue 19). Each runs on the owner's user feed made FOLLOWERS
// (f.closedFeed): the follower's request to follow it was accepted, the
// pending follower's waits. The outcomes are the table "Who may do what"
// in docs/feeds.md.

// More kinds of caller, for the rows on a FOLLOWERS feed.
const (
	follower        role = "follower" // follows the owner's FOLLOWERS feed
	pendingFollower role = "pending"  // asked to follow it; not accepted yet
)

// Outcomes of the follower and the pending follower.
var (
	// followersRead: reading the feed's content, which an accepted follow
	// opens.
	followersRead = map[role]outcome{follower: allowed, pendingFollower: "FORBIDDEN"}
	// followersNone: managing the feed, its owner's alone.
	followersNone = map[role]outcome{follower: "FORBIDDEN", pendingFollower: "FORBIDDEN"}
	// followersAll: the caller's own things.
	followersAll = map[role]outcome{follower: allowed, pendingFollower: allowed}
)

// ownerOrFollower allows the owner and admins; the other roles' outcomes
// are in also.
var ownerOrFollower = ownerOnly

// onClosedFeed is a row on the owner's FOLLOWERS feed, $f.
func onClosedFeed(op, variant, query string, want, also map[role]outcome) policy {
	return policy{op: op, variant: variant, want: want, also: also, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return query, brooktest.Vars{"f": f.closedFeed(t)}
	}}
}

// onClosedActivity is a row on an activity of the owner's FOLLOWERS feed, $a.
func onClosedActivity(op, query string, also map[role]outcome) policy {
	return policy{op: op, variant: "followers-only feed", want: ownerOrFollower, also: also, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		a := f.activity(t)
		f.closedFeed(t)
		return query, brooktest.Vars{"a": a}
	}}
}

func init() {
	extraRoles = append(extraRoles, follower, pendingFollower)
	matrix = append(matrix,
		onClosedFeed("query.feed", "followers-only feed", `query($f: ID!) { feed(id: $f) { id activities { edges { cursor } } } }`,
			ownerOrFollower, followersRead),
		onClosedFeed("query.feed", "followRequests", `query($f: ID!) { feed(id: $f) { followRequests { edges { node { id } } } } }`,
			ownerOnly, followersNone),
		policy{op: "query.feed", variant: "followRelation", want: map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: allowed},
			also: map[role]outcome{follower: "FORBIDDEN", pendingFollower: allowed},
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				// The pending follower's public feed, and how it relates to the owner.
				owner := f.closedFeed(t)
				return `query($f: ID!, $o: ID!) { feed(id: $f) { followRelation(other: $o) { following followedBy } } }`,
					brooktest.Vars{"f": "user:" + f.users[pendingFollower], "o": owner}
			}},
		onClosedActivity("query.activity", `query($a: ID!) { activity(id: $a) { id } }`, followersRead),
		onClosedActivity("mutation.addReaction", `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`, followersRead),
		onClosedFeed("subscription.feedUpdated", "followers-only feed", `subscription($f: ID!) { feedUpdated(feed: $f) { removed } }`,
			ownerOrFollower, followersRead),
		onClosedFeed("mutation.setFeedVisibility", "", `mutation($f: ID!) { setFeedVisibility(feed: $f, visibility: PRIVATE) { visibility } }`,
			ownerOnly, followersNone),
		policy{op: "mutation.acceptFollow", want: ownerOnly, also: followersNone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $f: ID!) { acceptFollow(source: $s, target: $f) { status } }`,
				brooktest.Vars{"f": f.closedFeed(t), "s": "timeline:" + f.users[pendingFollower]}
		}},
		policy{op: "mutation.rejectFollow", want: ownerOnly, also: followersNone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($s: ID!, $f: ID!) { rejectFollow(source: $s, target: $f) }`,
				brooktest.Vars{"f": f.closedFeed(t), "s": "timeline:" + f.users[pendingFollower]}
		}},
		// The pending follower asks again (from its own timeline: no one
		// else's but an admin's).
		policy{op: "mutation.follow", variant: "followers-only feed", want: adminOnly,
			also: map[role]outcome{follower: "FORBIDDEN", pendingFollower: allowed},
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($s: ID!, $f: ID!) { follow(source: $s, target: $f) { status } }`,
					brooktest.Vars{"f": f.closedFeed(t), "s": "timeline:" + f.users[pendingFollower]}
			}},
		policy{op: "query.followSuggestions", want: everyone, also: followersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.closedFeed(t)
			return `{ followSuggestions { feed { id } mutualCount } }`, nil
		}},
	)
}

// closedFeed makes the owner's user feed FOLLOWERS, with the follower's
// request accepted and the pending follower's waiting, and returns its id.
func (f *fixture) closedFeed(t *testing.T) string {
	t.Helper()
	feed := "user:" + f.users[owner]
	own := f.token(t, owner)
	f.node.Must(t, own, `mutation($f: ID!) { setFeedVisibility(feed: $f, visibility: FOLLOWERS) { id } }`, brooktest.Vars{"f": feed}, nil)
	for _, r := range []role{follower, pendingFollower} {
		f.node.Must(t, f.token(t, r), `mutation($s: ID!, $f: ID!) { follow(source: $s, target: $f) { status } }`,
			brooktest.Vars{"s": "timeline:" + f.users[r], "f": feed}, nil)
	}
	f.node.Must(t, own, `mutation($s: ID!, $f: ID!) { acceptFollow(source: $s, target: $f) { status } }`,
		brooktest.Vars{"s": "timeline:" + f.users[follower], "f": feed}, nil)
	return feed
}
