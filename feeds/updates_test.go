package feeds_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// feedUpdated's updated: edits, reactions and comment counts reach every
// stream that shows the activity, coalesced per activity and subscriber.

const updatesQ = `subscription($f: ID!) { feedUpdated(feed: $f) { added { id } removed
	updated { id data commentCount reactionCounts { kind count } } } }`

// updateMsg is one feedUpdated event of updatesQ.
type updateMsg struct {
	FeedUpdated struct {
		Added   []struct{ ID string }
		Removed []string
		Updated []updatedNode
	}
}

type updatedNode struct {
	ID             string
	Data           json.RawMessage
	CommentCount   int
	ReactionCounts []struct {
		Kind  string
		Count int
	}
}

// state is what a test compares of an updated activity.
func (a updatedNode) state() string {
	var data bytes.Buffer
	if err := json.Compact(&data, a.Data); err != nil {
		data.Write(a.Data)
	}
	return fmt.Sprintf("%v comments:%d data:%s", a.ReactionCounts, a.CommentCount, data.String())
}

func react(t *testing.T, n *brooktest.Node, user, activity, kind string) string {
	t.Helper()
	var out struct{ AddReaction struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k) { id } }`,
		brooktest.Vars{"a": activity, "k": kind}, &out)
	return out.AddReaction.ID
}

// TestFeedUpdatedStreamsChanges follows two activities through every kind
// of change, in two worlds: one where the actor is pushed into its
// followers' timelines, one where it is above the pull threshold and
// merged at read time. The actor's own feed, a follower's timeline and its
// aggregated timeline each get exactly one update per change, with the
// activity's state after it; one activity was in the feeds before the
// streams started (watched from their first page), one came after
// (watched once delivered as added).
func TestFeedUpdatedStreamsChanges(t *testing.T) {
	t.Parallel()
	for _, world := range []struct {
		name      string
		threshold int
	}{{"pushed", 1000}, {"pulled", 1}} {
		t.Run(world.name, func(t *testing.T) {
			n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedPullThreshold = world.threshold }})
			u := feedUsers(t, n, brooktest.Tag(), "star", "fan", "fan2")
			follow(t, n, u["fan"], u["star"], 10)
			follow(t, n, u["fan2"], u["star"], 10) // two followers: above a threshold of 1
			x := post(t, n, u["star"], "x")
			n.WaitForJobs(t)

			subs := map[string]*brooktest.Sub{}
			for _, s := range []struct{ user, feed string }{
				{"star", "user:" + u["star"]}, {"fan", "timeline:" + u["fan"]}, {"fan", "timeline_aggregated:" + u["fan"]},
			} {
				subs[s.feed] = n.MustDial(t, env.Token(t, u[s.user])).Subscribe(updatesQ, brooktest.Vars{"f": s.feed})
			}
			brooktest.Eventually(t, "every stream watches x", func() bool { return feeds.WatchersOf(n.Feeds, x) == len(subs) })

			y := post(t, n, u["star"], "y")
			for feed, sub := range subs {
				var got updateMsg
				sub.NextData(&got)
				if len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != y || len(got.FeedUpdated.Updated) != 0 {
					t.Fatalf("%s: expected y added, got %+v", feed, got.FeedUpdated)
				}
			}

			// expect checks that each stream gets one update: activity id,
			// in state want.
			expect := func(step, id, want string) {
				t.Helper()
				for feed, sub := range subs {
					var got updateMsg
					sub.NextData(&got)
					up := got.FeedUpdated.Updated
					if len(up) != 1 || up[0].ID != id || up[0].state() != want || len(got.FeedUpdated.Added)+len(got.FeedUpdated.Removed) != 0 {
						t.Fatalf("%s, %s: got %+v, want %s in state %s", step, feed, got.FeedUpdated, id, want)
					}
				}
			}
			fanLike := react(t, n, u["fan"], x, "like")
			expect("fan likes x", x, "[{like 1}] comments:0 data:null")
			fan2Like := react(t, n, u["fan2"], x, "like")
			expect("fan2 likes x", x, "[{like 2}] comments:0 data:null")
			n.Must(t, env.Token(t, u["fan"]), `mutation($id: ID!) { removeReaction(id: $id) }`, brooktest.Vars{"id": fanLike}, nil)
			expect("fan unlikes x", x, "[{like 1}] comments:0 data:null")
			n.Must(t, env.Token(t, u["fan2"]), `mutation($id: ID!) { updateReaction(id: $id, data: {emoji: "🔥"}) { id } }`,
				brooktest.Vars{"id": fan2Like}, nil)
			expect("fan2 changes the like", x, "[{like 1}] comments:0 data:null")
			n.Must(t, env.Token(t, u["star"]), `mutation($id: ID!) { updateActivity(id: $id, data: {caption: "edited"}) { id } }`,
				brooktest.Vars{"id": x}, nil)
			expect("star edits x", x, `[{like 1}] comments:0 data:{"caption":"edited"}`)
			c := comment(t, n, u["fan2"], y, "nice", "")
			expect("fan2 comments on y", y, "[] comments:1 data:null")
			reply := comment(t, n, u["star"], y, "thanks", c.ID)
			expect("star replies", y, "[] comments:2 data:null")
			n.Must(t, env.Token(t, u["star"]), `mutation($id: ID!) { deleteComment(id: $id) }`, brooktest.Vars{"id": reply.ID}, nil)
			expect("star deletes the reply", y, "[] comments:1 data:null")
			n.Must(t, env.Token(t, u["fan2"]), `mutation($id: ID!) { deleteComment(id: $id) }`, brooktest.Vars{"id": c.ID}, nil)
			expect("fan2 deletes the comment", y, "[] comments:0 data:null")

			// The jobs of the reactions and comments announced nothing more.
			n.WaitForJobs(t)
			for _, sub := range subs {
				sub.None(400 * time.Millisecond)
			}

			// A removed activity is no longer watched.
			n.Must(t, env.Token(t, u["star"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": x}, nil)
			n.WaitForJobs(t)
			brooktest.Eventually(t, "x is no longer watched", func() bool { return feeds.WatchersOf(n.Feeds, x) == 0 })
		})
	}
}

// TestFeedUpdatedCoalesces sends 20 likes of one activity as fast as the
// API takes them: its subscriber gets the first change at once and the
// rest as one update with the final count when the window ends, never
// more than one update per window.
func TestFeedUpdatedCoalesces(t *testing.T) {
	t.Parallel()
	const window = 3 * time.Second
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.FeedUpdateWindow = window }})
	names := []string{"star"}
	for i := range 20 {
		names = append(names, fmt.Sprintf("fan%d", i))
	}
	u := feedUsers(t, n, brooktest.Tag(), names...)
	x := post(t, n, u["star"], "x")
	sub := n.MustDial(t, env.Token(t, u["star"])).Subscribe(updatesQ, brooktest.Vars{"f": "user:" + u["star"]})
	brooktest.Eventually(t, "the stream watches x", func() bool { return feeds.WatchersOf(n.Feeds, x) == 1 })

	start := time.Now()
	for i := range 20 {
		react(t, n, u[fmt.Sprintf("fan%d", i)], x, "like")
	}
	elapsed := time.Since(start)
	var counts []string
	deadline := time.After(window + time.Second)
	for done := false; !done; {
		select {
		case m := <-sub.C:
			var r brooktest.Response
			var got updateMsg
			if err := json.Unmarshal(m.Payload, &r); err != nil || m.Type != "next" {
				t.Fatalf("unexpected %s %s", m.Type, m.Payload)
			}
			if err := r.Decode(&got); err != nil {
				t.Fatal(err)
			}
			for _, a := range got.FeedUpdated.Updated {
				counts = append(counts, fmt.Sprint(a.ReactionCounts))
			}
		case <-deadline:
			done = true
		}
	}
	// The likes took less than a window (or the bound grows with them):
	// the first update, and one after the window.
	most := 2 + int(elapsed/window)
	if len(counts) == 0 || len(counts) > most || counts[len(counts)-1] != "[{like 20}]" {
		t.Fatalf("20 likes in %v: updates %v, want at most %d, the last with 20 likes", elapsed, counts, most)
	}
	n.WaitForJobs(t)
	sub.None(500 * time.Millisecond)
}

// TestFeedUpdatedEndsWhenAccessIsLost: a stream of another's user feed
// ends with FORBIDDEN when its subscriber may no longer read the feed (it
// became FOLLOWERS, the subscriber unfollowed it, it became PRIVATE); the
// others' streams go on.
func TestFeedUpdatedEndsWhenAccessIsLost(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	u := feedUsers(t, n, brooktest.Tag(), "alice", "bob", "carol", "dave", "erin")
	follow(t, n, u["bob"], u["alice"], 10)
	follow(t, n, u["carol"], u["alice"], 10)
	x := post(t, n, u["alice"], "x")
	n.WaitForJobs(t)
	feed := brooktest.Vars{"f": "user:" + u["alice"]}
	subs := map[string]*brooktest.Sub{}
	for _, name := range []string{"alice", "bob", "carol", "erin"} {
		subs[name] = n.MustDial(t, env.Token(t, u[name])).Subscribe(updatesQ, feed)
	}
	brooktest.Eventually(t, "every stream watches x", func() bool { return feeds.WatchersOf(n.Feeds, x) == len(subs) })
	// forbidden checks that who's stream ended with FORBIDDEN (refused at
	// the start, it comes as a result with the error).
	forbidden := func(who, when string) {
		t.Helper()
		want := "error"
		if who == "dave" {
			want = "next"
		}
		if m := subs[who].Next(); m.Type != want || !strings.Contains(string(m.Payload), `"FORBIDDEN"`) {
			t.Fatalf("%s's stream %s: %s %s", who, when, m.Type, m.Payload)
		}
		delete(subs, who)
	}
	quiet := func() {
		t.Helper()
		for _, s := range subs {
			s.None(200 * time.Millisecond)
		}
	}

	setVisibility(t, n, u["alice"], "FOLLOWERS")
	forbidden("erin", "once the feed is for followers")
	quiet()

	unfollow(t, n, u["bob"], u["alice"], false)
	forbidden("bob", "after unfollowing")
	quiet()

	// A pending follower never reads it; a rejection changes nothing.
	if got := followStatus(t, n, u["dave"], u["alice"], 10); got != "PENDING" {
		t.Fatalf("dave's follow: %s", got)
	}
	subs["dave"] = n.MustDial(t, env.Token(t, u["dave"])).Subscribe(updatesQ, feed)
	forbidden("dave", "while pending")
	if r := answer(t, n, env.Token(t, u["alice"]), "rejectFollow", u["dave"], u["alice"]); r.Code() != "" {
		t.Fatalf("rejectFollow: %+v", r.Errors)
	}
	quiet()

	setVisibility(t, n, u["alice"], "PRIVATE")
	forbidden("carol", "once the feed is private")

	// Its owner's stream goes on.
	react(t, n, u["alice"], x, "like")
	var got updateMsg
	subs["alice"].NextData(&got)
	if len(got.FeedUpdated.Updated) != 1 || got.FeedUpdated.Updated[0].state() != "[{like 1}] comments:0 data:null" {
		t.Fatalf("alice's stream after the changes: %+v", got.FeedUpdated)
	}
}

// TestFeedUpdatedReadsOncePerNode: a like of an activity ten streams of a
// node show costs that node two statements (the activity and its reaction
// counts), however many streams deliver it, reactionCounts included.
func TestFeedUpdatedReadsOncePerNode(t *testing.T) {
	t.Parallel()
	writer := env.StartNode(t, brooktest.NodeOptions{})
	// Streams on a node without workers: their polling would count too.
	reader := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	names := []string{"star"}
	for i := range 10 {
		names = append(names, fmt.Sprintf("fan%d", i))
	}
	u := feedUsers(t, writer, brooktest.Tag(), names...)
	var subs []*brooktest.Sub
	for _, name := range names[1:] {
		follow(t, writer, u[name], u["star"], 0)
	}
	x := post(t, writer, u["star"], "x")
	writer.WaitForJobs(t)
	for _, name := range names[1:] {
		subs = append(subs, reader.MustDial(t, env.Token(t, u[name])).Subscribe(updatesQ, brooktest.Vars{"f": "timeline:" + u[name]}))
	}
	brooktest.Eventually(t, "every stream watches x", func() bool { return feeds.WatchersOf(reader.Feeds, x) == len(subs) })

	before := reader.Store.Statements()
	react(t, writer, u["fan0"], x, "like")
	for i, sub := range subs {
		var got updateMsg
		sub.NextData(&got)
		if len(got.FeedUpdated.Updated) != 1 || got.FeedUpdated.Updated[0].state() != "[{like 1}] comments:0 data:null" {
			t.Fatalf("stream %d: %+v", i, got.FeedUpdated)
		}
	}
	if n := reader.Store.Statements() - before; n != 2 {
		t.Fatalf("delivering a like to %d streams cost the node %d statements, want 2", len(subs), n)
	}
}
