package chat_test

import (
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// myEvent is a myEvents message as these tests select it.
type myEvent struct {
	MyEvents struct {
		Type, Channel    string
		TotalUnreadCount int
	}
}

// nextMemberEvent skips message events to the next membership event.
func nextMemberEvent(t *testing.T, s *brooktest.Sub) memberEvent {
	t.Helper()
	var ev memberEvent
	s.NextData(&ev)
	for ev.ChannelEvents.Type == "message.new" {
		s.NextData(&ev)
	}
	return ev
}

// An invited user sees the channel and may read it, but counts no unread,
// follows no stream and writes nothing until it accepts; then it is a
// member like one an owner added. Each step is announced.
func TestChatInviteAndAccept(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "design-"+tag)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`,
		brooktest.Vars{"c": cid})
	mine := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel totalUnreadCount } }`, nil)
	waitSubscribed(t, n)

	invite := `mutation($c: ID!, $u: [ID!]!) { inviteMembers(channel: $c, userIds: $u) { memberCount } }`
	var inv struct{ InviteMembers struct{ MemberCount int } }
	n.Must(t, env.Token(t, alice), invite, brooktest.Vars{"c": cid, "u": []string{bob, alice}}, &inv)
	if inv.InviteMembers.MemberCount != 1 {
		t.Fatalf("inviting made members: %+v", inv)
	}
	if ev := nextMemberEvent(t, events); ev.ChannelEvents.Type != "member.invited" || ev.ChannelEvents.User.ID != bob {
		t.Fatalf("the invitation's event: %+v", ev)
	}
	var note myEvent
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.invited" || note.MyEvents.Channel != cid {
		t.Fatalf("bob's notification: %+v", note)
	}
	// Alice, a member, was not invited; inviting bob again changes nothing.
	n.Must(t, env.Token(t, alice), invite, brooktest.Vars{"c": cid, "u": []string{bob}}, nil)
	if c := n.Count(t, `SELECT count(*) FROM channel_invites WHERE channel_id = $1`, cid); c != 1 {
		t.Fatalf("%d invitations, want bob's alone", c)
	}
	events.None(200e6)

	// Bob sees the channel, as an invitation, and may read it.
	sendMsg(t, n, alice, cid, "before bob")
	var view struct {
		Channel struct {
			Membership struct {
				Status    string
				InvitedBy struct{ ID string }
			}
			Messages struct {
				Edges []struct{ Node struct{ Text string } }
			}
			Members struct {
				Edges []struct {
					Node struct{ User struct{ ID string } }
				}
			}
		}
	}
	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { membership { status invitedBy { id } } messages { edges { node { text } } }
		members(status: INVITED) { edges { node { user { id } } } } } }`, brooktest.Vars{"c": cid}, &view)
	if v := view.Channel; v.Membership.Status != "INVITED" || v.Membership.InvitedBy.ID != alice || len(v.Messages.Edges) != 1 ||
		len(v.Members.Edges) != 1 || v.Members.Edges[0].Node.User.ID != bob {
		t.Fatalf("bob's view of the channel he is invited to: %+v", v)
	}
	listed := func(user string, filter map[string]any) bool {
		var got struct {
			Channels struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		n.Must(t, env.Token(t, user), `query($f: ChannelFilter) { channels(filter: $f) { edges { node { id } } } }`, brooktest.Vars{"f": filter}, &got)
		for _, e := range got.Channels.Edges {
			if e.Node.ID == cid {
				return true
			}
		}
		return false
	}
	if !listed(bob, nil) || !listed(bob, map[string]any{"invited": true}) || listed(bob, map[string]any{"invited": false}) ||
		listed(bob, map[string]any{"hasUnread": true}) {
		t.Fatal("bob's channel list does not show the invitation as one")
	}
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); len(got) != 0 {
		t.Fatalf("an invitation counts unread: %v", got)
	}
	for _, op := range []string{
		`mutation($c: ID!) { sendMessage(channel: $c, input: { text: "early" }) { id } }`,
		`mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`,
	} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, bob), op, brooktest.Vars{"c": cid}), "FORBIDDEN")
	}
	early := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, brooktest.Vars{"c": cid})
	if m := early.Next(); !strings.Contains(string(m.Payload), `"FORBIDDEN"`) {
		t.Fatalf("an invitee subscribed to messageAdded: %s %s", m.Type, m.Payload)
	}

	// Accepting makes bob a member who has read what came before.
	accept := `mutation($c: ID!) { acceptInvite(channel: $c) { memberCount membership { status role } } }`
	var acc struct {
		AcceptInvite struct {
			MemberCount int
			Membership  struct{ Status, Role string }
		}
	}
	n.Must(t, env.Token(t, bob), accept, brooktest.Vars{"c": cid}, &acc)
	if a := acc.AcceptInvite; a.MemberCount != 2 || a.Membership.Status != "MEMBER" || a.Membership.Role != "member" {
		t.Fatalf("after accepting: %+v", a)
	}
	if ev := nextMemberEvent(t, events); ev.ChannelEvents.Type != "member.joined" || ev.ChannelEvents.User.ID != bob {
		t.Fatalf("the acceptance's event: %+v", ev)
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.added_to_channel" || note.MyEvents.TotalUnreadCount != 0 {
		t.Fatalf("bob's notification on accepting: %+v", note)
	}
	if c := n.Count(t, `SELECT count(*) FROM channel_invites WHERE channel_id = $1`, cid); c != 0 {
		t.Fatalf("the accepted invitation stayed: %d", c)
	}
	// Accepting again is a no-op; a message now counts.
	n.Must(t, env.Token(t, bob), accept, brooktest.Vars{"c": cid}, &acc)
	sendMsg(t, n, alice, cid, "welcome bob")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); got[cid] != 1 {
		t.Fatalf("bob's unread after accepting: %v", got)
	}
	if n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1 AND user_id = $2 AND last_read_seq = 1`, cid, bob) != 1 {
		t.Fatal("bob's read position in PostgreSQL is not after the message sent before he accepted")
	}
}

// An invitee may decline; an owner withdraws an invitation with
// removeMembers; only owners, moderators and admins invite, existing
// users only.
func TestChatInviteRejectWithdrawAndPermissions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave)
	cid := createChannel(t, n, alice, "messaging", "board-"+tag, bob)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`,
		brooktest.Vars{"c": cid})
	daves := n.MustDial(t, env.Token(t, dave)).Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)
	invite := `mutation($c: ID!, $u: [ID!]!) { inviteMembers(channel: $c, userIds: $u) { id } }`
	reject := `mutation($c: ID!) { rejectInvite(channel: $c) }`
	accept := `mutation($c: ID!) { acceptInvite(channel: $c) { id } }`

	// A plain member may not invite; a moderator may.
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), invite, brooktest.Vars{"c": cid, "u": []string{carol}}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), invite, brooktest.Vars{"c": cid, "u": []string{carol}}), "FORBIDDEN")
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	nextMemberEvent(t, events) // bob's role
	n.Must(t, env.Token(t, bob), invite, brooktest.Vars{"c": cid, "u": []string{carol, dave}}, nil)
	nextMemberEvent(t, events)
	nextMemberEvent(t, events)
	var note myEvent
	daves.NextData(&note)

	// Bad input writes nothing.
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), invite, brooktest.Vars{"c": cid, "u": []string{"nobody-" + tag}}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), invite, brooktest.Vars{"c": cid, "u": []string{}}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), invite, brooktest.Vars{"c": "messaging:none-" + tag, "u": []string{carol}}), "NOT_FOUND")
	if c := n.Count(t, `SELECT count(*) FROM channel_invites WHERE channel_id = $1`, cid); c != 2 {
		t.Fatalf("%d invitations, want carol's and dave's", c)
	}

	// Carol declines, once; then she can no longer accept.
	var rej struct{ RejectInvite bool }
	n.Must(t, env.Token(t, carol), reject, brooktest.Vars{"c": cid}, &rej)
	if !rej.RejectInvite {
		t.Fatal("rejectInvite said carol had no invitation")
	}
	if ev := nextMemberEvent(t, events); ev.ChannelEvents.Type != "member.invite_rejected" || ev.ChannelEvents.User.ID != carol {
		t.Fatalf("the rejection's event: %+v", ev)
	}
	n.Must(t, env.Token(t, carol), reject, brooktest.Vars{"c": cid}, &rej)
	if rej.RejectInvite {
		t.Fatal("rejecting twice said there was an invitation")
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), accept, brooktest.Vars{"c": cid}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `query($c: ID!) { channel(id: $c) { id } }`, brooktest.Vars{"c": cid}), "FORBIDDEN")

	// Alice withdraws dave's invitation; he hears of it.
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`,
		brooktest.Vars{"c": cid, "u": dave}, nil)
	daves.NextData(&note)
	if note.MyEvents.Type != "notification.removed_from_channel" || note.MyEvents.Channel != cid {
		t.Fatalf("dave's notification of the withdrawal: %+v", note)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, dave), accept, brooktest.Vars{"c": cid}), "FORBIDDEN")
	if c := n.Count(t, `SELECT count(*) FROM channel_invites WHERE channel_id = $1`, cid); c != 0 {
		t.Fatalf("%d invitations left", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1`, cid); c != 2 {
		t.Fatalf("%d members, want alice and bob", c)
	}
}
