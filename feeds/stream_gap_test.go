package feeds_test

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// TestFeedUpdatedCatchesUpAfterAGap cuts a node off Redis while a
// feedUpdated stream of it is open, and posts meanwhile: the event of
// that post never reaches the node, so once its bus reconnects and
// signals the gap the stream must read the timeline again and deliver
// the missed activity, once, without sending the start page again, and
// announce as removed the activities removed meanwhile that it had shown
// (one of its start page, one it delivered).
func TestFeedUpdatedCatchesUpAfterAGap(t *testing.T) {
	if env.Redis == nil {
		t.Skip("needs the test binary's own Redis server: it adds an ACL user to cut one node off")
	}
	ctx := context.Background()
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })

	// Node b connects as a user of its own, so that only its pub/sub
	// connection can be killed and kept from subscribing again: without
	// channel permissions its SUBSCRIBE is refused, while its other
	// commands still succeed. (Turning the whole user off made every
	// command of b fail; on a loaded machine the outage then lasted long
	// enough for b's Redis guard to open its circuit, which ends the
	// stream with UNAVAILABLE by design, before the gap was seen.)
	user, pass := "gap-"+brooktest.Tag(), "secret"
	acl := func(rules ...any) {
		t.Helper()
		if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", user}, rules...)...).Err(); err != nil {
			t.Fatalf("ACL SETUSER %v: %v", rules, err)
		}
	}
	acl("on", ">"+pass, "~*", "&*", "+@all")
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	bURL, err := url.Parse(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	bURL.User = url.UserPassword(user, pass)

	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.RedisURL = bURL.String() }})
	u := feedUsers(t, a, brooktest.Tag(), "alice", "bob")
	follow(t, a, u["alice"], u["bob"], 100)
	post(t, a, u["bob"], "old")            // on the start page, stays
	shown := post(t, a, u["bob"], "shown") // on the start page, removed in the gap
	a.WaitForJobs(t)

	ws := b.MustDial(t, env.Token(t, u["alice"]))
	sub := ws.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { added { id object } removed } }`,
		brooktest.Vars{"f": "timeline:" + u["alice"]})
	brooktest.Eventually(t, "subscribed", func() bool { _, s := b.Bus.Stats(); return s > 0 })
	b.WaitSubscribed(t)                  // in Redis too: the next post is published from node a
	live := post(t, a, u["bob"], "live") // delivered, then removed in the gap
	expectAdded(t, sub, live)

	// Cut b off: its subscription connection dies and cannot subscribe
	// again, so the fan-out's events for the post and the removals are
	// published to no one on b.
	acl("resetchannels")
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub", "USER", user).Err(); err != nil {
		t.Fatal(err)
	}
	missed := post(t, a, u["bob"], "missed")
	for _, id := range []string{shown, live} {
		a.Must(t, env.Token(t, u["bob"]), `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": id}, nil)
	}
	a.WaitForJobs(t)
	acl("&*")

	// The gap brings the missed activity and the two removals, once; the
	// next update is the next post's: anything re-sent (the start page,
	// the missed activity or a removal twice) would come before it.
	var got feedUpdate
	sub.NextData(&got)
	removed := slices.Clone(got.FeedUpdated.Removed)
	slices.Sort(removed)
	want := []string{shown, live}
	slices.Sort(want)
	if len(got.FeedUpdated.Added) != 1 || got.FeedUpdated.Added[0].ID != missed || !slices.Equal(removed, want) {
		t.Fatalf("after the gap: got %+v, want %s added and %v removed", got.FeedUpdated, missed, want)
	}
	after := post(t, a, u["bob"], "after")
	expectAdded(t, sub, after)
}
