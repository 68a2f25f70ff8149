package chat_test

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// counts reads a user's unread counts as the API gives them: per channel,
// and the totals (which leave muted channels out).
type counts struct {
	total, channels int
	per             map[string]int
}

func countsOf(t *testing.T, n *brooktest.Node, user string) counts {
	t.Helper()
	var out struct {
		UnreadCounts struct {
			TotalUnreadCount, UnreadChannels int
			Channels                         []struct {
				Channel     struct{ ID string }
				UnreadCount int
			}
		}
	}
	n.Must(t, env.Token(t, user), `{ unreadCounts { totalUnreadCount unreadChannels channels { channel { id } unreadCount } } }`, nil, &out)
	c := counts{total: out.UnreadCounts.TotalUnreadCount, channels: out.UnreadCounts.UnreadChannels, per: map[string]int{}}
	for _, ch := range out.UnreadCounts.Channels {
		c.per[ch.Channel.ID] = ch.UnreadCount
	}
	return c
}

// memberUnread is a member's unread count in one channel, as
// Channel.membership computes it in PostgreSQL.
func memberUnread(t *testing.T, n *brooktest.Node, user, cid string) int {
	t.Helper()
	var out struct {
		Channel struct{ Membership struct{ UnreadCount int } }
	}
	n.Must(t, env.Token(t, user), `query($c: ID!) { channel(id: $c) { membership { unreadCount } } }`, brooktest.Vars{"c": cid}, &out)
	return out.Channel.Membership.UnreadCount
}

// A blocker sees none of the blocked user's messages, anywhere, nor
// counts them; the blocked user cannot write where the two are alone nor
// open a conversation with the blocker; unblocking brings it all back.
func TestChatBlocks(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	group := createChannel(t, n, alice, "messaging", "blocks-"+tag, bob, carol)
	var dm struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, alice), `mutation($m: [ID!]) { createChannel(input: { type: "messaging", members: $m, distinct: true }) { id } }`,
		brooktest.Vars{"m": []string{bob}}, &dm)
	pair := dm.CreateChannel.ID
	block := `mutation($u: ID!) { blockUser(user: $u) }`

	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), block, brooktest.Vars{"u": alice}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), block, brooktest.Vars{"u": "nobody-" + tag}), "BAD_USER_INPUT")
	if c := n.Count(t, `SELECT count(*) FROM user_blocks WHERE blocker_id = $1`, alice); c != 0 {
		t.Fatalf("refused blocks wrote %d rows", c)
	}
	aliceMsgs := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": group})
	n.Must(t, env.Token(t, alice), block, brooktest.Vars{"u": bob}, nil)
	n.Must(t, env.Token(t, alice), block, brooktest.Vars{"u": bob}, nil) // again: no change
	waitSubscribed(t, n)

	sendMsg(t, n, bob, group, "spam from bob @alice", map[string]any{"mentionedUserIds": []string{alice}})
	sendMsg(t, n, carol, group, "hello from carol")
	n.WaitForJobs(t)
	var m struct{ MessageAdded struct{ Text string } }
	aliceMsgs.NextData(&m)
	if m.MessageAdded.Text != "hello from carol" {
		t.Fatalf("alice's stream delivered %q first", m.MessageAdded.Text)
	}
	var seen struct {
		Channel struct {
			Messages struct {
				Edges []struct{ Node struct{ Text string } }
			}
		}
		SearchMessages struct{ Edges []struct{} }
		UnreadCounts   struct{ TotalUnreadMentions int }
		Me             struct{ BlockedUsers []struct{ ID string } }
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { messages { edges { node { text } } } }
		searchMessages(query: "spam") { edges { cursor } } unreadCounts { totalUnreadMentions } me { blockedUsers { id } } }`,
		brooktest.Vars{"c": group}, &seen)
	if len(seen.Channel.Messages.Edges) != 1 || seen.Channel.Messages.Edges[0].Node.Text != "hello from carol" ||
		len(seen.SearchMessages.Edges) != 0 || seen.UnreadCounts.TotalUnreadMentions != 0 ||
		len(seen.Me.BlockedUsers) != 1 || seen.Me.BlockedUsers[0].ID != bob {
		t.Fatalf("alice sees what bob wrote: %+v", seen)
	}
	if c := countsOf(t, n, alice); c.per[group] != 1 || c.total != 1 || memberUnread(t, n, alice, group) != 1 {
		t.Fatalf("alice's counts with bob blocked: %+v", c)
	}
	// bob's own counts are as ever: carol's message.
	if c := countsOf(t, n, bob); c.per[group] != 1 {
		t.Fatalf("bob's counts: %+v", c)
	}
	// Another user's blocks are nobody's business.
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `query($u: ID!) { user(id: $u) { blockedUsers { id } } }`, brooktest.Vars{"u": alice}), "FORBIDDEN")

	// bob cannot write where the two are alone, nor open a conversation.
	before := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, pair)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "let me in" }) { id } }`,
		brooktest.Vars{"c": pair}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($m: [ID!]) { createChannel(input: { type: "messaging", members: $m, distinct: true }) { id } }`,
		brooktest.Vars{"m": []string{alice, carol}}), "FORBIDDEN")
	if after := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, pair); after != before {
		t.Fatal("a blocked user's message was written")
	}
	sendMsg(t, n, alice, pair, "alice may still write")

	// Unblocked: bob's messages are back, in history and counts.
	var ok struct{ UnblockUser bool }
	n.Must(t, env.Token(t, alice), `mutation($u: ID!) { unblockUser(user: $u) }`, brooktest.Vars{"u": bob}, &ok)
	if !ok.UnblockUser {
		t.Fatal("unblock said there was no block")
	}
	if c := countsOf(t, n, alice); c.per[group] != 2 || c.total != 2 {
		t.Fatalf("alice's counts after the unblock: %+v", c)
	}
	sendMsg(t, n, bob, pair, "thanks")
	n.Must(t, env.Token(t, alice), `mutation($u: ID!) { unblockUser(user: $u) }`, brooktest.Vars{"u": bob}, &ok)
	if ok.UnblockUser {
		t.Fatal("a second unblock said there was a block")
	}
}

// A muted user's messages count no unread and notify nothing; a muted
// channel keeps its count but leaves the totals and notifies nothing;
// both end exactly when they say, with no sweeper.
func TestChatMutes(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	one := createChannel(t, n, alice, "messaging", "mute1-"+tag, bob, carol)
	two := createChannel(t, n, alice, "messaging", "mute2-"+tag, bob, carol)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription { myEvents { type channel totalUnreadCount } }`, nil)
	waitSubscribed(t, n)

	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($u: ID!, $until: Time) { muteUser(user: $u, until: $until) }`,
		brooktest.Vars{"u": bob, "until": "2020-01-01T00:00:00Z"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $until: Time) { muteChannel(channel: $c, until: $until) }`,
		brooktest.Vars{"c": one, "until": "2020-01-01T00:00:00Z"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { muteChannel(channel: $c) }`,
		brooktest.Vars{"c": "messaging:none-" + tag}), "NOT_FOUND")
	if c := n.Count(t, `SELECT count(*) FROM user_mutes WHERE muter_id = $1`, alice) + n.Count(t, `SELECT count(*) FROM channel_members WHERE user_id = $1 AND muted`, alice); c != 0 {
		t.Fatalf("refused mutes wrote %d rows", c)
	}

	until := time.Now().Add(2 * time.Second)
	n.Must(t, env.Token(t, alice), `mutation($u: ID!, $until: Time) { muteUser(user: $u, until: $until) }`,
		brooktest.Vars{"u": bob, "until": until.UTC().Format(time.RFC3339Nano)}, nil)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { muteChannel(channel: $c) }`, brooktest.Vars{"c": two}, nil)

	sendMsg(t, n, bob, one, "muted bob")
	sendMsg(t, n, carol, two, "carol in a muted channel")
	sendMsg(t, n, carol, one, "carol counts")
	n.WaitForJobs(t)
	var ev struct {
		MyEvents struct {
			Type             string
			Channel          string
			TotalUnreadCount int
		}
	}
	events.NextData(&ev)
	if ev.MyEvents.Type != "notification.message_new" || ev.MyEvents.Channel != one || ev.MyEvents.TotalUnreadCount != 1 {
		t.Fatalf("alice's only notification: %+v (want carol's in %s, total 1)", ev, one)
	}
	c := countsOf(t, n, alice)
	if c.per[one] != 1 || c.per[two] != 1 || c.total != 1 || c.channels != 1 {
		t.Fatalf("alice's counts: %+v (want 1 in each channel, totals 1 over 1 channel)", c)
	}
	var me struct {
		Me struct {
			MutedUsers []struct{ User struct{ ID string } }
		}
		Channel struct {
			Membership struct {
				Muted       bool
				UnreadCount int
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { me { mutedUsers { user { id } } } channel(id: $c) { membership { muted unreadCount } } }`, brooktest.Vars{"c": two}, &me)
	if len(me.Me.MutedUsers) != 1 || me.Me.MutedUsers[0].User.ID != bob || !me.Channel.Membership.Muted || me.Channel.Membership.UnreadCount != 1 {
		t.Fatalf("alice's mutes: %+v", me)
	}

	var muted struct {
		Channels struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	n.Must(t, env.Token(t, alice), `{ channels(filter: { muted: true }) { edges { node { id } } } }`, nil, &muted)
	if len(muted.Channels.Edges) != 1 || muted.Channels.Edges[0].Node.ID != two {
		t.Fatalf("channels(filter: { muted: true }): %+v", muted)
	}
	// The user mute ends by itself: bob's message counts again.
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	if c := countsOf(t, n, alice); c.per[one] != 2 || c.total != 2 {
		t.Fatalf("alice's counts after the mute ended: %+v", c)
	}
	var was struct{ UnmuteChannel bool }
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { unmuteChannel(channel: $c) }`, brooktest.Vars{"c": two}, &was)
	if !was.UnmuteChannel {
		t.Fatal("unmute said the channel was not muted")
	}
	// No silence left: the counts come from Redis again, complete.
	if c := countsOf(t, n, alice); c.per[two] != 1 || c.total != 3 || c.channels != 2 {
		t.Fatalf("alice's counts after the unmute: %+v", c)
	}
	if _, complete, _, err := n.State.ReadUnread(context.Background(), alice); err != nil || !complete {
		t.Fatalf("alice's Redis counters after every silence ended: complete %v, %v", complete, err)
	}
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { unmuteChannel(channel: $c) }`, brooktest.Vars{"c": two}, &was)
	if was.UnmuteChannel {
		t.Fatal("a second unmute said the channel was muted")
	}
}
