package chat_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
)

// A member removed from a messaging channel while subscribed stops
// receiving it: both streams end with FORBIDDEN (channelEvents after the
// removal itself) and later messages never arrive. A member removed from
// a livestream channel, which anyone may read, keeps its stream.
func TestChatRemovedMemberLosesSubscriptions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
	cid := createChannel(t, n, alice, "messaging", "private-"+tag, carol)
	live := createChannel(t, n, alice, "livestream", "stage-"+tag, carol)
	ws := n.MustDial(t, env.Token(t, carol))
	msgs := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	events := ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`, brooktest.Vars{"c": cid})
	stage := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": live})
	waitSubscribed(t, n)
	sendMsg(t, n, alice, cid, "before")
	var m struct{ MessageAdded struct{ Text string } }
	msgs.NextData(&m)
	if m.MessageAdded.Text != "before" {
		t.Fatalf("before the removal: %+v", m)
	}
	if ev := events.Next(); !strings.Contains(string(ev.Payload), "message.new") {
		t.Fatalf("channel event before the removal: %s %s", ev.Type, ev.Payload)
	}

	remove := `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`
	n.Must(t, env.Token(t, alice), remove, brooktest.Vars{"c": cid, "u": carol}, nil)
	n.Must(t, env.Token(t, alice), remove, brooktest.Vars{"c": live, "u": carol}, nil)
	// The error names the subscription's field, as the resolver's would,
	// although the stream no longer keeps the resolver's context.
	if got := msgs.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") ||
		!strings.Contains(string(got.Payload), `"path":["messageAdded"]`) {
		t.Fatalf("messageAdded after the removal: %s %s", got.Type, got.Payload)
	}
	var ev struct {
		ChannelEvents struct {
			Type string
			User struct{ ID string }
		}
	}
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "member.removed" || ev.ChannelEvents.User.ID != carol {
		t.Fatalf("the removal event: %+v", ev)
	}
	if got := events.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") ||
		!strings.Contains(string(got.Payload), `"path":["channelEvents"]`) {
		t.Fatalf("channelEvents after the removal: %s %s", got.Type, got.Payload)
	}
	sendMsg(t, n, alice, cid, "after")
	msgs.None(300 * time.Millisecond)
	events.None(10 * time.Millisecond)

	sendMsg(t, n, alice, live, "still on air")
	stage.NextData(&m) // the removal's system message
	stage.NextData(&m)
	if m.MessageAdded.Text != "still on air" {
		t.Fatalf("livestream after the removal: %+v", m)
	}
}

// removeHoldingEvents has owner remove member from channel cid and
// returns once the removal has committed, its events held back until
// letGo; removed then gives the removal's result.
func removeHoldingEvents(t *testing.T, n *brooktest.Node, cid, owner, member string) (letGo func(), removed <-chan error) {
	t.Helper()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letGo = func() { once.Do(func() { close(release) }) }
	reset := chat.HoldMembershipEvents(func(channel string) {
		if channel == cid {
			close(held)
			<-release
		}
	})
	t.Cleanup(func() { letGo(); reset() })
	done := make(chan error, 1)
	go func() {
		done <- n.Client(env.Token(t, owner)).Run(context.Background(),
			`mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`, brooktest.Vars{"c": cid, "u": member}, nil)
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the removal did not commit")
	}
	return letGo, done
}

// A message sent after a member's removal has committed must not reach
// that member even when its message.new event overtakes the removal's own
// events (held back here until the member's subscriptions have answered).
func TestChatRemovalOvertakenByAMessage(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "race-"+tag, bob, carol)
	sub := func(user string) (*brooktest.Sub, *brooktest.Sub) {
		ws := n.MustDial(t, env.Token(t, user))
		return ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid}),
			ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { text } } }`, brooktest.Vars{"c": cid})
	}
	bobMsgs, _ := sub(bob)
	carolMsgs, carolEvents := sub(carol)
	waitSubscribed(t, n)

	letGo, removed := removeHoldingEvents(t, n, cid, alice, carol)
	sendMsg(t, n, alice, cid, "after the removal")
	for name, s := range map[string]*brooktest.Sub{"messageAdded": carolMsgs, "channelEvents": carolEvents} {
		if got := s.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") {
			t.Fatalf("carol's %s, removed before the message was sent: %s %s", name, got.Type, got.Payload)
		}
	}
	var m struct{ MessageAdded struct{ Text string } }
	bobMsgs.NextData(&m) // the removal's system message
	bobMsgs.NextData(&m)
	if m.MessageAdded.Text != "after the removal" {
		t.Fatalf("bob, still a member: %+v", m)
	}
	letGo()
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
}

// Every channel event, not only a new message, made after a member's
// removal has committed is refused to that member even when it overtakes
// the removal's own events: an edit's new text must not reach them.
func TestChatRemovalOvertakenByAnEdit(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
	cid := createChannel(t, n, alice, "messaging", "edit-race-"+tag, carol)
	m := sendMsg(t, n, alice, cid, "before the removal")
	events := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { text } } }`, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)

	letGo, removed := removeHoldingEvents(t, n, cid, alice, carol)
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { updateMessage(id: $m, text: "edited after the removal") { id } }`, brooktest.Vars{"m": m.ID}, nil)
	if got := events.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") {
		t.Fatalf("carol's channelEvents, removed before the edit: %s %s", got.Type, got.Payload)
	}
	letGo()
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
}

// A long messageAdded(after:) replay re-checks membership as it goes: a
// member removed during it gets FORBIDDEN, and never what was sent after
// the removal. The removal and the message come while the replay holds
// its first page; the second, read after them, holds the message.
func TestChatReplayStopsAtARemoval(t *testing.T) {
	// The removal comes while the replay holds its first page (before it
	// delivers any: a member removed while subscribing) or its second.
	for _, atPage := range []int{0, 1} {
		t.Run(fmt.Sprint("page ", atPage), func(t *testing.T) { replayStopsAtARemoval(t, atPage) })
	}
}

func replayStopsAtARemoval(t *testing.T, atPage int) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "replay-"+tag, bob)
	first := sendMsg(t, n, alice, cid, "m0")
	for i := 1; i <= 150; i++ { // two pages after the first message
		if _, _, err := n.Store.SendMessage(context.Background(), cid, alice, store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n.WaitForJobs(t)
	var once sync.Once
	t.Cleanup(chat.OnReplayPageRead(func(channel string, page int) {
		if channel != cid || page != atPage {
			return
		}
		once.Do(func() { // on the server's goroutine: no t.Fatal here
			c := n.Client(env.Token(t, alice))
			if err := c.Run(context.Background(), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
				brooktest.Vars{"c": cid, "u": bob}, nil); err != nil {
				t.Error(err)
			}
			if err := c.Run(context.Background(), `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "after the removal"}) { id } }`,
				brooktest.Vars{"c": cid}, nil); err != nil {
				t.Error(err)
			}
		})
	}))
	sub := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { text } }`,
		brooktest.Vars{"c": cid, "a": first.ID})
	got := 0
	for {
		m := sub.Next()
		if m.Type == "next" {
			if strings.Contains(string(m.Payload), "after the removal") {
				t.Fatal("a message sent after the removal reached the removed member")
			}
			got++
			continue
		}
		if m.Type != "error" || !strings.Contains(string(m.Payload), "FORBIDDEN") {
			t.Fatalf("after %d messages: %s %s, want FORBIDDEN", got, m.Type, m.Payload)
		}
		break
	}
	if want := atPage * 100; got != want {
		t.Fatalf("%d messages replayed before the removal was seen, want the %d of the pages before", got, want)
	}
}
