package chat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// A banned user cannot send, react or join, and reads on; owners and
// moderators ban from their channel (not each other), admins from the
// app; a ban with an end lifts itself; bad input bans no one.
func TestChatBans(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave)
	cid := createChannel(t, n, alice, "messaging", "bans-"+tag, bob, carol, dave)
	stage := createChannel(t, n, alice, "livestream", "bans-stage-"+tag)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	first := sendMsg(t, n, alice, cid, "rules")
	events := n.MustDial(t, env.Token(t, dave)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	ban := `mutation($u: ID!, $c: ID, $until: Time, $reason: String) { banUser(user: $u, channel: $c, until: $until, reason: $reason) }`
	unban := `mutation($u: ID!, $c: ID) { unbanUser(user: $u, channel: $c) }`
	send := `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "let me talk" }) { id } }`
	bans := `SELECT count(*) FROM bans WHERE user_id = $1`

	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), ban, brooktest.Vars{"u": dave, "c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), ban, brooktest.Vars{"u": alice, "c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), ban, brooktest.Vars{"u": carol}), "FORBIDDEN") // app-wide: admins
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), ban, brooktest.Vars{"u": carol, "c": cid, "until": "2020-01-01T00:00:00Z"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), ban, brooktest.Vars{"u": carol, "c": cid, "reason": strings.Repeat("x", 501)}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), ban, brooktest.Vars{"u": "nobody-" + tag, "c": cid}), "BAD_USER_INPUT")
	if c := n.Count(t, bans, carol) + n.Count(t, bans, alice) + n.Count(t, bans, dave); c != 0 {
		t.Fatalf("refused bans wrote %d rows", c)
	}

	n.Must(t, env.Token(t, bob), ban, brooktest.Vars{"u": carol, "c": cid, "reason": "spam"}, nil)
	var e memberEvent
	events.NextData(&e)
	if e.ChannelEvents.Type != "user.banned" || e.ChannelEvents.User.ID != carol {
		t.Fatalf("the ban's event: %+v", e)
	}
	var banned struct {
		Channel struct {
			Members struct {
				Edges []struct {
					Node struct {
						User   struct{ ID string }
						Banned bool
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { members(first: 10) { edges { node { user { id } banned } } } } }`, brooktest.Vars{"c": cid}, &banned)
	for _, e := range banned.Channel.Members.Edges {
		if e.Node.Banned != (e.Node.User.ID == carol) {
			t.Fatalf("Member.banned of %s: %v", e.Node.User.ID, e.Node.Banned)
		}
	}
	before := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid)
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), send, brooktest.Vars{"c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`,
		brooktest.Vars{"m": first.ID}), "FORBIDDEN")
	if after := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before {
		t.Fatalf("a banned user's message was written")
	}
	n.Must(t, env.Token(t, carol), `query($c: ID!) { channel(id: $c) { messages { edges { cursor } } } }`, brooktest.Vars{"c": cid}, nil) // reads on
	n.Must(t, env.Token(t, carol), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": stage}, nil)              // another channel

	var lifted struct{ UnbanUser bool }
	n.Must(t, env.Token(t, alice), unban, brooktest.Vars{"u": carol, "c": cid}, &lifted)
	events.NextData(&e)
	if !lifted.UnbanUser || e.ChannelEvents.Type != "user.unbanned" {
		t.Fatalf("unban: %v, event %+v", lifted, e)
	}
	n.Must(t, env.Token(t, carol), send, brooktest.Vars{"c": cid}, nil)
	n.Must(t, env.Token(t, alice), unban, brooktest.Vars{"u": carol, "c": cid}, &lifted)
	if lifted.UnbanUser {
		t.Fatal("a second unban said a ban was in force")
	}

	// A ban with an end lifts itself.
	until := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	n.Must(t, env.Token(t, bob), ban, brooktest.Vars{"u": dave, "c": cid, "until": until}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, dave), send, brooktest.Vars{"c": cid}), "FORBIDDEN")
	time.Sleep(1600 * time.Millisecond)
	n.Must(t, env.Token(t, dave), send, brooktest.Vars{"c": cid}, nil)

	// An app-wide ban, by an admin: every channel, and joins.
	admin := env.AdminToken(t, "admin-"+tag)
	n.Must(t, admin, ban, brooktest.Vars{"u": dave}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, dave), send, brooktest.Vars{"c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, dave), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": stage}), "FORBIDDEN")
	n.Must(t, admin, unban, brooktest.Vars{"u": dave}, &lifted)
	n.Must(t, env.Token(t, dave), send, brooktest.Vars{"c": cid}, nil)

	// An owner an admin bans manages the channel no more.
	n.Must(t, admin, ban, brooktest.Vars{"u": alice, "c": cid}, nil)
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { updateChannel(id: $c, name: "mine") { id } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { truncateChannel(id: $c) { id } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")
	n.Must(t, admin, unban, brooktest.Vars{"u": alice, "c": cid}, nil)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { updateChannel(id: $c, name: "mine") { id } }`, brooktest.Vars{"c": cid}, nil)
}

// A shadow-banned user writes as before and sees what it wrote; nobody
// else does: not in history, streams, search, thread counts or mentions,
// and its messages count as unread for no one, in Redis and PostgreSQL.
func TestChatShadowBan(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "shadow-"+tag, bob, carol)
	root := sendMsg(t, n, alice, cid, "root")
	bobs := n.MustDial(t, env.Token(t, bob))
	bobMsgs := bobs.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	bobEvents := bobs.Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type message { text } } }`, brooktest.Vars{"c": cid})
	carolMsgs := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	n.Must(t, env.Token(t, alice), `mutation($u: ID!, $c: ID) { banUser(user: $u, channel: $c, shadow: true) }`, brooktest.Vars{"u": carol, "c": cid}, nil)

	hidden := sendMsg(t, n, carol, cid, "buy cheap watches @bob", map[string]any{"mentionedUserIds": []string{bob}})
	sendMsg(t, n, carol, cid, "a hidden reply", map[string]any{"parentId": root.ID})
	sendMsg(t, n, alice, cid, "visible")
	n.WaitForJobs(t)

	var m struct{ MessageAdded struct{ Text string } }
	bobMsgs.NextData(&m)
	if m.MessageAdded.Text != "visible" {
		t.Fatalf("bob's messageAdded after the shadowed messages: %+v", m)
	}
	var ev struct {
		ChannelEvents struct {
			Type    string
			Message *struct{ Text string }
		}
	}
	bobEvents.NextData(&ev)
	if ev.ChannelEvents.Type != "message.new" || ev.ChannelEvents.Message.Text != "visible" {
		t.Fatalf("bob's channelEvents: %+v", ev)
	}
	for _, want := range []string{"buy cheap watches @bob", "a hidden reply", "visible"} {
		carolMsgs.NextData(&m)
		if m.MessageAdded.Text != want {
			t.Fatalf("carol's own stream: %q, want %q", m.MessageAdded.Text, want)
		}
	}
	history := func(user string) []string {
		var got struct {
			Channel struct {
				Messages struct {
					Edges []struct{ Node struct{ Text string } }
				}
			}
		}
		env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
		n.Must(t, env.Token(t, user), `query($c: ID!) { channel(id: $c) { messages { edges { node { text } } } } }`, brooktest.Vars{"c": cid}, &got)
		var out []string
		for _, e := range got.Channel.Messages.Edges {
			out = append(out, e.Node.Text)
		}
		return out
	}
	if got := strings.Join(history(bob), "|"); got != "root|visible" {
		t.Fatalf("bob's history: %s", got)
	}
	if got := strings.Join(history(carol), "|"); got != "root|buy cheap watches @bob|visible" {
		t.Fatalf("carol's history: %s", got)
	}
	if got := unreadOf(t, n, bob); got[cid] != 2 {
		t.Fatalf("bob's unread (Redis): %v, want 2 (root and visible)", got)
	}
	if c := n.Count(t, `SELECT c.last_seq - m.last_read_seq FROM channels c JOIN channel_members m ON m.channel_id = c.id WHERE c.id = $1 AND m.user_id = $2`, cid, bob); c != 2 {
		t.Fatalf("bob's unread in PostgreSQL: %d", c)
	}
	var probe struct {
		Message        *struct{ ID string }
		SearchMessages struct{ Edges []struct{} }
		Root           struct{ ReplyCount int }
		UnreadCounts   struct{ TotalUnreadMentions int }
	}
	q := `query($m: ID!, $r: ID!) { message(id: $m) { id } searchMessages(query: "watches") { edges { cursor } }
		root: message(id: $r) { replyCount } unreadCounts { totalUnreadMentions } }`
	n.Must(t, env.Token(t, bob), q, brooktest.Vars{"m": hidden.ID, "r": root.ID}, &probe)
	if probe.Message != nil || len(probe.SearchMessages.Edges) != 0 || probe.Root.ReplyCount != 0 || probe.UnreadCounts.TotalUnreadMentions != 0 {
		t.Fatalf("bob sees the shadowed messages: %+v", probe)
	}
	n.Must(t, env.Token(t, carol), q, brooktest.Vars{"m": hidden.ID, "r": root.ID}, &probe)
	if probe.Message == nil || len(probe.SearchMessages.Edges) != 1 {
		t.Fatalf("carol does not see her own messages: %+v", probe)
	}
}
