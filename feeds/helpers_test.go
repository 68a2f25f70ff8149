package feeds_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// feedUsers creates users named tag-name and returns their ids by name.
func feedUsers(t *testing.T, n *brooktest.Node, tag string, names ...string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	var all []string
	for _, name := range names {
		ids[name] = tag + "-" + name
		all = append(all, ids[name])
	}
	env.AddUsers(t, n, all...)
	return ids
}

type activityNode struct {
	ID, Verb, Object string
	ForeignID        *string
	Actor            struct{ ID string }
}

// post adds an activity by user to user:<user> and returns its id.
func post(t *testing.T, n *brooktest.Node, user, object string) string {
	t.Helper()
	var out struct{ AddActivity activityNode }
	n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id verb object } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": "post", "object": object}}, &out)
	return out.AddActivity.ID
}

// notify posts an activity by user to user:<user> with a copy to
// notification:<to>.
func notify(t *testing.T, n *brooktest.Node, user, to, verb, object string) {
	t.Helper()
	n.Must(t, env.Token(t, user), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": verb, "object": object, "to": []string{"notification:" + to}}}, nil)
}

func follow(t *testing.T, n *brooktest.Node, user, target string, limit int) {
	t.Helper()
	n.Must(t, env.Token(t, user), `mutation($s: ID!, $t: ID!, $l: Int) { follow(source: $s, target: $t, activityCopyLimit: $l) { createdAt } }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target, "l": limit}, nil)
}

func unfollow(t *testing.T, n *brooktest.Node, user, target string, keep bool) bool {
	t.Helper()
	var out struct{ Unfollow bool }
	n.Must(t, env.Token(t, user), `mutation($s: ID!, $t: ID!, $k: Boolean) { unfollow(source: $s, target: $t, keepHistory: $k) }`,
		brooktest.Vars{"s": "timeline:" + user, "t": "user:" + target, "k": keep}, &out)
	return out.Unfollow
}

// feedObjects reads a whole feed, page by page, as "actor:object" strings.
func feedObjects(t *testing.T, n *brooktest.Node, token, feed string, pageSize int) []string {
	t.Helper()
	var out []string
	var after *string
	for {
		var page struct {
			Feed struct {
				Activities struct {
					Edges    []struct{ Node activityNode }
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		n.Must(t, token, `query($f: ID!, $n: Int, $a: String) { feed(id: $f) { activities(first: $n, after: $a) {
			edges { node { id object actor { id } } } pageInfo { hasNextPage endCursor } } } }`,
			brooktest.Vars{"f": feed, "n": pageSize, "a": after}, &page)
		for _, e := range page.Feed.Activities.Edges {
			out = append(out, e.Node.Actor.ID+":"+e.Node.Object)
		}
		if !page.Feed.Activities.PageInfo.HasNextPage {
			return out
		}
		after = page.Feed.Activities.PageInfo.EndCursor
	}
}

type groupNode struct {
	ID                        string
	Verb                      string
	ActivityCount, ActorCount int
	IsSeen, IsRead            bool
	Actors                    []struct{ ID string }
	Activities                []struct{ Object string }
}

func feedGroups(t *testing.T, n *brooktest.Node, token, feed string) (groups []groupNode, unseen, unread int) {
	t.Helper()
	var out struct {
		Feed struct {
			UnseenCount, UnreadCount int
			Groups                   struct{ Edges []struct{ Node groupNode } }
		}
	}
	n.Must(t, token, `query($f: ID!) { feed(id: $f) { unseenCount unreadCount groups { edges { node {
		id verb activityCount actorCount isSeen isRead actors(first: 10) { id } activities { object } } } } } }`,
		brooktest.Vars{"f": feed}, &out)
	for _, e := range out.Feed.Groups.Edges {
		groups = append(groups, e.Node)
	}
	return groups, out.Feed.UnseenCount, out.Feed.UnreadCount
}

// feedUpdate is a feedUpdated event as the stream tests read it.
type feedUpdate struct {
	FeedUpdated struct {
		Feed    struct{ ID string }
		Added   []activityNode
		Removed []string
	}
}

// expectAdded reads sub's next event and fails unless it adds exactly id
// and removes nothing.
func expectAdded(t *testing.T, sub *brooktest.Sub, id string) {
	t.Helper()
	var got feedUpdate
	sub.NextData(&got)
	if len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != id || len(got.FeedUpdated.Removed) != 0 {
		t.Fatalf("expected only %s added, got %+v", id, got.FeedUpdated)
	}
}
