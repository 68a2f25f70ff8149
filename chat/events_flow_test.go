package chat_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Every mutation that changes a channel announces it on channelEvents,
// with who did it and the message concerned, and users added to or
// removed from a channel hear it on myEvents.
func TestChatEventsOfEveryMutation(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "events-"+tag, bob)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) {
		type channel user { id } message { id text type deletedAt reactionCounts { kind count } } } }`, brooktest.Vars{"c": cid})
	mine := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)

	type event struct {
		Type, Channel string
		User          *struct{ ID string }
		Message       *struct {
			ID, Text, Type string
			DeletedAt      *string
			ReactionCounts []struct {
				Kind  string
				Count int
			}
		}
	}
	next := func(typ, user string) event {
		t.Helper()
		var out struct{ ChannelEvents event }
		events.NextData(&out)
		ev := out.ChannelEvents
		if ev.Type != typ || ev.Channel != cid || ev.User == nil || ev.User.ID != user {
			t.Fatalf("got %+v, want %s by %s", ev, typ, user)
		}
		return ev
	}
	do := func(user, q string, vars brooktest.Vars) {
		t.Helper()
		n.Must(t, env.Token(t, user), q, vars, nil)
	}
	m := sendMsg(t, n, alice, cid, "hello")
	if ev := next("message.new", alice); ev.Message == nil || ev.Message.ID != m.ID {
		t.Fatalf("message.new %+v", ev)
	}
	do(alice, `mutation($m: ID!) { updateMessage(id: $m, text: "hello again") { id } }`, brooktest.Vars{"m": m.ID})
	if ev := next("message.updated", alice); ev.Message.Text != "hello again" {
		t.Fatalf("message.updated %+v", ev)
	}
	do(bob, `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID})
	if ev := next("reaction.new", bob); len(ev.Message.ReactionCounts) != 1 || ev.Message.ReactionCounts[0].Count != 1 {
		t.Fatalf("reaction.new %+v", ev)
	}
	do(bob, `mutation($m: ID!) { deleteReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID})
	if ev := next("reaction.deleted", bob); len(ev.Message.ReactionCounts) != 0 {
		t.Fatalf("reaction.deleted %+v", ev)
	}
	do(bob, `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid})
	if ev := next("message.read", bob); ev.Message == nil || ev.Message.ID != m.ID {
		t.Fatalf("message.read %+v", ev)
	}
	do(alice, `mutation($c: ID!) { updateChannel(id: $c, name: "Renamed") { id } }`, brooktest.Vars{"c": cid})
	next("channel.updated", alice)

	var note struct {
		MyEvents struct{ Type, Channel string }
	}
	do(alice, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`, brooktest.Vars{"c": cid, "u": []string{carol}})
	next("member.added", carol)
	if ev := next("message.new", alice); ev.Message == nil || ev.Message.Type != "system" {
		t.Fatalf("the system message of the addition: %+v", ev)
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.added_to_channel" || note.MyEvents.Channel != cid {
		t.Fatalf("carol heard %+v", note)
	}
	do(alice, `mutation($c: ID!, $u: [ID!]!) { removeMembers(channel: $c, userIds: $u) { id } }`, brooktest.Vars{"c": cid, "u": []string{carol}})
	next("member.removed", carol)
	if ev := next("message.new", alice); ev.Message == nil || ev.Message.Type != "system" {
		t.Fatalf("the system message of the removal: %+v", ev)
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.removed_from_channel" || note.MyEvents.Channel != cid {
		t.Fatalf("carol heard %+v", note)
	}

	const del = `mutation($m: ID!) { deleteMessage(id: $m) { type deletedAt updatedAt } }`
	var first, again struct {
		DeleteMessage struct{ Type, DeletedAt, UpdatedAt string }
	}
	n.Must(t, env.Token(t, alice), del, brooktest.Vars{"m": m.ID}, &first)
	if ev := next("message.deleted", alice); ev.Message.DeletedAt == nil {
		t.Fatalf("message.deleted %+v", ev)
	}
	// Deleting again changes nothing and tells no one.
	n.Must(t, env.Token(t, alice), del, brooktest.Vars{"m": m.ID}, &again)
	if again != first || first.DeleteMessage.Type != "deleted" {
		t.Fatalf("second delete %+v, first %+v", again, first)
	}
	events.None(200 * time.Millisecond)
}

// Typing events reach channel subscribers; notifications with totals reach
// the members' myEvents.
func TestChatTypingAndNotifications(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "typing-"+tag, bob)
	ws := n.MustDial(t, env.Token(t, bob))
	events := ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type channel user { id name } message { text user { id } } } }`, brooktest.Vars{"c": cid})
	mine := ws.Subscribe(`subscription { myEvents { type channel totalUnreadCount unreadChannels message { text } } }`, nil)
	waitSubscribed(t, n)

	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { sendTypingEvent(channel: $c) }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { sendTypingEvent(channel: $c, typing: false) }`, brooktest.Vars{"c": cid}, nil)
	type chEv struct {
		ChannelEvents struct {
			Type, Channel string
			User          struct{ ID, Name string }
			Message       *struct {
				Text string
				User struct{ ID string }
			}
		}
	}
	for _, want := range []string{"typing.start", "typing.stop"} {
		var ev chEv
		events.NextData(&ev)
		if ev.ChannelEvents.Type != want || ev.ChannelEvents.User.ID != alice || ev.ChannelEvents.Channel != cid {
			t.Fatalf("event %+v, want %s", ev, want)
		}
	}
	if n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid) != 0 {
		t.Fatal("typing was stored")
	}
	sendMsg(t, n, alice, cid, "ping")
	var ev chEv
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "message.new" || ev.ChannelEvents.Message == nil || ev.ChannelEvents.Message.Text != "ping" || ev.ChannelEvents.Message.User.ID != alice {
		t.Fatalf("message event %+v", ev)
	}
	var note struct {
		MyEvents struct {
			Type, Channel                    string
			TotalUnreadCount, UnreadChannels int
			Message                          struct{ Text string }
		}
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.message_new" || note.MyEvents.TotalUnreadCount != 1 || note.MyEvents.UnreadChannels != 1 || note.MyEvents.Message.Text != "ping" {
		t.Fatalf("notification %+v", note)
	}
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid}, nil)
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.mark_read" || note.MyEvents.TotalUnreadCount != 0 {
		t.Fatalf("mark read notification %+v", note)
	}
}

// Members of a channel above CHAT_PUSH_MEMBER_LIMIT hear of new messages
// on myEvents as members of small channels do, with totals that count
// both kinds of channel.
func TestChatBigChannelNotifications(t *testing.T) {
	// Not parallel: its node's push limit is not the other nodes', whose
	// workers would take its jobs, and it theirs, and count them with the
	// wrong limit (the jobs table is shared).
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave)
	big := createChannel(t, n, alice, "messaging", "big-"+tag, bob, carol, dave) // 4 > 2: pull
	small := createChannel(t, n, alice, "messaging", "small-"+tag, bob)
	mine := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel totalUnreadCount unreadChannels message { text } } }`, nil)
	waitSubscribed(t, n)
	var note struct {
		MyEvents struct {
			Type, Channel                    string
			TotalUnreadCount, UnreadChannels int
			Message                          struct{ Text string }
		}
	}
	for i, m := range []struct{ channel, text string }{{small, "small one"}, {big, "big one"}, {big, "big two"}} {
		sendMsg(t, n, alice, m.channel, m.text)
		mine.NextData(&note)
		wantChannels := 1
		if i > 0 {
			wantChannels = 2
		}
		if note.MyEvents.Type != "notification.message_new" || note.MyEvents.Channel != m.channel || note.MyEvents.Message.Text != m.text ||
			note.MyEvents.TotalUnreadCount != i+1 || note.MyEvents.UnreadChannels != wantChannels {
			t.Fatalf("notification %d: %+v", i, note)
		}
	}
	if got := unreadOf(t, n, bob); got[big] != 2 || got[small] != 1 {
		t.Fatalf("bob's unread %v", got)
	}
	mine.None(200 * time.Millisecond)
}

// Sending marks the channel read for the sender: its other devices hear
// it as notification.mark_read with the new totals.
func TestChatSendingTellsTheSendersDevices(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "devices-"+tag, bob)
	sendMsg(t, n, alice, cid, "one")
	sendMsg(t, n, alice, cid, "two")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); got[cid] != 2 {
		t.Fatalf("bob's unread before he writes: %v", got)
	}
	phone := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel totalUnreadCount unreadChannels } }`, nil)
	waitSubscribed(t, n)
	sendMsg(t, n, bob, cid, "from the laptop")
	var ev struct {
		MyEvents struct {
			Type, Channel                    string
			TotalUnreadCount, UnreadChannels int
		}
	}
	phone.NextData(&ev)
	if ev.MyEvents.Type != "notification.mark_read" || ev.MyEvents.Channel != cid || ev.MyEvents.TotalUnreadCount != 0 || ev.MyEvents.UnreadChannels != 0 {
		t.Fatalf("bob's phone heard %+v", ev.MyEvents)
	}
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
	sent, created, err := n.Store.SendMessage(ctx, cid, alice, store.SendAs{Member: true}, store.MessageInput{Text: "the last word"})
	if err != nil || !created {
		t.Fatalf("send: created %v, %v", created, err)
	}
	sub.None(200 * time.Millisecond)

	// A worker whose bus cannot reach Redis does the message's job: the
	// bookkeeping commits, the publish after it fails.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	deadBus := bus.New(dead, bus.Options{Prefix: env.RedisPrefix + "bus:"})
	t.Cleanup(func() { _ = deadBus.Close(); _ = dead.Close() })
	cut := chatRunner(n, deadBus)
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
	ok := chatRunner(n, n.Bus)
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
	jobs := chatRunner(n, n.Bus)
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

	jobs := chatRunner(n, n.Bus)
	if done, err := jobs.RunOnce(context.Background(), []string{store.ChatMessageKind}); err != nil || done != 1 {
		t.Fatalf("message job: %d done, %v", done, err)
	}
	events.None(300 * time.Millisecond)
	added.None(0)
}

// chatRunner is a job runner for the chat product's jobs only, whose
// Service publishes on b: the tests run its jobs one batch at a time.
func chatRunner(n *brooktest.Node, b *bus.Bus) *workers.Runner {
	r := workers.New(n.Store, b, workers.Options{Concurrency: 1})
	chat.New(chat.Options{Parts: product.Parts{Store: n.Store, State: n.State, Bus: b}}).RegisterJobs(r, 0)
	return r
}
