package chat_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// Unread mentions count the unread messages that mention a member, as
// unread counts do (thread-only replies and system messages never), in
// each channel and across them, and follow reads and deletions.
func TestChatUnreadMentions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "ment-"+tag, bob)
	other := createChannel(t, n, alice, "messaging", "ment2-"+tag, bob)
	at := map[string]any{"mentionedUserIds": []string{bob}}
	m1 := sendMsg(t, n, alice, cid, "@bob first", at)
	m2 := sendMsg(t, n, alice, cid, "no mention")
	sendMsg(t, n, alice, cid, "@bob in the thread only", at, map[string]any{"parentId": m1.ID})
	shown := sendMsg(t, n, alice, cid, "@bob shown in the channel", at, map[string]any{"parentId": m1.ID, "showInChannel": true})
	sendMsg(t, n, alice, other, "@bob elsewhere", at)

	mentions := func() (inChannel, total int) {
		var got struct {
			Channel struct {
				Membership struct{ UnreadMentions int }
				Members    struct {
					Edges []struct {
						Node struct {
							User           struct{ ID string }
							UnreadMentions int
						}
					}
				}
			}
			UnreadCounts struct{ TotalUnreadMentions int }
		}
		n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { membership { unreadMentions } members { edges { node { user { id } unreadMentions } } } }
			unreadCounts { totalUnreadMentions } }`, brooktest.Vars{"c": cid}, &got)
		for _, e := range got.Channel.Members.Edges {
			if e.Node.User.ID == bob && e.Node.UnreadMentions != got.Channel.Membership.UnreadMentions {
				t.Fatalf("bob's mentions in the member list %d, in his membership %d", e.Node.UnreadMentions, got.Channel.Membership.UnreadMentions)
			}
		}
		return got.Channel.Membership.UnreadMentions, got.UnreadCounts.TotalUnreadMentions
	}
	if c, tot := mentions(); c != 2 || tot != 3 {
		t.Fatalf("bob's mentions: %d in the channel, %d in all, want 2 and 3", c, tot)
	}
	n.Must(t, env.Token(t, bob), `mutation($c: ID!, $m: ID!) { markRead(channel: $c, message: $m) { unreadCount } }`, brooktest.Vars{"c": cid, "m": m2.ID}, nil)
	if c, tot := mentions(); c != 1 || tot != 2 {
		t.Fatalf("after reading up to the second message: %d and %d, want 1 and 2", c, tot)
	}
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { deleteMessage(id: $m) { id } }`, brooktest.Vars{"m": shown.ID}, nil)
	if c, tot := mentions(); c != 0 || tot != 1 {
		t.Fatalf("after the mention was deleted: %d and %d, want 0 and 1", c, tot)
	}
}
