package chat_test

import (
	"context"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
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

// waitSubscribed waits for just-started subscriptions to go live.
func waitSubscribed(t *testing.T, n *brooktest.Node) {
	t.Helper()
	n.WaitSubscribed(t)
}

// channelWithoutWorkers starts a node whose jobs only the test runs, and
// a messaging channel of two new users, alice and bob, named after prefix.
func channelWithoutWorkers(t *testing.T, prefix string) (n *brooktest.Node, alice, bob, cid string) {
	n = env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	tag := brooktest.Tag()
	alice, bob = prefix+"-alice-"+tag, prefix+"-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid = createChannel(t, n, alice, "messaging", prefix+"-"+tag, bob)
	// The tests count the message jobs they run. System messages' jobs
	// (this channel's, and earlier tests') wait 2 s before they may run:
	// drop them, as their requests published the messages already.
	if _, err := n.Store.DB().Exec(context.Background(), `DELETE FROM jobs WHERE kind = $1 AND payload->>'message' IN
		(SELECT id::text FROM messages WHERE type = 'system')`, store.ChatMessageKind); err != nil {
		t.Fatal(err)
	}
	return n, alice, bob, cid
}

const msgFields = `id text type replyCount user { id name } parent { id }`

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
