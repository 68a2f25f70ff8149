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

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/store"
)

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
	_, _, err := n.Store.SendMessage(context.Background(), cid, bob, store.SendAs{Member: true}, store.MessageInput{Text: "too late"})
	if !errors.Is(err, store.ErrNotChannelMember) {
		t.Fatalf("a removed member's send: %v", err)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND type <> 'system'`, cid); c != 0 {
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
	holder := brooktest.BackendPID(t, tx)
	added := make(chan error, 1)
	go func() {
		added <- n.Client(env.Token(t, alice)).Run(ctx, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`,
			brooktest.Vars{"c": cid, "u": []string{carol}}, nil)
	}()
	brooktest.Eventually(t, "the add waits on carol's row", func() bool {
		return brooktest.LockWaiters(t, n.Store.DB(), holder) == 1
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
	// channel and membership, then the page with its users and reaction
	// counts in one statement.
	if small, large := statements(5), statements(50); small != 2 || large != small {
		t.Fatalf("history page ran %d statements for 5 messages, %d for 50; want 2", small, large)
	}
}
