package chat_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// The repair pass compares users who only receive too: a member of a
// channel with a new message is among the users it checks, and a counter
// of hers that drifted is fixed.
func TestChatRepairCoversReceivers(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
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
	recent, err := n.Store.RecentlyActiveChatUsers(ctx, since, 100_000)
	if err != nil || !slices.Contains(recent, carol) {
		t.Fatalf("users the repair pass checks: carol missing (%v)", err)
	}
	if err := n.State.Redis().HSet(ctx, n.State.Key("chat", "u", "{u:"+carol+"}"), "s:"+cid, 999999).Err(); err != nil {
		t.Fatal(err)
	}
	if fixed, err := n.Chat.RepairUnread(ctx, []string{carol}); err != nil || fixed != 1 {
		t.Fatalf("repair fixed %d, %v", fixed, err)
	}
	for i := 0; i < 2; i++ {
		if got := unreadOf(t, n, carol)[cid]; got != 1 {
			t.Fatalf("carol's unread after the repair (read %d): %d, want 1", i+1, got)
		}
	}
}

// Reading unread counts is one Redis round trip once the counters are
// built, also for a member of a big channel with no message yet.
func TestChatUnreadReadsStayInRedis(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
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
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
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
	if err := n.State.Redis().Del(context.Background(), n.State.Key("chat", "ub", "{u:"+bob+"}")).Err(); err != nil {
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
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
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
	h := n.State.Key("chat", "u", "{u:"+carol+"}")
	if err := n.State.Redis().HSet(ctx, h, "s:"+gone, 3, "r:"+gone, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.State.Redis().HIncrBy(ctx, h, "t", 3).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.State.Redis().HIncrBy(ctx, h, "c", 1).Err(); err != nil {
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
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "late-bump-"+tag, bob)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { memberCount } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	if got := unreadOf(t, n, bob); len(got) != 0 { // rebuilt without the channel
		t.Fatalf("bob after his removal: %v", got)
	}
	// The job of a message sent before the removal, with the members it read then.
	if _, err := n.State.BumpUnread(context.Background(), cid, 5, []string{alice, bob}, &store.ReadPosition{ChannelID: cid, UserID: alice, Seq: 5}); err != nil {
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
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
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
	if _, err := n.State.RecordRead(ctx, &store.ReadPosition{ChannelID: cid, UserID: bob, Seq: 1, Big: true}); err != nil {
		t.Fatal(err)
	}
	if err := n.State.SetBigChannelSeq(ctx, cid, 1, &store.ReadPosition{ChannelID: cid, UserID: bob, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := n.State.SetBigChannelSeq(ctx, cid, 5, &store.ReadPosition{ChannelID: cid, UserID: alice, Seq: 5}); err != nil { // four more messages
		t.Fatal(err)
	}
	if total, channels := counts(); total != 0 || channels != 0 {
		t.Fatalf("bob, removed, after late writes: %d in %d channels", total, channels)
	}
}

// markUnread right after sending, before the message's job has run: the
// job, which records the sender's read position too (in case the request
// stopped before it did), must not move it forwards again over the mark,
// in a channel under the push limit (a message and a thread reply) or
// above it. (Not parallel: other tests' workers would take the jobs.)
func TestChatMarkUnreadBeforeTheSendersJob(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.ChatPushMemberLimit = 2 }})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	small := createChannel(t, n, alice, "messaging", "mark-small-"+tag, bob)
	big := createChannel(t, n, alice, "messaging", "mark-big-"+tag, bob, carol) // 3 > 2: pull
	ctx := context.Background()
	jobs := workers.New(n.Store, n.Bus, workers.Options{Concurrency: 1})
	chat.New(chat.Options{Parts: product.Parts{Store: n.Store, State: n.State, Bus: n.Bus}, PushMemberLimit: 2}).RegisterJobs(jobs, 0)
	// runJobs runs the ready message jobs: at least want of them (an
	// earlier test may have left one of its own).
	runJobs := func(want int) {
		t.Helper()
		total := 0
		for {
			done, err := jobs.RunOnce(ctx, []string{store.ChatMessageKind})
			if err != nil {
				t.Fatal(err)
			}
			if done == 0 {
				break
			}
			total += done
		}
		if total < want {
			t.Fatalf("message jobs: %d done, want %d", total, want)
		}
	}
	mark := `mutation($c: ID!, $m: ID!) { markUnread(channel: $c, message: $m) { unreadCount } }`
	firstSmall := sendMsg(t, n, alice, small, "one")
	firstBig := sendMsg(t, n, alice, big, "one")
	runJobs(2)
	sendMsg(t, n, bob, small, "mine")
	sendMsg(t, n, bob, small, "a reply", map[string]any{"parentId": firstSmall.ID})
	sendMsg(t, n, bob, big, "mine")
	n.Must(t, env.Token(t, bob), mark, brooktest.Vars{"c": small, "m": firstSmall.ID}, nil)
	n.Must(t, env.Token(t, bob), mark, brooktest.Vars{"c": big, "m": firstBig.ID}, nil)
	want := map[string]int{small: 2, big: 2} // "one" and bob's own "mine", in each
	if got := unreadOf(t, n, bob); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bob's unread after markUnread: %v, want %v", got, want)
	}
	runJobs(3) // the jobs of bob's three messages
	truth, err := n.Store.UnreadCountsFromDB(ctx, bob)
	if err != nil || truth.TotalUnreadCount != 4 {
		t.Fatalf("bob's unread in PostgreSQL: %+v, %v", truth, err)
	}
	if got := unreadOf(t, n, bob); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bob's unread after his messages' jobs: %v, want %v", got, want)
	}
	// The job still records the read position of a send whose request
	// stopped before it did (here: a send by the store alone).
	for _, c := range []string{small, big} {
		if _, _, err := n.Store.SendMessage(ctx, c, bob, store.SendAs{Member: true}, store.MessageInput{Text: "again"}); err != nil {
			t.Fatal(err)
		}
	}
	runJobs(2)
	if got := unreadOf(t, n, bob); len(got) != 0 {
		t.Fatalf("bob's unread after two more messages of his: %v, want none", got)
	}
}
