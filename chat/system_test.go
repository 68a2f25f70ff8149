package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// Membership changes leave system messages in the channel's history, in
// order, on messageAdded too; they count as unread for nobody and do not
// become the channel's last message. Livestream channels record no joins
// and leaves.
func TestChatSystemMessages(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "sys-"+tag)
	stream := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text type user { id } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	as := func(user, q string, v brooktest.Vars) { n.Must(t, env.Token(t, user), q, v, nil) }
	v := brooktest.Vars{"c": cid}
	as(alice, `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": bob})
	as(alice, `mutation($c: ID!, $u: ID!) { inviteMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": carol})
	as(carol, `mutation($c: ID!) { acceptInvite(channel: $c) { id } }`, v)
	as(alice, `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`, brooktest.Vars{"c": cid, "u": bob})
	as(alice, `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`, brooktest.Vars{"c": cid, "u": bob}) // no change
	as(bob, `mutation($c: ID!) { leaveChannel(channel: $c) }`, v)
	as(alice, `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": carol})
	want := []string{
		"Alice-" + tag + " added Bob-" + tag,
		"Carol-" + tag + " joined",
		"Alice-" + tag + " made Bob-" + tag + " a moderator",
		"Bob-" + tag + " left",
		"Alice-" + tag + " removed Carol-" + tag,
	}
	for i, w := range want {
		var m struct {
			MessageAdded struct {
				Text, Type string
			}
		}
		stream.NextData(&m)
		if m.MessageAdded.Text != w || m.MessageAdded.Type != "system" {
			t.Fatalf("system message %d on messageAdded: %+v, want %q", i, m.MessageAdded, w)
		}
	}
	var view struct {
		Channel struct {
			LastMessage *struct{ ID string }
			Messages    struct {
				Edges []struct {
					Node struct {
						Text, Type string
						User       struct{ ID string }
						Data       map[string]any
					}
				}
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { lastMessage { id } messages { edges { node { text type user { id } data } } } } }`, v, &view)
	e := view.Channel.Messages.Edges
	if view.Channel.LastMessage != nil || len(e) != len(want) {
		t.Fatalf("history: last %+v, %d messages", view.Channel.LastMessage, len(e))
	}
	if d := e[0].Node.Data; d["event"] != "member.added" || d["actor"] != alice || fmt.Sprint(d["users"]) != "["+bob+"]" || e[0].Node.User.ID != alice {
		t.Fatalf("the first system message: %+v", e[0].Node)
	}
	if d := e[2].Node.Data; d["event"] != "member.role_changed" || d["role"] != "moderator" {
		t.Fatalf("the role change's data: %+v", d)
	}

	// Nobody counts them; the next real message counts once.
	as(alice, `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": cid, "u": bob})
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); got[cid] != 0 {
		t.Fatalf("bob's unread after system messages: %v", got)
	}
	sendMsg(t, n, alice, cid, "real")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); got[cid] != 1 {
		t.Fatalf("bob's unread after one message: %v", got)
	}

	// A livestream records a removal, not joins and leaves.
	live := createChannel(t, n, alice, "livestream", "sys-live-"+tag)
	as(bob, `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": live})
	as(bob, `mutation($c: ID!) { leaveChannel(channel: $c) }`, brooktest.Vars{"c": live})
	as(carol, `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": live})
	as(alice, `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": live, "u": carol})
	var texts []string
	rows, err := n.Store.DB().Query(t.Context(), `SELECT text FROM messages WHERE channel_id = $1 ORDER BY pos`, live)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		texts = append(texts, s)
	}
	if len(texts) != 1 || !strings.HasSuffix(texts[0], "removed Carol-"+tag) {
		t.Fatalf("the livestream's system messages: %q", texts)
	}
}
