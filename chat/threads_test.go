package chat_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// threadView is one thread of a threads page.
type threadView struct {
	ParentMessage struct{ ID, Text string }
	Channel       struct{ ID string }
	ReplyCount    int
	UnreadReplies int
	LastReplyAt   time.Time
	LastReadAt    *time.Time
	Participants  []struct{ ID string }
}

const threadFields = `parentMessage { id text } channel { id } replyCount unreadReplies lastReplyAt lastReadAt participants { id }`

// threadsPage reads a page of a user's threads.
func threadsPage(t *testing.T, n *brooktest.Node, user string, first int, after string) (items []threadView, next string, more bool) {
	t.Helper()
	var out struct {
		Threads struct {
			Edges []struct {
				Cursor string
				Node   threadView
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	vars := brooktest.Vars{"n": first}
	if after != "" {
		vars["a"] = after
	}
	n.Must(t, env.Token(t, user), `query($n: Int, $a: String) { threads(first: $n, after: $a) { edges { cursor node { `+threadFields+` } } pageInfo { hasNextPage endCursor } } }`, vars, &out)
	for _, e := range out.Threads.Edges {
		items = append(items, e.Node)
	}
	if out.Threads.PageInfo.EndCursor != nil {
		next = *out.Threads.PageInfo.EndCursor
	}
	return items, next, out.Threads.PageInfo.HasNextPage
}

// threadsOf reads all of a user's threads, one page.
func threadsOf(t *testing.T, n *brooktest.Node, user string) []threadView {
	t.Helper()
	items, _, more := threadsPage(t, n, user, 100, "")
	if more {
		t.Fatalf("%s has more than 100 threads", user)
	}
	return items
}

// unreadByThread maps each of a user's threads (by parent text) to its
// unread replies, and checks the list is in order of last reply.
func unreadByThread(t *testing.T, n *brooktest.Node, user string) map[string]int {
	t.Helper()
	out := map[string]int{}
	items := threadsOf(t, n, user)
	for i, th := range items {
		out[th.ParentMessage.Text] = th.UnreadReplies
		if i > 0 && th.LastReplyAt.After(items[i-1].LastReplyAt) {
			t.Fatalf("%s's threads are not latest reply first: %+v", user, items)
		}
	}
	return out
}

func parentTexts(items []threadView) string {
	var s []string
	for _, th := range items {
		s = append(s, th.ParentMessage.Text)
	}
	return strings.Join(s, ",")
}

func participantIDs(th threadView) []string {
	var s []string
	for _, p := range th.Participants {
		s = append(s, p.ID)
	}
	return s
}

func sameUnread(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

// The caller's threads are those it started (once replied to) or replied
// in, the latest reply first, with exact unread replies: others' replies
// after its read position, neither its own nor a shadow-banned user's.
// Replying and markThreadRead read a thread; markRead does not.
func TestChatThreads(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave, erin, frank := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag, "erin-"+tag, "frank-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave, erin, frank)
	cid := createChannel(t, n, alice, "messaging", "threads-"+tag, bob, carol, dave, frank)
	other := createChannel(t, n, bob, "messaging", "threads-other-"+tag, alice)
	standup := sendMsg(t, n, alice, cid, "standup")
	lunch := sendMsg(t, n, bob, cid, "lunch")
	plans := sendMsg(t, n, bob, other, "plans")
	lonely := sendMsg(t, n, alice, cid, "lonely")

	// A message without replies is no thread.
	if got := threadsOf(t, n, alice); len(got) != 0 {
		t.Fatalf("alice's threads before any reply: %+v", got)
	}
	sendMsg(t, n, bob, cid, "ten works", map[string]any{"parentId": standup.ID})
	sameUnread(t, "alice, starter", unreadByThread(t, n, alice), map[string]int{"standup": 1})
	sameUnread(t, "bob, replier", unreadByThread(t, n, bob), map[string]int{"standup": 0})
	sendMsg(t, n, carol, cid, "late", map[string]any{"parentId": standup.ID})
	sendMsg(t, n, carol, cid, "sorry", map[string]any{"parentId": standup.ID})
	sendMsg(t, n, alice, cid, "sushi?", map[string]any{"parentId": lunch.ID})
	sendMsg(t, n, alice, other, "friday", map[string]any{"parentId": plans.ID})
	sameUnread(t, "alice", unreadByThread(t, n, alice), map[string]int{"standup": 3, "lunch": 0, "plans": 0})
	sameUnread(t, "bob", unreadByThread(t, n, bob), map[string]int{"standup": 2, "lunch": 1, "plans": 1})
	sameUnread(t, "carol", unreadByThread(t, n, carol), map[string]int{"standup": 0})
	if got := parentTexts(threadsOf(t, n, alice)); got != "plans,lunch,standup" {
		t.Fatalf("alice's threads, latest reply first: %s", got)
	}

	// Paging: one at a time, each once, in order.
	var paged []string
	after := ""
	for i := 0; i < 5; i++ {
		items, next, more := threadsPage(t, n, alice, 1, after)
		if len(items) != 1 {
			t.Fatalf("page %d: %+v", i, items)
		}
		paged = append(paged, items[0].ParentMessage.Text)
		if !more {
			break
		}
		after = next
	}
	if strings.Join(paged, ",") != "plans,lunch,standup" {
		t.Fatalf("alice's threads one page at a time: %v", paged)
	}
	if items, _, more := threadsPage(t, n, alice, 2, ""); len(items) != 2 || !more {
		t.Fatalf("a page of 2 of 3: %d items, more %v", len(items), more)
	}

	// A shadow-banned user's reply counts for no one, moves no one's list
	// and shows it as a participant to itself alone; its own list has it.
	n.Must(t, env.Token(t, alice), `mutation($u: ID!, $c: ID) { banUser(user: $u, channel: $c, shadow: true) }`, brooktest.Vars{"u": dave, "c": cid}, nil)
	sendMsg(t, n, dave, cid, "buy watches", map[string]any{"parentId": standup.ID})
	sendMsg(t, n, dave, cid, "cheap", map[string]any{"parentId": lunch.ID})
	sameUnread(t, "alice after a shadowed reply", unreadByThread(t, n, alice), map[string]int{"standup": 3, "lunch": 0, "plans": 0})
	sameUnread(t, "bob after a shadowed reply", unreadByThread(t, n, bob), map[string]int{"standup": 2, "lunch": 1, "plans": 1})
	sameUnread(t, "dave, shadow-banned", unreadByThread(t, n, dave), map[string]int{"lunch": 0, "standup": 0})
	if got := parentTexts(threadsOf(t, n, alice)); got != "plans,lunch,standup" {
		t.Fatalf("a shadowed reply moved alice's threads: %s", got)
	}
	aliceView := threadsOf(t, n, alice)[2]
	if aliceView.ReplyCount != 3 || !slices.Equal(participantIDs(aliceView), []string{alice, bob, carol}) || aliceView.Channel.ID != cid {
		t.Fatalf("standup as alice sees it: %+v", aliceView)
	}
	daveView := threadsOf(t, n, dave)
	if daveView[0].ParentMessage.Text != "lunch" || !slices.Equal(participantIDs(daveView[0]), []string{bob, alice, dave}) {
		t.Fatalf("dave's own view: %+v", daveView)
	}
	if c := n.Count(t, `SELECT count(*) FROM thread_participants WHERE parent_id = $1`, standup.ID); c != 4 {
		t.Fatalf("standup has %d participant rows, want 4 (alice, bob, carol, dave)", c)
	}

	// Replying reads the thread for the replier, and moves it up every
	// participant's list.
	carolBefore := threadsOf(t, n, carol)[0].LastReplyAt
	sendMsg(t, n, bob, cid, "on my way", map[string]any{"parentId": standup.ID})
	if after := threadsOf(t, n, carol)[0].LastReplyAt; !after.After(carolBefore) {
		t.Fatalf("bob's reply left carol's standup at %s (was %s)", after, carolBefore)
	}
	sameUnread(t, "bob after replying", unreadByThread(t, n, bob), map[string]int{"standup": 0, "lunch": 1, "plans": 1})
	sameUnread(t, "alice after bob's second reply", unreadByThread(t, n, alice), map[string]int{"standup": 4, "lunch": 0, "plans": 0})
	if got := parentTexts(threadsOf(t, n, alice)); got != "standup,plans,lunch" {
		t.Fatalf("bob's reply did not move standup up alice's list: %s", got)
	}

	// markThreadRead: the thread, read; the caller's other connection is
	// told; channel unread counts stay.
	n.WaitForJobs(t) // no notification of earlier messages comes in between
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription { myEvents { type channel message { id user { id } } totalUnreadCount } }`, nil)
	waitSubscribed(t, n)
	unreadBefore := unreadOf(t, n, alice)
	markThread := `mutation($m: ID!) { markThreadRead(message: $m) { ` + threadFields + ` } }`
	var marked struct{ MarkThreadRead threadView }
	n.Must(t, env.Token(t, alice), markThread, brooktest.Vars{"m": standup.ID}, &marked)
	if th := marked.MarkThreadRead; th.UnreadReplies != 0 || th.ParentMessage.ID != standup.ID || th.LastReadAt == nil || th.ReplyCount != 4 {
		t.Fatalf("markThreadRead: %+v", th)
	}
	var ev struct {
		MyEvents struct {
			Type, Channel string
			Message       struct {
				ID   string
				User struct{ ID string }
			}
			TotalUnreadCount int
		}
	}
	events.NextData(&ev)
	if e := ev.MyEvents; e.Type != "notification.thread_read" || e.Channel != cid || e.Message.ID != standup.ID || e.Message.User.ID != alice {
		t.Fatalf("alice's thread_read event: %+v", e)
	}
	sameUnread(t, "alice after markThreadRead", unreadByThread(t, n, alice), map[string]int{"standup": 0, "lunch": 0, "plans": 0})
	if got := unreadOf(t, n, alice); got[cid] != unreadBefore[cid] || ev.MyEvents.TotalUnreadCount != func() int {
		s := 0
		for _, v := range got {
			s += v
		}
		return s
	}() {
		t.Fatalf("markThreadRead changed channel counts: %v, then %v; event total %d", unreadBefore, got, ev.MyEvents.TotalUnreadCount)
	}
	// markRead reads the channel alone.
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": cid}, nil)
	sameUnread(t, "bob after markRead", unreadByThread(t, n, bob), map[string]int{"standup": 0, "lunch": 1, "plans": 1})

	// A member who takes no part has no read position: nothing is written.
	n.Must(t, env.Token(t, frank), markThread, brooktest.Vars{"m": lunch.ID}, &marked)
	if marked.MarkThreadRead.UnreadReplies != 0 || marked.MarkThreadRead.LastReadAt != nil ||
		n.Count(t, `SELECT count(*) FROM thread_participants WHERE user_id = $1`, frank) != 0 {
		t.Fatalf("frank's markThreadRead: %+v", marked.MarkThreadRead)
	}
	if got := threadsOf(t, n, frank); len(got) != 0 {
		t.Fatalf("frank's threads: %+v", got)
	}

	// Bad input, and parents the caller may not read, change nothing.
	reply := sendMsg(t, n, carol, cid, "one more", map[string]any{"parentId": lunch.ID})
	hidden := shadowedThread(t, n, dave, cid)
	readsBefore := n.Count(t, `SELECT count(*) FROM thread_participants WHERE last_read_at IS NOT NULL`)
	for _, c := range []struct{ user, message, code string }{
		{alice, reply.ID, "BAD_USER_INPUT"},  // a reply
		{alice, lonely.ID, "BAD_USER_INPUT"}, // no replies
		{alice, "not-a-uuid", "BAD_USER_INPUT"},
		{alice, "0193e8a1-5c00-7000-8000-00000000dead", "NOT_FOUND"},
		{erin, standup.ID, "NOT_FOUND"}, // not in the channel
		{alice, hidden, "NOT_FOUND"},    // another's shadowed thread
	} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, c.user), markThread, brooktest.Vars{"m": c.message}), c.code)
	}
	admin := env.AdminToken(t, "admin-"+tag)
	brooktest.WantCode(t, n.Query(t, admin, markThread, brooktest.Vars{"m": standup.ID}), "FORBIDDEN") // no read position
	if after := n.Count(t, `SELECT count(*) FROM thread_participants WHERE last_read_at IS NOT NULL`); after != readsBefore {
		t.Fatalf("refused markThreadRead wrote read positions: %d, then %d", readsBefore, after)
	}
	threads := `query($a: String, $n: Int) { threads(first: $n, after: $a) { edges { cursor } } }`
	for _, vars := range []brooktest.Vars{
		{"a": "not a cursor"},
		{"a": base64.RawURLEncoding.EncodeToString([]byte("12|not-a-uuid"))},
		{"a": base64.RawURLEncoding.EncodeToString([]byte("soon|0193e8a1-5c00-7000-8000-000000000001"))},
		{"n": -1},
		{"n": 101},
	} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, alice), threads, vars), "BAD_USER_INPUT")
	}

	// An admin's reply as no member: the starter's thread, no admin row.
	n.Must(t, admin, `mutation($c: ID!, $p: ID!) { sendMessage(channel: $c, input: { text: "noted", parentId: $p }) { id } }`,
		brooktest.Vars{"c": cid, "p": lonely.ID}, nil)
	if c := n.Count(t, `SELECT count(*) FROM thread_participants WHERE parent_id = $1`, lonely.ID); c != 1 {
		t.Fatalf("lonely has %d participant rows after the admin's reply, want 1 (alice's)", c)
	}
	sameUnread(t, "alice after the admin's reply", unreadByThread(t, n, alice), map[string]int{"lonely": 1, "standup": 0, "lunch": 1, "plans": 0})

	// A removed member no longer sees the channel's threads.
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": carol}, nil)
	if got := threadsOf(t, n, carol); len(got) != 0 {
		t.Fatalf("carol's threads after her removal: %+v", got)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), markThread, brooktest.Vars{"m": standup.ID}), "NOT_FOUND")
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { leaveChannel(channel: $c) }`, brooktest.Vars{"c": cid}, nil)
	if got := parentTexts(threadsOf(t, n, bob)); got != "plans" {
		t.Fatalf("bob's threads after leaving: %s", got)
	}
}

// shadowedThread sends a shadow-banned user's top-level message with a
// reply of its own (a thread only it sees) and returns the message's id.
func shadowedThread(t *testing.T, n *brooktest.Node, user, channel string) string {
	t.Helper()
	m := sendMsg(t, n, user, channel, "hidden root")
	sendMsg(t, n, user, channel, "hidden reply", map[string]any{"parentId": m.ID})
	return m.ID
}

// A reply costs three statements more than the common send (its parent,
// counted with the thread moved up its participants' lists, and its
// participants), and the common send none.
func TestChatThreadReplyStatements(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "thread-stmts-"+tag, bob)
	root := sendMsg(t, n, alice, cid, "root")
	reply := func(user string) int64 {
		n.Must(t, env.Token(t, user), `{ me { id } }`, nil, nil)
		before := n.Store.Statements()
		n.Must(t, env.Token(t, user), `mutation($c: ID!, $p: ID!) { sendMessage(channel: $c, input: { text: "re", parentId: $p }) { id } }`,
			brooktest.Vars{"c": cid, "p": root.ID}, nil)
		return n.Store.Statements() - before
	}
	first, second, own := reply(bob), reply(bob), reply(alice)
	if first != sendStatements+3 || second != sendStatements+3 || own != sendStatements+3 {
		t.Fatalf("a reply ran %d, %d and %d statements, want %d", first, second, own, sendStatements+3)
	}
}

// The migration that made thread_participants finds the threads that
// were there before it: starters and repliers, everything read. Not
// parallel: the backfill reads every thread of the database.
func TestChatThreadsBackfill(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "backfill-"+tag, bob, carol)
	root := sendMsg(t, n, alice, cid, "root")
	sendMsg(t, n, bob, cid, "one", map[string]any{"parentId": root.ID})
	sendMsg(t, n, carol, cid, "two", map[string]any{"parentId": root.ID})
	want := threadsOf(t, n, alice)

	files, _ := filepath.Glob("../migrations/*_threads.sql")
	if len(files) != 1 {
		t.Fatalf("the threads migration: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	_, backfill, ok := strings.Cut(string(b), "INSERT INTO thread_participants")
	if !ok {
		t.Fatal("the migration has no backfill")
	}
	ctx := context.Background()
	if _, err := n.Store.DB().Exec(ctx, `DELETE FROM thread_participants WHERE parent_id = $1`, root.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Store.DB().Exec(ctx, "INSERT INTO thread_participants"+backfill); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{alice, bob, carol} {
		got := threadsOf(t, n, u)
		if len(got) != 1 || got[0].UnreadReplies != 0 || got[0].ParentMessage.ID != root.ID {
			t.Fatalf("%s's threads after the backfill: %+v", u, got)
		}
	}
	got := threadsOf(t, n, alice)[0]
	if !got.LastReplyAt.Equal(want[0].LastReplyAt) || !slices.Equal(participantIDs(got), []string{alice, bob, carol}) {
		t.Fatalf("after the backfill %+v, before %+v", got, want[0])
	}
}
