package resolvers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/resolvers"
	"github.com/brookhq/brook/store"
)

func createChannel(t *testing.T, n *brooktest.Node, user, typ, id string, members ...string) string {
	t.Helper()
	var out struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": typ, "id": id, "members": members, "name": "Channel " + id}}, &out)
	return out.CreateChannel.ID
}

type chatMsg struct {
	ID         string
	Text       string
	Type       string
	ReplyCount int
	User       struct{ ID, Name string }
	Parent     *struct{ ID string }
}

const msgFields = `id text type replyCount user { id name } parent { id }`

func sendMsg(t *testing.T, n *brooktest.Node, user, channel, text string, extra ...map[string]any) chatMsg {
	t.Helper()
	in := map[string]any{"text": text}
	for _, e := range extra {
		for k, v := range e {
			in[k] = v
		}
	}
	var out struct{ SendMessage chatMsg }
	n.Must(t, env.Token(t, user), `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { `+msgFields+` } }`,
		brooktest.Vars{"c": channel, "in": in}, &out)
	return out.SendMessage
}

type unreadResult struct {
	UnreadCounts struct {
		TotalUnreadCount int
		UnreadChannels   int
		Channels         []struct {
			Channel     struct{ ID string }
			UnreadCount int
		}
	}
}

func unreadOf(t *testing.T, n *brooktest.Node, user string) map[string]int {
	t.Helper()
	var out unreadResult
	n.Must(t, env.Token(t, user), `{ unreadCounts { totalUnreadCount unreadChannels channels { channel { id } unreadCount } } }`, nil, &out)
	got := map[string]int{}
	total := 0
	for _, c := range out.UnreadCounts.Channels {
		got[c.Channel.ID] = c.UnreadCount
		total += c.UnreadCount
	}
	if total != out.UnreadCounts.TotalUnreadCount || len(got) != out.UnreadCounts.UnreadChannels {
		t.Fatalf("totals disagree with channels: %+v", out)
	}
	return got
}

// Channels, members, messages, threads, reactions, edits, deletes, search,
// read positions and the channel list, with their exact effects.
func TestChatMessagingFlow(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "general-"+tag, bob)
	if cid != "messaging:general-"+tag {
		t.Fatalf("channel id %q", cid)
	}
	// Get-or-create: a member gets it back unchanged; a stranger may not.
	if again := createChannel(t, n, bob, "messaging", "general-"+tag); again != cid {
		t.Fatalf("get-or-create returned %q", again)
	}
	wantCode(t, n.Query(t, env.Token(t, carol), `mutation { createChannel(input: {type: "messaging", id: "general-`+tag+`"}) { id } }`, nil), "FORBIDDEN")

	m1 := sendMsg(t, n, alice, cid, "hello bob")
	if m1.Type != "regular" || m1.User.ID != alice || m1.User.Name == "" {
		t.Fatalf("message %+v", m1)
	}
	m2 := sendMsg(t, n, bob, cid, "hello alice, searchable words")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, alice); got[cid] != 1 {
		t.Fatalf("alice unread %v, want 1 (bob's message)", got)
	}
	if got := unreadOf(t, n, bob); got[cid] != 0 {
		t.Fatalf("bob unread %v: sending marks read", got)
	}

	// Threads: a reply counts in replyCount, not as unread.
	r1 := sendMsg(t, n, bob, cid, "in a thread", map[string]any{"parentId": m1.ID})
	if r1.Type != "reply" || r1.Parent == nil || r1.Parent.ID != m1.ID {
		t.Fatalf("reply %+v", r1)
	}
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $p: ID!) { sendMessage(channel: $c, input: {text: "x", parentId: $p}) { id } }`,
		brooktest.Vars{"c": cid, "p": r1.ID}), "BAD_USER_INPUT")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, alice); got[cid] != 1 {
		t.Fatalf("alice unread %v after a reply, want still 1", got)
	}
	var thread struct {
		Message struct {
			ReplyCount int
			Replies    struct {
				Edges []struct{ Node struct{ ID, Text string } }
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($id: ID!) { message(id: $id) { replyCount replies { edges { node { id text } } } } }`, brooktest.Vars{"id": m1.ID}, &thread)
	if thread.Message.ReplyCount != 1 || len(thread.Message.Replies.Edges) != 1 || thread.Message.Replies.Edges[0].Node.ID != r1.ID {
		t.Fatalf("thread %+v", thread)
	}

	// Idempotent sends: the same id returns the same message, once.
	id := uuid.NewString()
	a := sendMsg(t, n, alice, cid, "once", map[string]any{"id": id})
	b := sendMsg(t, n, alice, cid, "once", map[string]any{"id": id})
	if a.ID != id || b.ID != id || count(t, n, `SELECT count(*) FROM messages WHERE id = $1`, id) != 1 {
		t.Fatalf("idempotent send: %s %s", a.ID, b.ID)
	}
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $id: ID!) { sendMessage(channel: $c, input: {id: $id, text: "mine"}) { id } }`,
		brooktest.Vars{"c": cid, "id": id}), "CONFLICT")
	// The same text as a reply is another message too.
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $id: ID!, $p: ID!) { sendMessage(channel: $c, input: {id: $id, text: "once", parentId: $p}) { id } }`,
		brooktest.Vars{"c": cid, "id": id, "p": m1.ID}), "CONFLICT")
	// Another text under the id is another message, until the message is
	// edited: a retry queued offline then still gets the stored message.
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $id: ID!) { sendMessage(channel: $c, input: {id: $id, text: "twice"}) { id } }`,
		brooktest.Vars{"c": cid, "id": id}), "CONFLICT")
	n.Must(t, env.Token(t, alice), `mutation($id: ID!) { updateMessage(id: $id, text: "once, edited") { id } }`, brooktest.Vars{"id": id}, nil)
	if c := sendMsg(t, n, alice, cid, "once", map[string]any{"id": id}); c.ID != id || c.Text != "once, edited" ||
		count(t, n, `SELECT count(*) FROM messages WHERE id = $1`, id) != 1 {
		t.Fatalf("retry after an edit: %+v", c)
	}

	// Limits: nothing written.
	before := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid)
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
		brooktest.Vars{"c": cid, "t": strings.Repeat("é", 5001)}), "BAD_USER_INPUT")
	long := sendMsg(t, n, alice, cid, strings.Repeat("é", 5000))
	if after := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before+1 {
		t.Fatalf("messages %d -> %d", before, after)
	}
	// The same limit for edits, and at most 100 mentioned users; the
	// refused edit leaves the text as it was.
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($id: ID!, $t: String!) { updateMessage(id: $id, text: $t) { id } }`,
		brooktest.Vars{"id": long.ID, "t": strings.Repeat("é", 5001)}), "BAD_USER_INPUT")
	if c := count(t, n, `SELECT count(*) FROM messages WHERE id = $1 AND text = $2`, long.ID, strings.Repeat("é", 5000)); c != 1 {
		t.Fatal("a refused edit changed the message")
	}
	mentions := make([]string, 101)
	for i := range mentions {
		mentions[i] = alice
	}
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $m: [ID!]) { sendMessage(channel: $c, input: {text: "hi all", mentionedUserIds: $m}) { id } }`,
		brooktest.Vars{"c": cid, "m": mentions}), "BAD_USER_INPUT")
	if after := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before+1 {
		t.Fatalf("messages %d -> %d after the refused ones", before, after)
	}

	// Reactions: at most 50 kinds a message.
	tok := env.Token(t, bob)
	for i := 0; i < 50; i++ {
		n.Must(t, tok, `mutation($m: ID!, $k: String!) { sendReaction(message: $m, kind: $k) { id } }`, brooktest.Vars{"m": m1.ID, "k": fmt.Sprintf("k%d", i)}, nil)
	}
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { sendReaction(message: $m, kind: "k0") { id } }`, brooktest.Vars{"m": m1.ID}, nil)
	wantCode(t, n.Query(t, tok, `mutation($m: ID!) { sendReaction(message: $m, kind: "k50") { id } }`, brooktest.Vars{"m": m1.ID}), "BAD_USER_INPUT")
	n.Must(t, tok, `mutation($m: ID!) { deleteReaction(message: $m, kind: "k49") { id } }`, brooktest.Vars{"m": m1.ID}, nil)
	var reacted struct {
		Message struct {
			ReactionCounts []struct {
				Kind  string
				Count int
			}
			OwnReactions    []struct{ Kind string }
			LatestReactions []struct {
				Kind string
				User struct{ ID string }
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($id: ID!) { message(id: $id) { reactionCounts { kind count } ownReactions { kind } latestReactions(first: 2) { kind user { id } } } }`,
		brooktest.Vars{"id": m1.ID}, &reacted)
	rm := reacted.Message
	if len(rm.ReactionCounts) != 49 || rm.ReactionCounts[0].Kind != "k0" || rm.ReactionCounts[0].Count != 2 ||
		len(rm.OwnReactions) != 1 || len(rm.LatestReactions) != 2 || rm.LatestReactions[0].User.ID != alice {
		t.Fatalf("reactions %+v", rm)
	}

	// Edits by the author only; deletes by the author or the owner.
	wantCode(t, n.Query(t, env.Token(t, alice), `mutation($id: ID!) { updateMessage(id: $id, text: "hacked") { id } }`, brooktest.Vars{"id": m2.ID}), "FORBIDDEN")
	var upd struct{ UpdateMessage struct{ Text string } }
	n.Must(t, env.Token(t, bob), `mutation($id: ID!) { updateMessage(id: $id, text: "edited searchable") { text } }`, brooktest.Vars{"id": m2.ID}, &upd)
	if upd.UpdateMessage.Text != "edited searchable" {
		t.Fatalf("update %+v", upd)
	}
	unreadBefore := unreadOf(t, n, alice)
	var del struct {
		DeleteMessage struct {
			Type, Text string
			DeletedAt  *time.Time
		}
	}
	n.Must(t, env.Token(t, alice), `mutation($id: ID!) { deleteMessage(id: $id) { type text deletedAt } }`, brooktest.Vars{"id": m2.ID}, &del)
	if del.DeleteMessage.Type != "deleted" || del.DeleteMessage.Text != "" || del.DeleteMessage.DeletedAt == nil {
		t.Fatalf("delete %+v", del)
	}
	if got := unreadOf(t, n, alice); fmt.Sprint(got) != fmt.Sprint(unreadBefore) {
		t.Fatalf("deleting changed counts: %v -> %v", unreadBefore, got)
	}

	// Search: only channels the caller may read.
	m3 := sendMsg(t, n, bob, cid, "findable needle here")
	var found struct {
		SearchMessages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	n.Must(t, env.Token(t, alice), `{ searchMessages(query: "needle") { edges { node { id } } } }`, nil, &found)
	if len(found.SearchMessages.Edges) != 1 || found.SearchMessages.Edges[0].Node.ID != m3.ID {
		t.Fatalf("search %+v", found)
	}
	n.Must(t, env.Token(t, carol), `{ searchMessages(query: "needle") { edges { node { id } } } }`, nil, &found)
	if len(found.SearchMessages.Edges) != 0 {
		t.Fatalf("a stranger found %+v", found)
	}
	wantCode(t, n.Query(t, env.Token(t, carol), `query($c: ID!) { searchMessages(query: "needle", channel: $c) { edges { cursor } } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")

	// History, newest page first, each page oldest first.
	var hist struct {
		Channel struct {
			MemberCount int
			UnreadCount int
			LastMessage struct{ ID string }
			Messages    struct {
				Edges []struct {
					Cursor string
					Node   struct{ ID, Text string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
	}
	hq := `query($id: ID!, $before: String) { channel(id: $id) { memberCount unreadCount lastMessage { id }
		messages(last: 2, before: $before) { edges { cursor node { id text } } pageInfo { hasNextPage endCursor } } } }`
	n.WaitForJobs(t)
	n.Must(t, env.Token(t, alice), hq, brooktest.Vars{"id": cid}, &hist)
	h := hist.Channel
	if h.MemberCount != 2 || h.UnreadCount != 1 || h.LastMessage.ID != m3.ID || len(h.Messages.Edges) != 2 ||
		h.Messages.Edges[1].Node.ID != m3.ID || !h.Messages.PageInfo.HasNextPage {
		t.Fatalf("history %+v", h)
	}
	var seen []string
	for page := 0; page < 10; page++ {
		for i := len(hist.Channel.Messages.Edges) - 1; i >= 0; i-- {
			seen = append(seen, hist.Channel.Messages.Edges[i].Node.ID)
		}
		if !hist.Channel.Messages.PageInfo.HasNextPage {
			break
		}
		n.Must(t, env.Token(t, alice), hq, brooktest.Vars{"id": cid, "before": hist.Channel.Messages.PageInfo.EndCursor}, &hist)
	}
	if want := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1 AND parent_id IS NULL`, cid); len(seen) != want || seen[len(seen)-1] != m1.ID {
		t.Fatalf("paged %d messages, want %d, oldest last", len(seen), want)
	}

	// Mark read up to a message, then everything; positions never go back.
	var mr struct{ MarkRead struct{ UnreadCount int } }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $m: ID!) { markRead(channel: $c, message: $m) { unreadCount } }`, brooktest.Vars{"c": cid, "m": m2.ID}, &mr)
	if mr.MarkRead.UnreadCount != 1 {
		t.Fatalf("markRead to m2 %+v", mr)
	}
	if got := unreadOf(t, n, alice); got[cid] != 1 {
		t.Fatalf("unread after markRead %v", got)
	}
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $m: ID!) { markRead(channel: $c, message: $m) { unreadCount } }`, brooktest.Vars{"c": cid, "m": m1.ID}, &mr)
	if mr.MarkRead.UnreadCount != 1 {
		t.Fatalf("markRead moved back %+v", mr)
	}
	var chans struct {
		Channels struct {
			Edges []struct {
				Node struct {
					ID          string
					UnreadCount int
				}
			}
		}
	}
	n.Must(t, env.Token(t, alice), `{ channels(filter: {hasUnread: true}) { edges { node { id unreadCount } } } }`, nil, &chans)
	if len(chans.Channels.Edges) != 1 || chans.Channels.Edges[0].Node.UnreadCount != 1 {
		t.Fatalf("channels with unread %+v", chans)
	}
	var all struct {
		MarkAllRead struct{ TotalUnreadCount int }
	}
	n.Must(t, env.Token(t, alice), `mutation { markAllRead { totalUnreadCount } }`, nil, &all)
	if all.MarkAllRead.TotalUnreadCount != 0 || len(unreadOf(t, n, alice)) != 0 {
		t.Fatalf("markAllRead %+v", all)
	}

	// Members: owners add and remove; a new member starts with nothing unread.
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": carol}), "FORBIDDEN")
	var added struct{ AddMembers struct{ MemberCount int } }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { memberCount } }`, brooktest.Vars{"c": cid, "u": carol}, &added)
	if added.AddMembers.MemberCount != 3 || len(unreadOf(t, n, carol)) != 0 {
		t.Fatalf("add members %+v", added)
	}
	sendMsg(t, n, bob, cid, "welcome carol")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, carol); got[cid] != 1 {
		t.Fatalf("carol unread %v", got)
	}
	var members struct {
		Channel struct {
			Members struct {
				Edges []struct {
					Node struct {
						Role        string
						UnreadCount int
						User        struct{ ID string }
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, carol), `query($id: ID!) { channel(id: $id) { members { edges { node { role unreadCount user { id } } } } } }`, brooktest.Vars{"id": cid}, &members)
	if e := members.Channel.Members.Edges; len(e) != 3 || e[0].Node.Role != "owner" || e[0].Node.User.ID != alice || e[2].Node.UnreadCount != 1 {
		t.Fatalf("members %+v", members)
	}
	var removed struct{ RemoveMembers struct{ MemberCount int } }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`, brooktest.Vars{"c": cid, "u": carol}, &removed)
	if removed.RemoveMembers.MemberCount != 2 || len(unreadOf(t, n, carol)) != 0 {
		t.Fatalf("remove members %+v, carol %v", removed, unreadOf(t, n, carol))
	}
	wantCode(t, n.Query(t, env.Token(t, carol), `query($id: ID!) { channel(id: $id) { id } }`, brooktest.Vars{"id": cid}), "FORBIDDEN")

	var updated struct{ UpdateChannel struct{ Name string } }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { updateChannel(id: $c, name: "Renamed") { name } }`, brooktest.Vars{"c": cid}, &updated)
	if updated.UpdateChannel.Name != "Renamed" {
		t.Fatalf("update channel %+v", updated)
	}
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!) { updateChannel(id: $c, name: "x") { name } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")
}

// A non-member can neither read, write nor subscribe to a messaging
// channel, over HTTP and WebSocket; anyone signed in reads a livestream.
func TestChatPermissions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, eve := "alice-"+tag, "eve-"+tag
	callUsers(t, n, alice, eve)
	cid := createChannel(t, n, alice, "messaging", "secret-"+tag)
	m := sendMsg(t, n, alice, cid, "secret")
	tok := env.Token(t, eve)
	refused := []struct {
		q    string
		vars brooktest.Vars
	}{
		{`query($c: ID!) { channel(id: $c) { id } }`, brooktest.Vars{"c": cid}},
		{`query($m: ID!) { message(id: $m) { text } }`, brooktest.Vars{"m": m.ID}},
		{`mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi"}) { id } }`, brooktest.Vars{"c": cid}},
		{`mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID}},
		{`mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid}},
		{`mutation($c: ID!) { sendTypingEvent(channel: $c) }`, brooktest.Vars{"c": cid}},
	}
	for _, q := range refused {
		wantCode(t, n.Query(t, tok, q.q, q.vars), "FORBIDDEN")
	}
	// The same reads and writes over the WebSocket are refused too.
	ws := n.MustDial(t, tok)
	for _, q := range refused {
		if msg := ws.Subscribe(q.q, q.vars).Next(); !strings.Contains(string(msg.Payload), "FORBIDDEN") {
			t.Fatalf("%s over the WebSocket by a non-member: %s %s", q.q, msg.Type, msg.Payload)
		}
	}
	if count(t, n, `SELECT count(*) FROM message_reactions WHERE message_id = $1`, m.ID) != 0 {
		t.Fatal("a non-member reacted")
	}
	for _, q := range []string{`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, `subscription($c: ID!) { channelEvents(channel: $c) { type } }`} {
		sub := ws.Subscribe(q, brooktest.Vars{"c": cid})
		if msg := sub.Next(); !strings.Contains(string(msg.Payload), "FORBIDDEN") {
			t.Fatalf("subscription by a non-member: %s %s", msg.Type, msg.Payload)
		}
	}
	if count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid) != 1 {
		t.Fatal("a non-member wrote")
	}

	live := createChannel(t, n, alice, "livestream", "show-"+tag)
	lm := sendMsg(t, n, alice, live, "on air")
	var got struct{ Message struct{ Text string } }
	n.Must(t, tok, `query($m: ID!) { message(id: $m) { text } }`, brooktest.Vars{"m": lm.ID}, &got)
	if got.Message.Text != "on air" {
		t.Fatalf("livestream read %+v", got)
	}
	wantCode(t, n.Query(t, tok, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi"}) { id } }`, brooktest.Vars{"c": live}), "FORBIDDEN")
	sub := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": live})
	waitSubscribed(t, n)
	sendMsg(t, n, alice, live, "live one")
	var ev struct{ MessageAdded struct{ Text string } }
	sub.NextData(&ev)
	if ev.MessageAdded.Text != "live one" {
		t.Fatalf("livestream event %+v", ev)
	}
	wantCode(t, n.Query(t, tok, `mutation { createChannel(input: {type: "group"}) { id } }`, nil), "BAD_USER_INPUT")
}

// A member removed from a messaging channel while subscribed stops
// receiving it: both streams end with FORBIDDEN (channelEvents after the
// removal itself) and later messages never arrive. A member removed from
// a livestream channel, which anyone may read, keeps its stream.
func TestChatRemovedMemberLosesSubscriptions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, carol := "alice-"+tag, "carol-"+tag
	callUsers(t, n, alice, carol)
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
	if got := msgs.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") {
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
	if got := events.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") {
		t.Fatalf("channelEvents after the removal: %s %s", got.Type, got.Payload)
	}
	sendMsg(t, n, alice, cid, "after")
	msgs.None(300 * time.Millisecond)
	events.None(10 * time.Millisecond)

	sendMsg(t, n, alice, live, "still on air")
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
	reset := resolvers.HoldMembershipEvents(func(channel string) {
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
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
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
	tag := callTag()
	alice, carol := "alice-"+tag, "carol-"+tag
	callUsers(t, n, alice, carol)
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

// The channel list: the caller's channels, latest top-level message
// first (a thread reply moves nothing and is no channel's lastMessage),
// filtered by type, paged with cursors.
func TestChatChannelList(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	first := createChannel(t, n, alice, "messaging", "first-"+tag, bob)
	second := createChannel(t, n, alice, "messaging", "second-"+tag, bob)
	stage := createChannel(t, n, alice, "livestream", "stage-"+tag, bob)
	top := sendMsg(t, n, alice, first, "first's news")
	sendMsg(t, n, alice, second, "second's news")
	sendMsg(t, n, alice, stage, "stage's news")
	// A reply in the first channel, the oldest activity, changes nothing.
	sendMsg(t, n, bob, first, "a reply", map[string]any{"parentId": top.ID})

	type page struct {
		Channels struct {
			Edges []struct {
				Node struct {
					ID          string
					LastMessage struct{ Text string }
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	list := func(vars brooktest.Vars) page {
		t.Helper()
		var p page
		n.Must(t, env.Token(t, bob), `query($type: String, $first: Int, $after: String) {
			channels(filter: {type: $type}, first: $first, after: $after) {
				edges { node { id lastMessage { text } } } pageInfo { hasNextPage endCursor } } }`, vars, &p)
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, e := range p.Channels.Edges {
			out = append(out, e.Node.ID)
		}
		return out
	}
	all := list(brooktest.Vars{})
	if got := ids(all); !slices.Equal(got, []string{stage, second, first}) {
		t.Fatalf("channels %v, want %v", got, []string{stage, second, first})
	}
	if last := all.Channels.Edges[2].Node.LastMessage.Text; last != "first's news" {
		t.Fatalf("first's lastMessage is %q, want its last top-level message", last)
	}
	if got := ids(list(brooktest.Vars{"type": "messaging"})); !slices.Equal(got, []string{second, first}) {
		t.Fatalf("messaging channels %v", got)
	}
	p1 := list(brooktest.Vars{"first": 2})
	p2 := list(brooktest.Vars{"first": 2, "after": p1.Channels.PageInfo.EndCursor})
	if !p1.Channels.PageInfo.HasNextPage || p2.Channels.PageInfo.HasNextPage ||
		!slices.Equal(append(ids(p1), ids(p2)...), []string{stage, second, first}) {
		t.Fatalf("pages %v %v", ids(p1), ids(p2))
	}
	// A new top-level message moves its channel to the top.
	sendMsg(t, n, bob, first, "first again")
	if got := ids(list(brooktest.Vars{})); !slices.Equal(got, []string{first, stage, second}) {
		t.Fatalf("after a new message: %v", got)
	}
}

// Every mutation that changes a channel announces it on channelEvents,
// with who did it and the message concerned, and users added to or
// removed from a channel hear it on myEvents.
func TestChatEventsOfEveryMutation(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "events-"+tag, bob)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) {
		type channel user { id } message { id text deletedAt reactionCounts { kind count } } } }`, brooktest.Vars{"c": cid})
	mine := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)

	type event struct {
		Type, Channel string
		User          *struct{ ID string }
		Message       *struct {
			ID, Text       string
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
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.added_to_channel" || note.MyEvents.Channel != cid {
		t.Fatalf("carol heard %+v", note)
	}
	do(alice, `mutation($c: ID!, $u: [ID!]!) { removeMembers(channel: $c, userIds: $u) { id } }`, brooktest.Vars{"c": cid, "u": []string{carol}})
	next("member.removed", carol)
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

// The repair pass compares users who only receive too: a member of a
// channel with a new message is among the users it checks, and a counter
// of hers that drifted is fixed.
func TestChatRepairCoversReceivers(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, carol := "alice-"+tag, "carol-"+tag
	callUsers(t, n, alice, carol)
	cid := createChannel(t, n, alice, "messaging", "repair-"+tag, carol)
	time.Sleep(5 * time.Millisecond)
	since := time.Now() // after carol joined: only the message makes her recent
	time.Sleep(5 * time.Millisecond)
	sendMsg(t, n, alice, cid, "news")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, carol)[cid]; got != 1 {
		t.Fatalf("carol's unread %d, want 1", got)
	}
	ctx := context.Background()
	recent, err := n.Store.RecentlyActiveChatUsers(ctx, n.Store.DB(), since, 100_000)
	if err != nil || !slices.Contains(recent, carol) {
		t.Fatalf("users the repair pass checks: carol missing (%v)", err)
	}
	if err := n.Store.Redis().HSet(ctx, n.Store.Key("chat", "u", carol), "s:"+cid, 999999).Err(); err != nil {
		t.Fatal(err)
	}
	if fixed, err := n.Store.RepairUnread(ctx, []string{carol}); err != nil || fixed != 1 {
		t.Fatalf("repair fixed %d, %v", fixed, err)
	}
	for i := 0; i < 2; i++ {
		if got := unreadOf(t, n, carol)[cid]; got != 1 {
			t.Fatalf("carol's unread after the repair (read %d): %d, want 1", i+1, got)
		}
	}
}

// waitSubscribed gives a just-started subscription time to go live on the bus.
func waitSubscribed(t *testing.T, n *brooktest.Node) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
}

// A client whose connection drops in the middle of a burst resumes with
// after: and gets every message exactly once, in order.
func TestChatMessageAddedResume(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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

// Typing events reach channel subscribers; notifications with totals reach
// the members' myEvents.
func TestChatTypingAndNotifications(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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
	if count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid) != 0 {
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
	n := env.StartNode(t, brooktest.NodeOptions{Store: func(o *store.Options) { o.ChatPushMemberLimit = 2 }})
	tag := callTag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	callUsers(t, n, alice, bob, carol, dave)
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

// A message sent on one node reaches subscribers on another.
func TestChatTwoNodes(t *testing.T) {
	t.Parallel()
	a := env.StartNode(t, brooktest.NodeOptions{})
	b := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, a, alice, bob)
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
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, a, alice, bob)
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

// An author removed from a channel no longer edits or deletes what they
// wrote there: members write.
func TestChatRemovedAuthorChangesNothing(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "gone-"+tag, bob)
	m := sendMsg(t, n, bob, cid, "bob's words")
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { updateMessage(id: $id, text: "rewritten") { text } }`,
		brooktest.Vars{"id": m.ID}), "FORBIDDEN")
	wantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { deleteMessage(id: $id) { type } }`, brooktest.Vars{"id": m.ID}), "FORBIDDEN")
	var out struct{ Message struct{ Text, Type string } }
	n.Must(t, env.Token(t, alice), `query($id: ID!) { message(id: $id) { text type } }`, brooktest.Vars{"id": m.ID}, &out)
	if out.Message.Text != "bob's words" || out.Message.Type != "regular" {
		t.Fatalf("after the removed author's attempts: %+v", out.Message)
	}
}

// A member's message whose transaction starts after the member's removal
// committed (its access was checked before; or a deadlock with the removal
// made it retry) is refused with nothing written.
func TestChatSendAfterRemovalCommits(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "late-"+tag, bob)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	_, _, err := n.Store.SendMessage(context.Background(), cid, bob, true, store.MessageInput{Text: "too late"})
	if !errors.Is(err, store.ErrNotChannelMember) {
		t.Fatalf("a removed member's send: %v", err)
	}
	if c := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); c != 0 {
		t.Fatalf("%d messages written", c)
	}
	var ch struct {
		Channel struct{ LastMessageAt *string }
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { lastMessageAt } }`, brooktest.Vars{"c": cid}, &ch)
	if ch.Channel.LastMessageAt != nil {
		t.Fatalf("the refused send moved the channel: %+v", ch)
	}
}

// Numbers no 64-bit value holds are refused as bad input wherever they
// come, in a literal or a variable, and the largest and smallest that
// pass are stored.
func TestChatDataNumbersAtTheirLimits(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice := "alice-" + tag
	callUsers(t, n, alice)
	cid := createChannel(t, n, alice, "messaging", "num-"+tag)
	tok := env.Token(t, alice)
	for _, lit := range []string{"1e1000000", "-1e309", "99999999999999999999"} {
		wantCode(t, n.Query(t, tok, `mutation($c: ID!) { updateChannel(id: $c, data: {a: `+lit+`}) { id } }`, brooktest.Vars{"c": cid}), "BAD_USER_INPUT")
	}
	for _, raw := range []string{`{"a":1e1000000}`, `{"a":1e-1000000}`} {
		wantCode(t, n.Query(t, tok, `mutation($c: ID!, $d: JSON) { sendMessage(channel: $c, input: {text: "x", data: $d}) { id } }`,
			brooktest.Vars{"c": cid, "d": json.RawMessage(raw)}), "BAD_USER_INPUT")
	}
	var out struct{ SendMessage struct{ Data map[string]any } }
	n.Must(t, tok, `mutation($c: ID!, $d: JSON) { sendMessage(channel: $c, input: {text: "x", data: $d}) { data } }`,
		brooktest.Vars{"c": cid, "d": json.RawMessage(`{"big":1.5e308,"small":1e-1000,"tiny":5e-324}`)}, &out)
	if out.SendMessage.Data["big"] != 1.5e308 {
		t.Fatalf("stored data %v", out.SendMessage.Data)
	}
	if c := count(t, n, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); c != 1 {
		t.Fatalf("%d messages stored, want the one that passed", c)
	}
}

// A message that commits while a member is being added (after the add read
// the channel, before it locked the channel's row) came before the join:
// the new member has nothing unread. The test holds the new member's users
// row, so the add's insert, its snapshot of the channel taken, waits in its
// foreign key check while the message is sent and committed.
func TestChatMemberAddedDuringASend(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "join-"+tag, bob)
	ctx := context.Background()
	tx, err := n.Store.DB().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, carol); err != nil {
		t.Fatal(err)
	}
	added := make(chan error, 1)
	go func() {
		added <- n.Client(env.Token(t, alice)).Run(ctx, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`,
			brooktest.Vars{"c": cid, "u": []string{carol}}, nil)
	}()
	brooktest.Eventually(t, "the add waits on carol's row", func() bool {
		return brooktest.LockWaiters(t, n.Store.DB(), tx.Conn().PgConn().PID()) == 1
	})
	sendMsg(t, n, bob, cid, "just before")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	n.WaitForJobs(t)
	if got := unreadOf(t, n, carol); len(got) != 0 {
		t.Fatalf("carol, added after the message committed: unread %v", got)
	}
	if c := count(t, n, `SELECT count(*) FROM channel_members m JOIN channels c ON c.id = m.channel_id
		WHERE m.channel_id = $1 AND m.user_id = $2 AND m.last_read_seq = c.last_seq`, cid, carol); c != 1 {
		t.Fatal("carol's read position is not the channel's last message")
	}
}

// Sending marks the channel read for the sender: its other devices hear
// it as notification.mark_read with the new totals.
func TestChatSendingTellsTheSendersDevices(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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

// Reading unread counts is one Redis round trip once the counters are
// built, also for a member of a big channel with no message yet.
func TestChatUnreadReadsStayInRedis(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Store: func(o *store.Options) { o.ChatPushMemberLimit = 2 }})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	createChannel(t, n, alice, "livestream", "quiet-big-"+tag, bob, carol) // 3 > 2, no message
	tok := env.Token(t, bob)
	q := `{ unreadCounts { totalUnreadCount } }`
	n.Must(t, tok, q, nil, nil) // builds the counters
	for i := 0; i < 3; i++ {
		before := n.Store.Statements()
		n.Must(t, tok, q, nil, nil)
		if ran := n.Store.Statements() - before; ran != 0 {
			t.Fatalf("read %d ran %d statements", i+1, ran)
		}
	}
}

// Redis may evict a user's big-channel hash on its own (it is a key of its
// own): the next read notices and rebuilds, rather than leaving those
// channels out.
func TestChatUnreadSurvivesALostBigHash(t *testing.T) {
	// Not parallel: its node's push limit is not the other nodes', whose
	// workers would take its jobs, and it theirs, and count them with the
	// wrong limit (the jobs table is shared).
	n := env.StartNode(t, brooktest.NodeOptions{Store: func(o *store.Options) { o.ChatPushMemberLimit = 2 }})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	big := createChannel(t, n, alice, "livestream", "evict-big-"+tag, bob, carol)
	small := createChannel(t, n, alice, "messaging", "evict-small-"+tag, bob)
	sendMsg(t, n, alice, big, "one")
	sendMsg(t, n, alice, big, "two")
	sendMsg(t, n, alice, small, "three")
	n.WaitForJobs(t)
	want := fmt.Sprint(map[string]int{big: 2, small: 1})
	if got := unreadOf(t, n, bob); fmt.Sprint(got) != want {
		t.Fatalf("before: %v, want %v", got, want)
	}
	if err := n.Store.Redis().Del(context.Background(), n.Store.Key("chat", "ub", bob)).Err(); err != nil {
		t.Fatal(err)
	}
	if got := unreadOf(t, n, bob); fmt.Sprint(got) != want {
		t.Fatalf("after the big hash was lost: %v, want %v", got, want)
	}
}

// A counter Redis still holds for a channel its user was removed from (a
// write that raced the removal put it back) does not open the channel:
// unreadCounts leaves it out, totals too, when channel is selected.
func TestChatUnreadLeavesOutAChannelNoLongerRead(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, carol := "alice-"+tag, "carol-"+tag
	callUsers(t, n, alice, carol)
	kept := createChannel(t, n, alice, "messaging", "kept-"+tag, carol)
	gone := createChannel(t, n, alice, "messaging", "gone-"+tag, carol)
	sendMsg(t, n, alice, kept, "one")
	n.WaitForJobs(t)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": gone, "u": carol}, nil)
	if got := unreadOf(t, n, carol); fmt.Sprint(got) != fmt.Sprint(map[string]int{kept: 1}) {
		t.Fatalf("before: %v", got)
	}
	// The stale counter: 3 unread in the channel carol left.
	ctx := context.Background()
	h := n.Store.Key("chat", "u", carol)
	if err := n.Store.Redis().HSet(ctx, h, "s:"+gone, 3, "r:"+gone, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.Redis().HIncrBy(ctx, h, "t", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.Redis().HIncrBy(ctx, h, "c", 1).Err(); err != nil {
		t.Fatal(err)
	}
	var ids struct {
		UnreadCounts struct{ Channels []struct{ UnreadCount int } }
	}
	n.Must(t, env.Token(t, carol), `{ unreadCounts { channels { unreadCount } } }`, nil, &ids)
	if len(ids.UnreadCounts.Channels) != 2 {
		t.Fatalf("the stale counter is not in Redis as the test means: %+v", ids)
	}
	if got := unreadOf(t, n, carol); fmt.Sprint(got) != fmt.Sprint(map[string]int{kept: 1}) {
		t.Fatalf("with a stale counter: %v", got)
	}
}

// A message job that read the channel's members just before a removal
// counts nothing for the removed user once its counters were rebuilt
// without the channel.
func TestChatLateBumpSkipsARemovedMember(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "late-bump-"+tag, bob)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	if got := unreadOf(t, n, bob); len(got) != 0 { // rebuilt without the channel
		t.Fatalf("bob after his removal: %v", got)
	}
	// The job of a message sent before the removal, with the members it read then.
	if _, err := n.Store.BumpUnread(context.Background(), cid, 5, []string{alice, bob}, alice); err != nil {
		t.Fatal(err)
	}
	if got := unreadOf(t, n, bob); len(got) != 0 {
		t.Fatalf("bob, removed, after a late bump: %v", got)
	}
}

// The same for a channel above the push limit: a read position or a
// send recorded in Redis after the removal's rebuild (both committed
// before the removal) puts nothing back, and the channel's later messages
// count nothing for the removed member.
func TestChatLateBigReadSkipsARemovedMember(t *testing.T) {
	// Not parallel: its node's push limit is not the other nodes'.
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Store: func(o *store.Options) { o.ChatPushMemberLimit = 2 }})
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "late-big-"+tag, bob, carol)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	counts := func() (total int, channels int) {
		var out struct {
			UnreadCounts struct {
				TotalUnreadCount int
				Channels         []struct{ UnreadCount int }
			}
		}
		n.Must(t, env.Token(t, bob), `{ unreadCounts { totalUnreadCount channels { unreadCount } } }`, nil, &out)
		return out.UnreadCounts.TotalUnreadCount, len(out.UnreadCounts.Channels)
	}
	if total, channels := counts(); total != 0 || channels != 0 { // rebuilt without the channel
		t.Fatalf("bob after his removal: %d in %d channels", total, channels)
	}
	ctx := context.Background()
	if _, err := n.Store.RecordRead(ctx, &store.ReadPosition{ChannelID: cid, UserID: bob, Seq: 1, Big: true}); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.SetBigChannelSeq(ctx, cid, 1, bob); err != nil {
		t.Fatal(err)
	}
	if err := n.Store.SetBigChannelSeq(ctx, cid, 5, alice); err != nil { // four more messages
		t.Fatal(err)
	}
	if total, channels := counts(); total != 0 || channels != 0 {
		t.Fatalf("bob, removed, after late writes: %d in %d channels", total, channels)
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
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "replay-"+tag, bob)
	first := sendMsg(t, n, alice, cid, "m0")
	for i := 1; i <= 150; i++ { // two pages after the first message
		if _, _, err := n.Store.SendMessage(context.Background(), cid, alice, true, store.MessageInput{Text: fmt.Sprintf("m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n.WaitForJobs(t)
	var once sync.Once
	t.Cleanup(resolvers.OnReplayPageRead(func(channel string, page int) {
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

// Replayed messages come with their authors and reaction counts, as live
// ones do, read once per page.
func TestChatReplayedMessagesAreWhole(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
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
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "join-replay-"+tag, bob, carol)
	x := sendMsg(t, n, alice, cid, "x")
	asked, queried, release := make(chan struct{}, 16), make(chan struct{}), make(chan struct{})
	var held, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(resolvers.OnReplayQuery(func(channel string, done bool) {
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

// An admin who is no member may post, in a channel of any size, and has no
// read position there: its unread counts stay those of its memberships.
func TestChatAdminPostingHasNoUnread(t *testing.T) {
	// Not parallel: its node's push limit is not the other nodes', whose
	// workers would take its jobs, and it theirs, and count them with the
	// wrong limit (the jobs table is shared).
	n := env.StartNode(t, brooktest.NodeOptions{Store: func(o *store.Options) { o.ChatPushMemberLimit = 2 }})
	tag := callTag()
	alice, bob, carol, mod := "alice-"+tag, "bob-"+tag, "carol-"+tag, "mod-"+tag
	callUsers(t, n, alice, bob, carol, mod)
	big := createChannel(t, n, alice, "livestream", "big-"+tag, bob, carol) // 3 > 2: counted at read time
	small := createChannel(t, n, alice, "messaging", "small-"+tag, bob)
	admin := env.AdminToken(t, mod)
	q := `{ unreadCounts { totalUnreadCount unreadChannels channels { channel { id } unreadCount } } }`
	var out unreadResult
	n.Must(t, admin, q, nil, &out) // its counters now live in Redis
	for _, c := range []string{big, small} {
		n.Must(t, admin, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "moderator here"}) { id } }`, brooktest.Vars{"c": c}, nil)
		n.WaitForJobs(t)
		sendMsg(t, n, alice, c, "one")
		sendMsg(t, n, alice, c, "two")
	}
	n.WaitForJobs(t)
	n.Must(t, admin, q, nil, &out)
	if out.UnreadCounts.TotalUnreadCount != 0 || out.UnreadCounts.UnreadChannels != 0 || len(out.UnreadCounts.Channels) != 0 {
		t.Fatalf("the admin's unread counts: %+v", out.UnreadCounts)
	}
}

// Messages sent with ids of the client's choosing (any UUID) are searched
// newest first, page after page, like the server's, and an old one does
// not make its channel look active to the unread repair pass.
func TestChatClientChosenIDsKeepTimeOrder(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "ids-"+tag, bob)
	ids := []string{"ffffffff-ffff-4fff-bfff-ffffffffffff", "", "00000000-0000-4000-8000-000000000001", "", "7fffffff-ffff-4fff-bfff-ffffffffffff"}
	var sent []string
	for i, id := range ids {
		var extra []map[string]any
		if id != "" {
			extra = append(extra, map[string]any{"id": id})
		}
		sent = append(sent, sendMsg(t, n, alice, cid, fmt.Sprintf("zebra %d", i), extra...).ID)
	}
	var got []string
	after := ""
	for page := 0; page < 5 && (page == 0 || after != ""); page++ {
		var out struct {
			SearchMessages struct {
				Edges []struct {
					Cursor string
					Node   struct{ ID string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		n.Must(t, env.Token(t, bob), `query($a: String) { searchMessages(query: "zebra", first: 2, after: $a) {
			edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, brooktest.Vars{"a": after}, &out)
		for _, e := range out.SearchMessages.Edges {
			got = append(got, e.Node.ID)
		}
		after = ""
		if out.SearchMessages.PageInfo.HasNextPage {
			after = out.SearchMessages.PageInfo.EndCursor
		}
	}
	want := slices.Clone(sent)
	slices.Reverse(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("search pages: %v\nwant newest first: %v", got, want)
	}

	n.WaitForJobs(t)
	since := time.Now()
	time.Sleep(10 * time.Millisecond)
	active, err := n.Store.RecentlyActiveChatUsers(context.Background(), n.Store.DB(), since, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(active, alice) || slices.Contains(active, bob) {
		t.Fatalf("members of a channel quiet since %v look active: %v", since, active)
	}
}

// A history page costs the same statements whatever its length.
func TestChatHistoryStatements(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := callTag()
	users := []string{"h0-" + tag, "h1-" + tag, "h2-" + tag}
	callUsers(t, n, users...)
	cid := createChannel(t, n, users[0], "messaging", "hist-"+tag, users[1:]...)
	q := `query($id: ID!, $n: Int!) { channel(id: $id) { messages(last: $n) { edges { node { text user { name } reactionCounts { kind count } } } } } }`
	tok := env.Token(t, users[0])
	statements := func(size int) int64 {
		n.Must(t, tok, q, brooktest.Vars{"id": cid, "n": size}, nil)
		before := n.Store.Statements()
		var out struct {
			Channel struct {
				Messages struct {
					Edges []struct{ Node struct{ Text string } }
				}
			}
		}
		n.Must(t, tok, q, brooktest.Vars{"id": cid, "n": size}, &out)
		if len(out.Channel.Messages.Edges) != size {
			t.Fatalf("page of %d", len(out.Channel.Messages.Edges))
		}
		return n.Store.Statements() - before
	}
	for i := 0; i < 50; i++ {
		m := sendMsg(t, n, users[i%3], cid, fmt.Sprintf("m%d", i))
		if i%7 == 0 {
			n.Must(t, env.Token(t, users[1]), `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": m.ID}, nil)
		}
	}
	// channel and membership, the page, its users, its reaction counts.
	if small, large := statements(5), statements(50); small != 4 || large != small {
		t.Fatalf("history page ran %d statements for 5 messages, %d for 50; want 4", small, large)
	}
}

// The property: after random interleavings of sends and reads by several
// users, in small channels and one above the push limit, with Redis
// flushed in the middle, every user's unreadCounts equal the truth
// computed from PostgreSQL (and from a model of the operations).
func TestChatUnreadCountsProperty(t *testing.T) {
	// Not parallel: it flushes Redis, which parallel tests would feel.
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2, Store: func(o *store.Options) { o.ChatPushMemberLimit = 3 }})
	tag := callTag()
	users := []string{"p0-" + tag, "p1-" + tag, "p2-" + tag, "p3-" + tag}
	callUsers(t, n, users...)
	channels := []string{
		createChannel(t, n, users[0], "messaging", "small-a-"+tag, users[1], users[2]),
		createChannel(t, n, users[1], "messaging", "small-b-"+tag, users[3]),
		createChannel(t, n, users[2], "messaging", "big-"+tag, users[0], users[1], users[3]), // 4 > 3: pull
	}
	members := map[string][]string{
		channels[0]: {users[0], users[1], users[2]},
		channels[1]: {users[1], users[3]},
		channels[2]: {users[2], users[0], users[1], users[3]},
	}
	// The model: per channel the top-level count, per member the read count.
	seq := map[string]int{}
	read := map[string]map[string]int{}
	for ch, ms := range members {
		read[ch] = map[string]int{}
		for _, u := range ms {
			read[ch][u] = 0
		}
	}
	var tops = map[string][]string{}
	// compare checks, once the jobs are done, every user's counts from the
	// API (Redis) against PostgreSQL and, with withModel, the model (which
	// cannot follow the commit order of racing operations).
	compare := func(when string, withModel bool) {
		t.Helper()
		n.WaitForJobs(t)
		for _, u := range users {
			got := unreadOf(t, n, u)
			truth, err := n.Store.UnreadCountsFromDB(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{}
			for _, c := range truth.Channels {
				want[c.ChannelID] = c.UnreadCount
			}
			model := map[string]int{}
			for ch := range members {
				if r, ok := read[ch][u]; ok && seq[ch] > r {
					model[ch] = seq[ch] - r
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || (withModel && fmt.Sprint(want) != fmt.Sprint(model)) {
				t.Fatalf("%s: %s unread from redis %v, postgres %v, model %v", when, u, got, want, model)
			}
		}
	}
	check := func(when string) { t.Helper(); compare(when, true) }
	checkTruth := func(when string) { t.Helper(); compare(when, false) }
	// resync sets the model from PostgreSQL's sequence numbers.
	resync := func() {
		t.Helper()
		for ch, ms := range members {
			var last int
			if err := n.Store.DB().QueryRow(context.Background(), `SELECT last_seq FROM channels WHERE id = $1`, ch).Scan(&last); err != nil {
				t.Fatal(err)
			}
			seq[ch] = last
			for _, u := range ms {
				var r int
				if err := n.Store.DB().QueryRow(context.Background(),
					`SELECT last_read_seq FROM channel_members WHERE channel_id = $1 AND user_id = $2`, ch, u).Scan(&r); err != nil {
					t.Fatal(err)
				}
				read[ch][u] = r
			}
		}
	}
	var wg sync.WaitGroup
	// done counts the operations of the current round, so Redis can be
	// flushed while a round is under way.
	var done atomic.Int64
	// step runs a round: four users act at once, 8 operations each. In a
	// serialized round each operation and its model update hold mu, in the
	// order the server commits them (the channel row lock orders a
	// channel's sends), so the model stays exact; in a concurrent round the
	// operations overlap freely and only Redis against PostgreSQL is
	// checked.
	step := func(round int, concurrent bool) {
		var mu sync.Mutex
		done.Store(0)
		lock := func() {
			if !concurrent {
				mu.Lock()
			}
		}
		unlock := func() {
			if !concurrent {
				mu.Unlock()
			}
		}
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; i < 8; i++ {
					ch := channels[r.IntN(len(channels))]
					ms := members[ch]
					u := ms[r.IntN(len(ms))]
					switch op := r.IntN(10); {
					case op < 6:
						mu.Lock()
						parents := slices.Clone(tops[ch])
						mu.Unlock()
						in := map[string]any{"text": "x"}
						reply := op == 5 && len(parents) > 0
						if reply {
							in["parentId"] = parents[r.IntN(len(parents))]
						}
						var out struct{ SendMessage struct{ ID string } }
						lock()
						if err := n.Client(env.Token(t, u)).Run(context.Background(),
							`mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`, brooktest.Vars{"c": ch, "in": in}, &out); err != nil {
							unlock()
							t.Error(err)
							return
						}
						if concurrent {
							mu.Lock()
						}
						if !reply {
							seq[ch]++
							tops[ch] = append(tops[ch], out.SendMessage.ID)
						}
						read[ch][u] = max(read[ch][u], seq[ch])
						mu.Unlock()
					default:
						lock()
						if err := n.Client(env.Token(t, u)).Run(context.Background(),
							`mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": ch}, nil); err != nil {
							unlock()
							t.Error(err)
							return
						}
						if concurrent {
							mu.Lock()
						}
						read[ch][u] = seq[ch]
						mu.Unlock()
					}
					done.Add(1)
				}
			}(w)
		}
	}
	for round := 0; round < 3; round++ {
		step(round, false)
		wg.Wait()
		check(fmt.Sprintf("round %d", round))
	}
	// Redis loses everything in the middle of a round.
	step(10, false)
	for done.Load() < 12 {
		time.Sleep(time.Millisecond)
	}
	if err := n.Store.Redis().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	check("after FLUSHALL")
	step(11, false)
	wg.Wait()
	check("after FLUSHALL and another round")
	// Users act concurrently: sends and reads of one channel race.
	for round := 20; round < 23; round++ {
		step(round, true)
		wg.Wait()
		checkTruth(fmt.Sprintf("concurrent round %d", round))
	}
	// The model could not follow the racing operations' commit order: set
	// it from PostgreSQL, and all three agree again.
	resync()
	check("after the concurrent rounds")
	// Drift is found and fixed by the repair pass.
	h := n.Store.Key("chat", "u", users[1])
	if err := n.Store.Redis().HSet(context.Background(), h, "s:"+channels[0], 999999).Err(); err != nil {
		t.Fatal(err)
	}
	if fixed, err := n.Store.RepairUnread(context.Background(), users); err != nil || fixed != 1 {
		t.Fatalf("repair fixed %d, %v", fixed, err)
	}
	// The first read rebuilds the counters; the second reads what it
	// rebuilt, which must not have kept the drifted value.
	check("after repair")
	check("after repair, read again")
	if fixed, err := n.Store.RepairUnread(context.Background(), users); err != nil || fixed != 0 {
		t.Fatalf("a second repair found %d users drifted, %v", fixed, err)
	}
}

// Events of one channel may arrive out of order (outbox jobs publish
// concurrently): messageAdded holds a message that comes before its
// predecessor and delivers both in order; a predecessor whose event never
// comes is read from PostgreSQL after a short wait.
func TestChatMessageAddedReorders(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1}) // events only as published below
	tag := callTag()
	alice, bob := "alice-"+tag, "bob-"+tag
	callUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "reorder-"+tag, bob)
	ws := n.MustDial(t, env.Token(t, bob))
	sub := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	ctx := context.Background()
	var msgs []*store.Message
	for i := 0; i < 4; i++ {
		m, _, err := n.Store.SendMessage(ctx, cid, alice, true, store.MessageInput{Text: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	publish := func(m *store.Message) {
		n.Store.PublishChannelEvent(ctx, n.Bus, &store.ChannelEvent{Type: store.EventMessageNew, Channel: cid, Message: m, CreatedAt: m.CreatedAt})
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
	tag := callTag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	callUsers(t, n, alice, bob, carol)
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
