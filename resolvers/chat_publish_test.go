package resolvers_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// channelWithoutWorkers starts a node whose jobs only the test runs, and
// a messaging channel of two new users, alice and bob, named after prefix.
func channelWithoutWorkers(t *testing.T, prefix string) (n *brooktest.Node, alice, bob, cid string) {
	n = env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob = prefix+"-alice-"+tag, prefix+"-bob-"+tag
	callUsers(t, n, alice, bob)
	return n, alice, bob, createChannel(t, n, alice, "messaging", prefix+"-"+tag, bob)
}

// A message whose message.new could not be published (Redis refused it
// after the job committed) is published again by a durable job: a live
// subscriber gets it without waiting for a later message to reveal the gap.
// (Not parallel: other tests' workers would take the jobs.)
func TestMessageEventPublishedAgainAfterAFailedPublish(t *testing.T) {
	n, alice, bob, cid := channelWithoutWorkers(t, "pub")
	sub := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id text } }`,
		brooktest.Vars{"c": cid})
	sub.None(200 * time.Millisecond) // live, and nothing to replay
	// Sent as by a node that stopped before its own publish: only the
	// message's job is left to publish it.
	ctx := context.Background()
	sent, created, err := n.Store.SendMessage(ctx, cid, alice, true, store.MessageInput{Text: "the last word"})
	if err != nil || !created {
		t.Fatalf("send: created %v, %v", created, err)
	}
	sub.None(200 * time.Millisecond)

	// A worker whose bus cannot reach Redis does the message's job: the
	// bookkeeping commits, the publish after it fails.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	deadBus := bus.New(dead, bus.Options{Prefix: env.RedisPrefix + "bus:"})
	t.Cleanup(func() { _ = deadBus.Close(); _ = dead.Close() })
	cut := workers.New(n.Store, deadBus, workers.Options{Concurrency: 1})
	if done, err := cut.RunOnce(ctx, []string{store.ChatMessageKind}); err != nil || done != 1 {
		t.Fatalf("message job: %d done, %v", done, err)
	}
	var queued int
	if err := n.Store.DB().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = $1 AND payload->>'message' = $2`,
		store.ChatMessageEventKind, sent.ID.String()).Scan(&queued); err != nil || queued != 1 {
		t.Fatalf("republish jobs queued: %d, %v", queued, err)
	}
	sub.None(200 * time.Millisecond)

	// A worker that reaches Redis publishes it; the subscriber gets it once.
	ok := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1})
	if done, err := ok.RunOnce(ctx, []string{store.ChatMessageEventKind}); err != nil || done != 1 {
		t.Fatalf("republish job: %d done, %v", done, err)
	}
	var got struct{ MessageAdded struct{ ID, Text string } }
	sub.NextData(&got)
	if got.MessageAdded.ID != sent.ID.String() || got.MessageAdded.Text != "the last word" {
		t.Fatalf("subscriber got %+v, want %s", got.MessageAdded, sent.ID)
	}
	sub.None(200 * time.Millisecond)
}

// Sending marks the channel read for the sender at once, in Redis too:
// before the message's job has run, the sender's count is already what
// PostgreSQL says, never more. (Not parallel: other tests' workers would
// take the jobs.)
func TestSendingMarksReadBeforeTheJobRuns(t *testing.T) {
	n, alice, bob, cid := channelWithoutWorkers(t, "read")
	ctx := context.Background()
	jobs := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1})
	runJobs := func(want int) {
		t.Helper()
		if done, err := jobs.RunOnce(ctx, []string{store.ChatMessageKind}); err != nil || done != want {
			t.Fatalf("message jobs: %d done, %v; want %d", done, err, want)
		}
	}
	sendMsg(t, n, alice, cid, "one")
	sendMsg(t, n, alice, cid, "two")
	runJobs(2)
	if got := unreadOf(t, n, bob)[cid]; got != 2 {
		t.Fatalf("bob's unread before he writes: %d, want 2", got)
	}

	sendMsg(t, n, bob, cid, "my turn")
	truth, err := n.Store.UnreadCountsFromDB(ctx, bob)
	if err != nil || truth.TotalUnreadCount != 0 {
		t.Fatalf("bob's unread in postgres after sending: %+v, %v", truth, err)
	}
	if got := unreadOf(t, n, bob)[cid]; got != 0 {
		t.Fatalf("bob's unread after sending, before the job: %d, want 0", got)
	}
	runJobs(1)
	if got := unreadOf(t, n, bob)[cid]; got != 0 {
		t.Fatalf("bob's unread after the job: %d, want 0", got)
	}
	if got := unreadOf(t, n, alice)[cid]; got != 1 {
		t.Fatalf("alice's unread after the job: %d, want 1", got)
	}
}

// sendMessage publishes message.new itself, before the message's job has
// run, and the job, which would publish it if the request had not, does
// not publish it again: channelEvents delivers it exactly once. (Not
// parallel: other tests' workers would take the jobs.)
func TestMessageNewPublishedOnceBeforeTheJob(t *testing.T) {
	n, alice, bob, cid := channelWithoutWorkers(t, "once")
	events := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { id text user { id } } } }`,
		brooktest.Vars{"c": cid})
	added := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id } }`,
		brooktest.Vars{"c": cid})
	events.None(200 * time.Millisecond)
	added.None(0)
	sent := sendMsg(t, n, alice, cid, "at once")

	type chEv struct {
		ChannelEvents struct {
			Type    string
			Message struct {
				ID, Text string
				User     struct{ ID string }
			}
		}
	}
	var ev chEv
	events.NextData(&ev)
	if e := ev.ChannelEvents; e.Type != "message.new" || e.Message.ID != sent.ID || e.Message.Text != "at once" || e.Message.User.ID != alice {
		t.Fatalf("event before the job: %+v", e)
	}
	var got struct{ MessageAdded struct{ ID string } }
	added.NextData(&got)
	if got.MessageAdded.ID != sent.ID {
		t.Fatalf("messageAdded before the job: %+v", got)
	}
	var pending int
	if err := n.Store.DB().QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE kind = $1 AND payload->>'message' = $2`,
		store.ChatMessageKind, sent.ID).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("the message's job: %d pending, %v", pending, err)
	}

	jobs := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1})
	if done, err := jobs.RunOnce(context.Background(), []string{store.ChatMessageKind}); err != nil || done != 1 {
		t.Fatalf("message job: %d done, %v", done, err)
	}
	events.None(300 * time.Millisecond)
	added.None(0)
}

// Chat streams park between events (they hold no goroutine while idle):
// each still delivers after idling, and each ends, leaving nothing behind,
// when its client completes it while it is parked. (Not parallel: it
// counts the process's goroutines.)
func TestChatParkedStreamsDeliverAndEnd(t *testing.T) {
	n, alice, bob, cid := channelWithoutWorkers(t, "park")
	ws := n.MustDial(t, env.Token(t, bob))
	added := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	events := ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type } }`, brooktest.Vars{"c": cid})
	for _, text := range []string{"one", "two", "three"} {
		time.Sleep(100 * time.Millisecond) // idle: parked
		sendMsg(t, n, alice, cid, text)
		var got struct{ MessageAdded struct{ Text string } }
		added.NextData(&got)
		var ev struct{ ChannelEvents struct{ Type string } }
		events.NextData(&ev)
		if got.MessageAdded.Text != text || ev.ChannelEvents.Type != "message.new" {
			t.Fatalf("after idling: %+v, %+v; want %q", got, ev, text)
		}
	}
	added.Complete()
	events.Complete()
	brooktest.Eventually(t, "the streams end", func() bool { _, s := n.Bus.Stats(); return s == 0 })

	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 100; i++ {
		subs := []*brooktest.Sub{
			ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, brooktest.Vars{"c": cid}),
			ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type } }`, brooktest.Vars{"c": cid}),
			ws.Subscribe(`subscription { myEvents { type } }`, nil),
		}
		brooktest.Eventually(t, "subscribed", func() bool { _, s := n.Bus.Stats(); return s == 3 })
		for _, s := range subs {
			s.Complete()
		}
		brooktest.Eventually(t, "completed streams end", func() bool { _, s := n.Bus.Stats(); return s == 0 })
	}
	brooktest.Eventually(t, "no goroutine left behind", func() bool { return runtime.NumGoroutine() <= before })
}
