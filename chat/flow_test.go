package chat_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/brooktest"
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
