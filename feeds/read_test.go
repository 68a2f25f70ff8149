package feeds_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// Aggregation (groups by verb and day) and seen and read marks.

func TestFeedAggregationAndSeenRead(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	mention := func(user, verb, object string) { notify(t, n, user, u["bob"], verb, object) }
	mention(u["alice"], "mention", "m1")
	mention(u["carol"], "like", "l1")
	mention(u["alice"], "mention", "m2")
	mention(u["carol"], "mention", "m3")
	n.WaitForJobs(t)
	bob := env.Token(t, u["bob"])
	feed := "notification:" + u["bob"]
	groups, unseen, unread := feedGroups(t, n, bob, feed)
	day := time.Now().UTC().Format(time.DateOnly)
	if len(groups) != 2 || unseen != 2 || unread != 2 {
		t.Fatalf("groups %+v unseen %d unread %d", groups, unseen, unread)
	}
	m := groups[0]
	if m.ID != "mention/"+day || m.ActivityCount != 3 || m.ActorCount != 2 || len(m.Actors) != 2 || m.Actors[0].ID != u["carol"] ||
		fmt.Sprint(m.Activities) != "[{m3} {m2} {m1}]" || m.IsSeen || m.IsRead {
		t.Fatalf("mention group = %+v", m)
	}
	if groups[1].ID != "like/"+day || groups[1].ActivityCount != 1 {
		t.Fatalf("like group = %+v", groups[1])
	}

	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{"like/" + day}}, nil)
	groups, unseen, unread = feedGroups(t, n, bob, feed)
	if unseen != 1 || unread != 2 || !groups[1].IsSeen || groups[0].IsSeen {
		t.Fatalf("after marking like seen: unseen %d unread %d %+v", unseen, unread, groups)
	}
	// An empty list of groups marks nothing, as a literal and as a variable.
	n.Must(t, bob, `mutation($f: ID!) { markFeedRead(feed: $f, groups: []) { unreadCount } }`, brooktest.Vars{"f": feed}, nil)
	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`, brooktest.Vars{"f": feed, "g": []string{}}, nil)
	if _, unseen, unread = feedGroups(t, n, bob, feed); unseen != 1 || unread != 2 {
		t.Fatalf("after marking no groups: unseen %d unread %d", unseen, unread)
	}
	n.Must(t, bob, `mutation($f: ID!) { markFeedRead(feed: $f) { unreadCount } }`, brooktest.Vars{"f": feed}, nil)
	if _, unseen, unread = feedGroups(t, n, bob, feed); unseen != 0 || unread != 0 {
		t.Fatalf("after marking all read: unseen %d unread %d", unseen, unread)
	}
	// A new activity in a seen group makes it unseen again.
	mention(u["alice"], "like", "l2")
	n.WaitForJobs(t)
	groups, unseen, unread = feedGroups(t, n, bob, feed)
	if unseen != 1 || unread != 1 || groups[0].ID != "like/"+day || groups[0].IsSeen || groups[0].ActivityCount != 2 {
		t.Fatalf("after a new like: unseen %d unread %d %+v", unseen, unread, groups)
	}

	// timeline_aggregated groups what the timeline shows.
	follow(t, n, u["bob"], u["alice"], 100)
	follow(t, n, u["bob"], u["carol"], 100)
	n.WaitForJobs(t)
	groups, _, _ = feedGroups(t, n, bob, "timeline_aggregated:"+u["bob"])
	if len(groups) != 2 || groups[0].ID != "like/"+day || groups[0].ActivityCount != 2 || groups[1].ActivityCount != 3 {
		t.Fatalf("timeline_aggregated groups = %+v", groups)
	}
}

// Copies and groups at their edges: a verb holding "/" still names a
// group that can be marked; a copy to a timeline_aggregated feed (which
// only shows its timeline) or to a feed of no user is refused with
// nothing written; timeline_aggregated counts its timeline's follows.
func TestFeedCopiesAndGroupsAtTheirEdges(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	u := feedUsers(t, n, tag, "alice", "bob")
	add := func(to []string, verb string) *brooktest.Response {
		return n.Query(t, env.Token(t, u["alice"]), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": "user:" + u["alice"], "in": map[string]any{"verb": verb, "object": "photo:1", "to": to}})
	}
	if r := add([]string{"notification:" + u["bob"]}, "photo/upload"); len(r.Errors) > 0 {
		t.Fatalf("post: %+v", r.Errors)
	}
	n.WaitForJobs(t)
	bob := env.Token(t, u["bob"])
	feed := "notification:" + u["bob"]
	groups, unseen, _ := feedGroups(t, n, bob, feed)
	day := time.Now().UTC().Format(time.DateOnly)
	if len(groups) != 1 || groups[0].ID != "photo/upload/"+day || unseen != 1 {
		t.Fatalf("groups %+v, unseen %d", groups, unseen)
	}
	n.Must(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{groups[0].ID}}, nil)
	if groups, unseen, _ = feedGroups(t, n, bob, feed); unseen != 0 || !groups[0].IsSeen {
		t.Fatalf("after marking %s seen: unseen %d, %+v", "photo/upload/"+day, unseen, groups)
	}
	brooktest.WantCode(t, n.Query(t, bob, `mutation($f: ID!, $g: [ID!]) { markFeedSeen(feed: $f, groups: $g) { unseenCount } }`,
		brooktest.Vars{"f": feed, "g": []string{"photo/upload"}}), "BAD_USER_INPUT")

	before := n.Count(t, `SELECT count(*) FROM activities WHERE actor_id = $1`, u["alice"])
	brooktest.WantCode(t, add([]string{"timeline_aggregated:" + u["alice"]}, "post"), "BAD_USER_INPUT")
	brooktest.WantCode(t, add([]string{"notification:" + u["bob"], "notification:ghost-" + tag}, "post"), "NOT_FOUND")
	if after := n.Count(t, `SELECT count(*) FROM activities WHERE actor_id = $1`, u["alice"]); after != before {
		t.Fatalf("refused copies wrote %d activities", after-before)
	}

	follow(t, n, u["bob"], u["alice"], 10)
	var counts struct {
		Timeline, Aggregated struct {
			FollowingCount int
			Following      struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
	}
	n.Must(t, bob, `query($t: ID!, $a: ID!) { timeline: feed(id: $t) { followingCount following { edges { node { id } } } }
		aggregated: feed(id: $a) { followingCount following { edges { node { id } } } } }`,
		brooktest.Vars{"t": "timeline:" + u["bob"], "a": "timeline_aggregated:" + u["bob"]}, &counts)
	if counts.Timeline.FollowingCount != 1 || counts.Aggregated.FollowingCount != 1 || len(counts.Aggregated.Following.Edges) != 1 {
		t.Fatalf("following: %+v", counts)
	}
}

// Paging through groups shows each group once, whole: a group whose
// activities straddle a page's cursor is not shown again with its older
// ones.
func TestFeedGroupPages(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol")
	mention := func(user, verb, object string) { notify(t, n, user, u["bob"], verb, object) }
	mention(u["alice"], "mention", "a1")
	mention(u["carol"], "like", "b1")
	mention(u["alice"], "mention", "a2")
	n.WaitForJobs(t)
	var seen []string
	after := ""
	for page := 0; page < 5; page++ {
		var out struct {
			Feed struct {
				Groups struct {
					Edges []struct {
						Node struct {
							Verb          string
							ActivityCount int
						}
					}
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
		}
		vars := brooktest.Vars{"f": "notification:" + u["bob"]}
		if after != "" {
			vars["after"] = after
		}
		n.Must(t, env.Token(t, u["bob"]), `query($f: ID!, $after: String) { feed(id: $f) { groups(first: 1, after: $after) {
			edges { node { verb activityCount } } pageInfo { hasNextPage endCursor } } } }`, vars, &out)
		for _, e := range out.Feed.Groups.Edges {
			seen = append(seen, fmt.Sprintf("%s(%d)", e.Node.Verb, e.Node.ActivityCount))
		}
		if !out.Feed.Groups.PageInfo.HasNextPage {
			break
		}
		after = out.Feed.Groups.PageInfo.EndCursor
	}
	if fmt.Sprint(seen) != "[mention(2) like(1)]" {
		t.Fatalf("groups page by page: %v", seen)
	}
}
