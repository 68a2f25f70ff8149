package feeds_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// feedUpdated: live updates across nodes, following the merged set.

func TestFeedUpdatedAcrossNodes(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	u := feedUsers(t, a, brooktest.Tag(), "alice", "bob")
	follow(t, a, u["alice"], u["bob"], 100)
	a.WaitForJobs(t)

	ws := b.MustDial(t, env.Token(t, u["alice"]))
	sub := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { feed { id } added { id object actor { id } } removed } }`,
		brooktest.Vars{"f": "timeline:" + u["alice"]})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := b.Bus.Stats(); return s > 0 })
	b.WaitSubscribed(t) // in Redis too: the post is published from node a
	id := post(t, a, u["bob"], "hello")
	var got feedUpdate
	sub.NextData(&got)
	if got.FeedUpdated.Feed.ID != "timeline:"+u["alice"] || len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != id ||
		got.FeedUpdated.Added[0].Actor.ID != u["bob"] {
		t.Fatalf("update = %+v", got)
	}
	a.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": id}, nil)
	sub.NextData(&got)
	if !slices.Equal(got.FeedUpdated.Removed, []string{id}) {
		t.Fatalf("removal update = %+v", got)
	}
	sub.Complete()

	// Someone else's timeline is not theirs to watch.
	other := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { removed } }`, brooktest.Vars{"f": "timeline:" + u["bob"]})
	m := other.Next()
	if !strings.Contains(string(m.Payload), "FORBIDDEN") {
		t.Fatalf("subscribing to another's timeline: %s %s", m.Type, m.Payload)
	}
}

// TestFeedUpdatedFollowsTheMergedSet keeps one timeline subscription open
// while the feeds it merges at read time change under it: a followed actor
// crossing the pull threshold through someone else's follow, falling back
// below it, and the reader unfollowing it while it is merged. Its live
// updates must match what reading the timeline shows throughout: every
// post once, none after the unfollow, and the unfollowed actor's
// activities announced as removed.
func TestFeedUpdatedFollowsTheMergedSet(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = 2 }})
	u := feedUsers(t, n, brooktest.Tag(), "reader", "star", "fan1", "fan2")
	follow(t, n, u["reader"], u["star"], 0)
	follow(t, n, u["fan1"], u["star"], 0) // two followers: not above 2, pushed

	ws := n.MustDial(t, env.Token(t, u["reader"]))
	sub := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { added { id object } removed } }`,
		brooktest.Vars{"f": "timeline:" + u["reader"]})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := n.Bus.Stats(); return s >= 2 })

	pushed := post(t, n, u["star"], "pushed")
	expectAdded(t, sub, pushed)

	// fan2's follow takes star above the threshold: star is merged at read
	// time from now on, and never written into the reader's timeline.
	// Bus subscribers of feeds, leaving out those of the activities the
	// stream watches for changes (one each).
	feedSubs := func() int { _, s := n.Bus.Stats(); return s - feeds.WatchedActivities(n.Feeds) }
	base := feedSubs()
	follow(t, n, u["fan2"], u["star"], 0)
	// A post in the moment before the stream listens to star's feed
	// arrives only in reads (the README says so): wait for it.
	listening := func() bool { return feedSubs() == base+1 }
	brooktest.Eventually(t, "the stream listens to star's feed", listening)
	merged := post(t, n, u["star"], "merged")
	expectAdded(t, sub, merged)
	sub.None(300 * time.Millisecond)

	// fan2 leaves: star falls back to fan-out on write, and the stream
	// stops listening to star's own feed; a post still arrives once.
	unfollow(t, n, u["fan2"], u["star"], false)
	n.WaitForJobs(t)
	again := post(t, n, u["star"], "pushed again")
	expectAdded(t, sub, again)
	sub.None(300 * time.Millisecond)
	brooktest.Eventually(t, "the stream no longer listens to star's feed", func() bool { return feedSubs() == base })

	// Merged once more, then unfollowed by the reader: what the timeline
	// showed of star goes, and star's next post does not arrive.
	follow(t, n, u["fan2"], u["star"], 0)
	brooktest.Eventually(t, "the stream listens to star's feed again", listening)
	last := post(t, n, u["star"], "merged again")
	expectAdded(t, sub, last)
	unfollow(t, n, u["reader"], u["star"], false)
	n.WaitForJobs(t)
	var got feedUpdate
	sub.NextData(&got)
	for _, id := range []string{pushed, merged, again, last} {
		if !slices.Contains(got.FeedUpdated.Removed, id) {
			t.Fatalf("after the unfollow: removed %v, want %s among them", got.FeedUpdated.Removed, id)
		}
	}
	post(t, n, u["star"], "not followed")
	sub.None(300 * time.Millisecond)
	if objects := feedObjects(t, n, env.Token(t, u["reader"]), "timeline:"+u["reader"], 10); len(objects) != 0 {
		t.Fatalf("timeline after the unfollow: %v", objects)
	}

	// Followed again with a backfill: activities removed before come back.
	follow(t, n, u["reader"], u["star"], 10)
	n.WaitForJobs(t)
	sub.NextData(&got)
	var back []string
	for _, a := range got.FeedUpdated.Added {
		back = append(back, a.ID)
	}
	if !slices.Contains(back, last) || !slices.Contains(back, pushed) {
		t.Fatalf("after following again: added %v, want %s and %s among them", back, last, pushed)
	}
}
