package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// A client whose connection drops in the middle of a burst resumes with
// after: and gets every message exactly once, in order.
func TestChatMessageAddedResume(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "burst-"+tag, bob)
	const total = 40
	q := `subscription($c: ID!, $after: ID) { messageAdded(channel: $c, after: $after) { id text } }`
	type added struct{ MessageAdded struct{ ID, Text string } }

	ws := n.MustDial(t, env.Token(t, bob))
	sub := ws.Subscribe(q, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			in := map[string]any{"text": fmt.Sprintf("m%02d", i)}
			if err := n.Client(env.Token(t, alice)).Run(context.Background(),
				`mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
				brooktest.Vars{"c": cid, "in": in}, nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var got []string
	var lastID string
	for len(got) < 12 {
		var ev added
		sub.NextData(&ev)
		got = append(got, ev.MessageAdded.Text)
		lastID = ev.MessageAdded.ID
	}
	_ = ws.Close() // the connection drops mid-burst
	time.Sleep(100 * time.Millisecond)
	ws2 := n.MustDial(t, env.Token(t, bob))
	sub2 := ws2.Subscribe(q, brooktest.Vars{"c": cid, "after": lastID})
	for len(got) < total {
		var ev added
		sub2.NextData(&ev)
		got = append(got, ev.MessageAdded.Text)
	}
	<-done
	sub2.None(300 * time.Millisecond)
	for i, text := range got {
		if want := fmt.Sprintf("m%02d", i); text != want {
			t.Fatalf("message %d is %q, want %q: %v", i, text, want, got)
		}
	}
}

// A message sent on one node reaches subscribers on another.
func TestChatTwoNodes(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, a, alice, bob)
	cid := createChannel(t, a, alice, "messaging", "nodes-"+tag, bob)
	ws := b.MustDial(t, env.Token(t, bob))
	added := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text user { name } } }`, brooktest.Vars{"c": cid})
	mine := ws.Subscribe(`subscription { myEvents { type totalUnreadCount } }`, nil)
	waitSubscribed(t, b)
	sendMsg(t, a, alice, cid, "across")
	var ev struct {
		MessageAdded struct {
			Text string
			User struct{ Name string }
		}
	}
	added.NextData(&ev)
	if ev.MessageAdded.Text != "across" || ev.MessageAdded.User.Name == "" {
		t.Fatalf("event %+v", ev)
	}
	var note struct {
		MyEvents struct {
			Type             string
			TotalUnreadCount int
		}
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.message_new" || note.MyEvents.TotalUnreadCount != 1 {
		t.Fatalf("notification %+v", note)
	}
}

// Delivering a message runs no query on the subscribers' node, even for
// the reaction fields: the event carries the new message's (empty)
// reactions, and a reaction's event its counts. (ownReactions of a message
// with reactions is the viewer's own, and is read.)
func TestChatDeliveryRunsNoQueryPerSubscriber(t *testing.T) {
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, a, alice, bob)
	cid := createChannel(t, a, alice, "messaging", "quiet-"+tag, bob)
	ws := b.MustDial(t, env.Token(t, bob))
	var subs []*brooktest.Sub
	for i := 0; i < 5; i++ {
		subs = append(subs,
			ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id reactionCounts { kind count } ownReactions { kind } latestReactions { kind } } }`,
				brooktest.Vars{"c": cid}),
			ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { reactionCounts { kind count } } } }`,
				brooktest.Vars{"c": cid}))
	}
	waitSubscribed(t, b)
	before := b.Store.Statements()
	m := sendMsg(t, a, alice, cid, "quiet")
	for _, s := range subs {
		if got := s.Next(); got.Type != "next" || !strings.Contains(string(got.Payload), `"reactionCounts":[]`) {
			t.Fatalf("delivery: %s %s", got.Type, got.Payload)
		}
	}
	a.Must(t, env.Token(t, alice), `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID}, nil)
	for _, s := range subs[1:2] {
		if got := s.Next(); !strings.Contains(string(got.Payload), `"reactionCounts":[{"kind":"like","count":1}]`) {
			t.Fatalf("reaction event: %s %s", got.Type, got.Payload)
		}
	}
	if ran := b.Store.Statements() - before; ran != 0 {
		t.Fatalf("the subscribers' node ran %d statements to deliver", ran)
	}
}

// Replayed messages come with their authors and reaction counts, as live
// ones do, read once per page.
func TestChatReplayedMessagesAreWhole(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "whole-"+tag, bob)
	x := sendMsg(t, n, alice, cid, "x")
	m := sendMsg(t, n, bob, cid, "liked")
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID}, nil)
	sub := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) {
		text user { id } reactionCounts { kind count } } }`, brooktest.Vars{"c": cid, "a": x.ID})
	var got struct {
		MessageAdded struct {
			Text           string
			User           struct{ ID string }
			ReactionCounts []struct {
				Kind  string
				Count int
			}
		}
	}
	sub.NextData(&got)
	r := got.MessageAdded
	if r.Text != "liked" || r.User.ID != bob || len(r.ReactionCounts) != 1 || r.ReactionCounts[0].Kind != "like" || r.ReactionCounts[0].Count != 1 {
		t.Fatalf("replayed %+v", r)
	}
}

// Two clients resume from the same message at the same moment and share
// one replay query. The second subscribed after a message whose event it
// therefore missed, and the query it joined read before that message
// committed: it still gets the message, without waiting for another.
func TestChatResumeJoiningAnEarlierReplay(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "join-replay-"+tag, bob, carol)
	x := sendMsg(t, n, alice, cid, "x")
	asked, queried, release := make(chan struct{}, 16), make(chan struct{}), make(chan struct{})
	var held, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(chat.OnReplayQuery(func(channel string, done bool) {
		if channel != cid {
			return
		}
		if !done {
			asked <- struct{}{}
			return
		}
		held.Do(func() { close(queried); <-release })
	}))
	t.Cleanup(letGo)
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not happen", what)
		}
	}
	const q = `subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { text } }`
	bobSub := n.MustDial(t, env.Token(t, bob)).Subscribe(q, brooktest.Vars{"c": cid, "a": x.ID})
	wait(asked, "bob's replay")
	wait(queried, "bob's replay query")
	sendMsg(t, n, alice, cid, "y")
	carolSub := n.MustDial(t, env.Token(t, carol)).Subscribe(q, brooktest.Vars{"c": cid, "a": x.ID})
	wait(asked, "carol's replay")
	time.Sleep(50 * time.Millisecond) // carol joins bob's query, which is held
	letGo()
	for name, sub := range map[string]*brooktest.Sub{"bob": bobSub, "carol": carolSub} {
		var m struct{ MessageAdded struct{ Text string } }
		sub.NextData(&m)
		if m.MessageAdded.Text != "y" {
			t.Fatalf("%s got %+v, want y", name, m)
		}
	}
}

// Events of one channel may arrive out of order (outbox jobs publish
// concurrently): messageAdded holds a message that comes before its
// predecessor and delivers both in order; a predecessor whose event never
// comes is read from PostgreSQL after a short wait.
func TestChatMessageAddedReorders(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1}) // events only as published below
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "reorder-"+tag, bob)
	ws := n.MustDial(t, env.Token(t, bob))
	sub := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	ctx := context.Background()
	var msgs []*store.Message
	for i := 0; i < 4; i++ {
		m, _, err := n.Store.SendMessage(ctx, cid, alice, store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	publish := func(m *store.Message) {
		data, _ := json.Marshal(&chat.ChannelEvent{Type: chat.EventMessageNew, Channel: cid, Message: m, CreatedAt: m.CreatedAt})
		if err := n.Bus.PublishRaw(ctx, chat.ChannelTopic(cid), data); err != nil {
			t.Error(err)
		}
	}
	next := func() string {
		var ev struct{ MessageAdded struct{ Text string } }
		sub.NextData(&ev)
		return ev.MessageAdded.Text
	}
	// r1 before r0: held, then both in order.
	publish(msgs[1])
	time.Sleep(20 * time.Millisecond)
	publish(msgs[0])
	for _, want := range []string{"r0", "r1"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// r3 without r2: r2 is read from PostgreSQL, then r3; r2's late event
	// is not delivered again.
	publish(msgs[3])
	for _, want := range []string{"r2", "r3"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	publish(msgs[2])
	sub.None(300 * time.Millisecond)
}

// Subscribers given the same message with the same selection share one
// execution of it (api/shared.go), each still under its own operation id;
// a selection that depends on the subscriber (ownReactions) is executed
// for it, and a reaction later shows in its own reactions only.
func TestChatSharedDeliveries(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "shared-"+tag, bob, carol)
	shared := `subscription($c: ID!) { messageAdded(channel: $c) { id text user { id } } }`
	own := `subscription($c: ID!) { channelEvents(channel: $c) { type message { id ownReactions { kind } } } }`
	bobWS := n.MustDial(t, env.Token(t, bob))
	carolWS := n.MustDial(t, env.Token(t, carol))
	subs := []*brooktest.Sub{bobWS.Subscribe(shared, brooktest.Vars{"c": cid}), bobWS.Subscribe(shared, brooktest.Vars{"c": cid}),
		carolWS.Subscribe(shared, brooktest.Vars{"c": cid})}
	bobOwn := bobWS.Subscribe(own, brooktest.Vars{"c": cid})
	carolOwn := carolWS.Subscribe(own, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	m := sendMsg(t, n, alice, cid, "for all")
	for i, s := range subs {
		var got struct {
			MessageAdded struct {
				ID, Text string
				User     struct{ ID string }
			}
		}
		s.NextData(&got)
		if got.MessageAdded.ID != m.ID || got.MessageAdded.Text != "for all" || got.MessageAdded.User.ID != alice {
			t.Fatalf("subscriber %d got %+v", i, got)
		}
	}
	type ownEvent struct {
		ChannelEvents struct {
			Type    string
			Message struct {
				ID           string
				OwnReactions []struct{ Kind string }
			}
		}
	}
	for _, s := range []*brooktest.Sub{bobOwn, carolOwn} {
		var ev ownEvent
		s.NextData(&ev)
		if ev.ChannelEvents.Type != "message.new" {
			t.Fatalf("first channel event %+v", ev)
		}
	}
	n.Must(t, env.Token(t, bob), `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID}, nil)
	for who, s := range map[string]*brooktest.Sub{bob: bobOwn, carol: carolOwn} {
		var ev ownEvent
		s.NextData(&ev)
		kinds := len(ev.ChannelEvents.Message.OwnReactions)
		if ev.ChannelEvents.Type != "reaction.new" || (who == bob) != (kinds == 1) {
			t.Fatalf("%s heard %+v", who, ev)
		}
	}
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
