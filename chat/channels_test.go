package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
)

// Channels, members, messages, threads, reactions, edits, deletes, search,
// read positions and the channel list, with their exact effects.
func TestChatMessagingFlow(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "general-"+tag, bob)
	if cid != "messaging:general-"+tag {
		t.Fatalf("channel id %q", cid)
	}
	// Get-or-create: a member gets it back unchanged; a stranger may not.
	if again := createChannel(t, n, bob, "messaging", "general-"+tag); again != cid {
		t.Fatalf("get-or-create returned %q", again)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `mutation { createChannel(input: {type: "messaging", id: "general-`+tag+`"}) { id } }`, nil), "FORBIDDEN")

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
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $p: ID!) { sendMessage(channel: $c, input: {text: "x", parentId: $p}) { id } }`,
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
	if a.ID != id || b.ID != id || n.Count(t, `SELECT count(*) FROM messages WHERE id = $1`, id) != 1 {
		t.Fatalf("idempotent send: %s %s", a.ID, b.ID)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $id: ID!) { sendMessage(channel: $c, input: {id: $id, text: "mine"}) { id } }`,
		brooktest.Vars{"c": cid, "id": id}), "CONFLICT")
	// The same text as a reply is another message too.
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $id: ID!, $p: ID!) { sendMessage(channel: $c, input: {id: $id, text: "once", parentId: $p}) { id } }`,
		brooktest.Vars{"c": cid, "id": id, "p": m1.ID}), "CONFLICT")
	// Another text under the id is another message, until the message is
	// edited: a retry queued offline then still gets the stored message.
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $id: ID!) { sendMessage(channel: $c, input: {id: $id, text: "twice"}) { id } }`,
		brooktest.Vars{"c": cid, "id": id}), "CONFLICT")
	n.Must(t, env.Token(t, alice), `mutation($id: ID!) { updateMessage(id: $id, text: "once, edited") { id } }`, brooktest.Vars{"id": id}, nil)
	if c := sendMsg(t, n, alice, cid, "once", map[string]any{"id": id}); c.ID != id || c.Text != "once, edited" ||
		n.Count(t, `SELECT count(*) FROM messages WHERE id = $1`, id) != 1 {
		t.Fatalf("retry after an edit: %+v", c)
	}

	// Limits: nothing written.
	before := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid)
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
		brooktest.Vars{"c": cid, "t": strings.Repeat("é", 5001)}), "BAD_USER_INPUT")
	long := sendMsg(t, n, alice, cid, strings.Repeat("é", 5000))
	if after := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before+1 {
		t.Fatalf("messages %d -> %d", before, after)
	}
	// The same limit for edits, and at most 100 mentioned users; the
	// refused edit leaves the text as it was.
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($id: ID!, $t: String!) { updateMessage(id: $id, text: $t) { id } }`,
		brooktest.Vars{"id": long.ID, "t": strings.Repeat("é", 5001)}), "BAD_USER_INPUT")
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE id = $1 AND text = $2`, long.ID, strings.Repeat("é", 5000)); c != 1 {
		t.Fatal("a refused edit changed the message")
	}
	mentions := make([]string, 101)
	for i := range mentions {
		mentions[i] = alice
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $m: [ID!]) { sendMessage(channel: $c, input: {text: "hi all", mentionedUserIds: $m}) { id } }`,
		brooktest.Vars{"c": cid, "m": mentions}), "BAD_USER_INPUT")
	if after := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before+1 {
		t.Fatalf("messages %d -> %d after the refused ones", before, after)
	}

	// Reactions: at most 50 kinds a message.
	tok := env.Token(t, bob)
	for i := 0; i < 50; i++ {
		n.Must(t, tok, `mutation($m: ID!, $k: String!) { sendReaction(message: $m, kind: $k) { id } }`, brooktest.Vars{"m": m1.ID, "k": fmt.Sprintf("k%d", i)}, nil)
	}
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { sendReaction(message: $m, kind: "k0") { id } }`, brooktest.Vars{"m": m1.ID}, nil)
	brooktest.WantCode(t, n.Query(t, tok, `mutation($m: ID!) { sendReaction(message: $m, kind: "k50") { id } }`, brooktest.Vars{"m": m1.ID}), "BAD_USER_INPUT")
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
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($id: ID!) { updateMessage(id: $id, text: "hacked") { id } }`, brooktest.Vars{"id": m2.ID}), "FORBIDDEN")
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
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `query($c: ID!) { searchMessages(query: "needle", channel: $c) { edges { cursor } } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")

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
	if want := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND parent_id IS NULL`, cid); len(seen) != want || seen[len(seen)-1] != m1.ID {
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
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": carol}), "FORBIDDEN")
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
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `query($id: ID!) { channel(id: $id) { id } }`, brooktest.Vars{"id": cid}), "FORBIDDEN")

	var updated struct{ UpdateChannel struct{ Name string } }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { updateChannel(id: $c, name: "Renamed") { name } }`, brooktest.Vars{"c": cid}, &updated)
	if updated.UpdateChannel.Name != "Renamed" {
		t.Fatalf("update channel %+v", updated)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!) { updateChannel(id: $c, name: "x") { name } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")
}

// A non-member can neither read, write nor subscribe to a messaging
// channel, over HTTP and WebSocket; anyone signed in reads a livestream.
func TestChatPermissions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, eve := "alice-"+tag, "eve-"+tag
	env.AddUsers(t, n, alice, eve)
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
		brooktest.WantCode(t, n.Query(t, tok, q.q, q.vars), "FORBIDDEN")
	}
	// The same reads and writes over the WebSocket are refused too.
	ws := n.MustDial(t, tok)
	for _, q := range refused {
		if msg := ws.Subscribe(q.q, q.vars).Next(); !strings.Contains(string(msg.Payload), "FORBIDDEN") {
			t.Fatalf("%s over the WebSocket by a non-member: %s %s", q.q, msg.Type, msg.Payload)
		}
	}
	if n.Count(t, `SELECT count(*) FROM message_reactions WHERE message_id = $1`, m.ID) != 0 {
		t.Fatal("a non-member reacted")
	}
	for _, q := range []string{`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, `subscription($c: ID!) { channelEvents(channel: $c) { type } }`} {
		sub := ws.Subscribe(q, brooktest.Vars{"c": cid})
		if msg := sub.Next(); !strings.Contains(string(msg.Payload), "FORBIDDEN") {
			t.Fatalf("subscription by a non-member: %s %s", msg.Type, msg.Payload)
		}
	}
	if n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid) != 1 {
		t.Fatal("a non-member wrote")
	}

	live := createChannel(t, n, alice, "livestream", "show-"+tag)
	lm := sendMsg(t, n, alice, live, "on air")
	var got struct{ Message struct{ Text string } }
	n.Must(t, tok, `query($m: ID!) { message(id: $m) { text } }`, brooktest.Vars{"m": lm.ID}, &got)
	if got.Message.Text != "on air" {
		t.Fatalf("livestream read %+v", got)
	}
	brooktest.WantCode(t, n.Query(t, tok, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi"}) { id } }`, brooktest.Vars{"c": live}), "FORBIDDEN")
	sub := ws.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": live})
	waitSubscribed(t, n)
	sendMsg(t, n, alice, live, "live one")
	var ev struct{ MessageAdded struct{ Text string } }
	sub.NextData(&ev)
	if ev.MessageAdded.Text != "live one" {
		t.Fatalf("livestream event %+v", ev)
	}
	brooktest.WantCode(t, n.Query(t, tok, `mutation { createChannel(input: {type: "group"}) { id } }`, nil), "BAD_USER_INPUT")
}

// The channel list: the caller's channels, latest top-level message
// first (a thread reply moves nothing and is no channel's lastMessage),
// filtered by type, paged with cursors.
func TestChatChannelList(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
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

// An author removed from a channel no longer edits or deletes what they
// wrote there: members write.
func TestChatRemovedAuthorChangesNothing(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "gone-"+tag, bob)
	m := sendMsg(t, n, bob, cid, "bob's words")
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { updateMessage(id: $id, text: "rewritten") { text } }`,
		brooktest.Vars{"id": m.ID}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($id: ID!) { deleteMessage(id: $id) { type } }`, brooktest.Vars{"id": m.ID}), "FORBIDDEN")
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
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "late-"+tag, bob)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	_, _, err := n.Store.SendMessage(context.Background(), cid, bob, true, store.MessageInput{Text: "too late"})
	if !errors.Is(err, store.ErrNotChannelMember) {
		t.Fatalf("a removed member's send: %v", err)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); c != 0 {
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
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := createChannel(t, n, alice, "messaging", "num-"+tag)
	tok := env.Token(t, alice)
	for _, lit := range []string{"1e1000000", "-1e309", "99999999999999999999"} {
		brooktest.WantCode(t, n.Query(t, tok, `mutation($c: ID!) { updateChannel(id: $c, data: {a: `+lit+`}) { id } }`, brooktest.Vars{"c": cid}), "BAD_USER_INPUT")
	}
	for _, raw := range []string{`{"a":1e1000000}`, `{"a":1e-1000000}`} {
		brooktest.WantCode(t, n.Query(t, tok, `mutation($c: ID!, $d: JSON) { sendMessage(channel: $c, input: {text: "x", data: $d}) { id } }`,
			brooktest.Vars{"c": cid, "d": json.RawMessage(raw)}), "BAD_USER_INPUT")
	}
	var out struct{ SendMessage struct{ Data map[string]any } }
	n.Must(t, tok, `mutation($c: ID!, $d: JSON) { sendMessage(channel: $c, input: {text: "x", data: $d}) { data } }`,
		brooktest.Vars{"c": cid, "d": json.RawMessage(`{"big":1.5e308,"small":1e-1000,"tiny":5e-324}`)}, &out)
	if out.SendMessage.Data["big"] != 1.5e308 {
		t.Fatalf("stored data %v", out.SendMessage.Data)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); c != 1 {
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
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
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
	if c := n.Count(t, `SELECT count(*) FROM channel_members m JOIN channels c ON c.id = m.channel_id
		WHERE m.channel_id = $1 AND m.user_id = $2 AND m.last_read_seq = c.last_seq`, cid, carol); c != 1 {
		t.Fatal("carol's read position is not the channel's last message")
	}
}

// An admin who is no member may post, in a channel of any size, and has no
// read position there: its unread counts stay those of its memberships.
func TestChatAdminPostingHasNoUnread(t *testing.T) {
	// Not parallel: its node's push limit is not the other nodes', whose
	// workers would take its jobs, and it theirs, and count them with the
	// wrong limit (the jobs table is shared).
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol, mod := "alice-"+tag, "bob-"+tag, "carol-"+tag, "mod-"+tag
	env.AddUsers(t, n, alice, bob, carol, mod)
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
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
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
	active, err := n.Store.RecentlyActiveChatUsers(context.Background(), since, 1000)
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
	tag := brooktest.Tag()
	users := []string{"h0-" + tag, "h1-" + tag, "h2-" + tag}
	env.AddUsers(t, n, users...)
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
