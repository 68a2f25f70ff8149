package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// markUnread moves the read position back to just before a message:
// the channel's count, the totals on myEvents, PostgreSQL and the Redis
// counters all say exactly how many follow it.
func TestChatMarkUnread(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "unread-"+tag, bob)
	other := createChannel(t, n, alice, "messaging", "unread2-"+tag, bob)
	var ids []string
	for _, text := range []string{"one", "two", "three", "four"} {
		ids = append(ids, sendMsg(t, n, alice, cid, text).ID)
	}
	reply := sendMsg(t, n, alice, cid, "a thread reply", map[string]any{"parentId": ids[0]})
	sendMsg(t, n, alice, other, "elsewhere")
	n.WaitForJobs(t)
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid}, nil)
	events := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel totalUnreadCount unreadChannels } }`, nil)
	waitSubscribed(t, n)
	mark := `mutation($c: ID!, $m: ID!) { markUnread(channel: $c, message: $m) { unreadCount } }`

	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), mark, brooktest.Vars{"c": cid, "m": reply.ID}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), mark, brooktest.Vars{"c": other, "m": ids[1]}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), mark, brooktest.Vars{"c": cid, "m": ids[1]}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), mark, brooktest.Vars{"c": cid, "m": "not-a-uuid"}), "BAD_USER_INPUT")
	if c := memberUnread(t, n, bob, cid); c != 0 {
		t.Fatalf("refused marks changed bob's count to %d", c)
	}

	var got struct{ MarkUnread struct{ UnreadCount int } }
	n.Must(t, env.Token(t, bob), mark, brooktest.Vars{"c": cid, "m": ids[1]}, &got)
	if got.MarkUnread.UnreadCount != 3 {
		t.Fatalf("markUnread from the second of four: %d unread, want 3", got.MarkUnread.UnreadCount)
	}
	var ev struct {
		MyEvents struct {
			Type                             string
			Channel                          string
			TotalUnreadCount, UnreadChannels int
		}
	}
	events.NextData(&ev)
	if ev.MyEvents.Type != "notification.mark_unread" || ev.MyEvents.Channel != cid || ev.MyEvents.TotalUnreadCount != 4 || ev.MyEvents.UnreadChannels != 2 {
		t.Fatalf("the event: %+v (want totals 4 over 2 channels)", ev)
	}
	// Redis holds complete counters that say so, and so does PostgreSQL.
	redis, complete, _, err := n.State.ReadUnread(context.Background(), bob)
	if err != nil || !complete {
		t.Fatalf("bob's Redis counters after markUnread: complete %v, %v", complete, err)
	}
	inRedis := map[string]int{}
	for _, c := range redis {
		inRedis[c.ChannelID] = c.UnreadCount
	}
	if inRedis[cid] != 3 || inRedis[other] != 1 {
		t.Fatalf("bob's Redis counters: %v", inRedis)
	}
	if c := n.Count(t, `SELECT c.last_seq - m.last_read_seq FROM channels c JOIN channel_members m ON m.channel_id = c.id WHERE c.id = $1 AND m.user_id = $2`, cid, bob); c != 3 {
		t.Fatalf("bob's unread in PostgreSQL: %d", c)
	}
	// A new message counts on top; markRead moves forward as ever.
	sendMsg(t, n, alice, cid, "five")
	n.WaitForJobs(t)
	if c := countsOf(t, n, bob); c.per[cid] != 4 || c.total != 5 {
		t.Fatalf("bob's counts after another message: %+v", c)
	}
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid}, nil)
	if c := countsOf(t, n, bob); c.per[cid] != 0 || c.total != 1 {
		t.Fatalf("bob's counts after markRead: %+v", c)
	}
}

// hideChannel takes a channel off the caller's list until a new message.
func TestChatHideChannel(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "hide-"+tag, bob)
	sendMsg(t, n, alice, cid, "hello")
	n.WaitForJobs(t)
	listed := func() bool {
		var got struct {
			Channels struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		n.Must(t, env.Token(t, bob), `{ channels { edges { node { id } } } }`, nil, &got)
		for _, e := range got.Channels.Edges {
			if e.Node.ID == cid {
				return true
			}
		}
		return false
	}
	events := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)
	var ok struct{ HideChannel, ShowChannel bool }
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { hideChannel(channel: $c) }`, brooktest.Vars{"c": cid}, &ok)
	var ev struct {
		MyEvents struct{ Type, Channel string }
	}
	events.NextData(&ev)
	if !ok.HideChannel || listed() || ev.MyEvents.Type != "channel.hidden" || ev.MyEvents.Channel != cid {
		t.Fatalf("hidden: %v, listed %v, event %+v", ok, listed(), ev)
	}
	if c := countsOf(t, n, bob); c.per[cid] != 1 {
		t.Fatalf("a hidden channel keeps its count: %+v", c)
	}
	var hidden struct {
		Channels struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	n.Must(t, env.Token(t, bob), `{ channels(filter: { hidden: true }) { edges { node { id } } } }`, nil, &hidden)
	if len(hidden.Channels.Edges) != 1 || hidden.Channels.Edges[0].Node.ID != cid {
		t.Fatalf("channels(filter: { hidden: true }): %+v", hidden)
	}
	sendMsg(t, n, alice, cid, "back")
	if !listed() {
		t.Fatal("a new message did not bring the channel back")
	}
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { hideChannel(channel: $c) }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { showChannel(channel: $c) }`, brooktest.Vars{"c": cid}, &ok)
	if !ok.ShowChannel || !listed() {
		t.Fatalf("showChannel: %v, listed %v", ok.ShowChannel, listed())
	}
	brooktest.WantCode(t, n.Query(t, env.AdminToken(t, "admin-"+tag), `mutation($c: ID!) { hideChannel(channel: $c) }`, brooktest.Vars{"c": cid}), "FORBIDDEN")
}

// deleteChannel: the channel reads as none for everyone, its members hear
// of it and their subscriptions end, it leaves their counts, and its id is
// not free again. truncateChannel: history and counts cleared.
func TestChatDeleteAndTruncateChannel(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "del-"+tag, bob)
	keep := createChannel(t, n, alice, "messaging", "trunc-"+tag, bob)
	first := sendMsg(t, n, alice, cid, "hello")
	sendMsg(t, n, alice, keep, "one")
	sendMsg(t, n, alice, keep, "two", map[string]any{"mentionedUserIds": []string{bob}})
	n.WaitForJobs(t)
	if c := countsOf(t, n, bob); c.total != 3 {
		t.Fatalf("bob's counts before: %+v", c)
	}

	for _, op := range []string{`mutation($c: ID!) { deleteChannel(id: $c) { id } }`, `mutation($c: ID!) { truncateChannel(id: $c) { id } }`} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, bob), op, brooktest.Vars{"c": cid}), "FORBIDDEN")
		brooktest.WantCode(t, n.Query(t, env.Token(t, alice), op, brooktest.Vars{"c": "messaging:none-" + tag}), "NOT_FOUND")
	}
	// Truncate.
	keepEvents := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type } }`, brooktest.Vars{"c": keep})
	waitSubscribed(t, n)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { truncateChannel(id: $c) { id } }`, brooktest.Vars{"c": keep}, nil)
	var ev struct{ ChannelEvents struct{ Type string } }
	keepEvents.NextData(&ev)
	if ev.ChannelEvents.Type != "channel.truncated" {
		t.Fatalf("truncate event: %+v", ev)
	}
	var hist struct {
		Channel struct {
			Messages struct{ Edges []struct{} }
		}
		UnreadCounts struct{ TotalUnreadMentions int }
	}
	n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { messages { edges { cursor } } } unreadCounts { totalUnreadMentions } }`, brooktest.Vars{"c": keep}, &hist)
	if len(hist.Channel.Messages.Edges) != 0 || hist.UnreadCounts.TotalUnreadMentions != 0 {
		t.Fatalf("after truncate: %+v", hist)
	}
	if c := countsOf(t, n, bob); c.per[keep] != 0 || c.total != 1 {
		t.Fatalf("bob's counts after truncate: %+v", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, keep); c != 0 {
		t.Fatalf("%d messages left after truncate", c)
	}
	sendMsg(t, n, alice, keep, "after")
	n.WaitForJobs(t)
	if c := countsOf(t, n, bob); c.per[keep] != 1 {
		t.Fatalf("a message after truncate: %+v", c)
	}

	// Delete.
	ws := n.MustDial(t, env.Token(t, bob))
	events := ws.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type } }`, brooktest.Vars{"c": cid})
	msgs := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, brooktest.Vars{"c": cid})
	mine := ws.Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { deleteChannel(id: $c) { id } }`, brooktest.Vars{"c": cid}, nil)
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "channel.deleted" {
		t.Fatalf("delete event: %+v", ev)
	}
	for _, s := range []*brooktest.Sub{events, msgs} {
		if m := s.Next(); m.Type != "error" || !strings.Contains(string(m.Payload), "NOT_FOUND") {
			t.Fatalf("a subscription to the deleted channel: %s %s", m.Type, m.Payload)
		}
	}
	var note struct {
		MyEvents struct{ Type, Channel string }
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "channel.deleted" || note.MyEvents.Channel != cid {
		t.Fatalf("myEvents: %+v", note)
	}
	var gone struct {
		Channel *struct{ ID string }
		Message *struct{ ID string }
	}
	n.Must(t, env.Token(t, bob), `query($c: ID!, $m: ID!) { channel(id: $c) { id } message(id: $m) { id } }`, brooktest.Vars{"c": cid, "m": first.ID}, &gone)
	if gone.Channel != nil || gone.Message != nil {
		t.Fatalf("the deleted channel reads: %+v", gone)
	}
	var found struct {
		SearchMessages struct{ Edges []struct{} }
	}
	n.Must(t, env.Token(t, bob), `{ searchMessages(query: "hello") { edges { cursor } } }`, nil, &found)
	if len(found.SearchMessages.Edges) != 0 {
		t.Fatalf("search finds %d messages of the deleted channel", len(found.SearchMessages.Edges))
	}
	if c := countsOf(t, n, bob); c.per[cid] != 0 || c.total != 1 {
		t.Fatalf("bob's counts after the delete: %+v", c)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "hi" }) { id } }`, brooktest.Vars{"c": cid}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($id: ID!) { createChannel(input: { type: "messaging", id: $id }) { id } }`,
		brooktest.Vars{"id": strings.TrimPrefix(cid, "messaging:")}), "CONFLICT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { deleteChannel(id: $c) { id } }`, brooktest.Vars{"c": cid}), "NOT_FOUND")
}
