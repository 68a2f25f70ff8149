package chat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// memberEvent is a channelEvents message as these tests select it.
type memberEvent struct {
	ChannelEvents struct {
		Type string
		User struct{ ID string }
	}
}

// Joining follows the channel's join policy (livestream open, messaging by
// invitation unless opened), is announced to the channel and to the
// joiner's devices, and counts unread from the join on; leaving is
// announced too and takes the channel out of the leaver's counts.
func TestChatJoinAndLeave(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	private := createChannel(t, n, alice, "messaging", "club-"+tag)
	stage := createChannel(t, n, alice, "livestream", "stage-"+tag)
	policy := func(cid string) string {
		var got struct{ Channel struct{ JoinPolicy string } }
		n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { joinPolicy } }`, brooktest.Vars{"c": cid}, &got)
		return got.Channel.JoinPolicy
	}
	if p, q := policy(private), policy(stage); p != "INVITE" || q != "OPEN" {
		t.Fatalf("default join policies: messaging %s, livestream %s", p, q)
	}
	join := `mutation($c: ID!) { joinChannel(channel: $c) { id memberCount } }`
	leave := `mutation($c: ID!) { leaveChannel(channel: $c) }`
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), join, brooktest.Vars{"c": private}), "FORBIDDEN")
	if c := n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1`, private); c != 1 {
		t.Fatalf("a refused join wrote a member: %d members", c)
	}

	watcher := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`,
		brooktest.Vars{"c": stage})
	mine := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription { myEvents { type channel } }`, nil)
	waitSubscribed(t, n)
	var joined struct{ JoinChannel struct{ MemberCount int } }
	n.Must(t, env.Token(t, bob), join, brooktest.Vars{"c": stage}, &joined)
	if joined.JoinChannel.MemberCount != 2 {
		t.Fatalf("after bob joined: %+v", joined)
	}
	var ev memberEvent
	watcher.NextData(&ev)
	if ev.ChannelEvents.Type != "member.joined" || ev.ChannelEvents.User.ID != bob {
		t.Fatalf("the join event: %+v", ev)
	}
	var note struct {
		MyEvents struct{ Type, Channel string }
	}
	mine.NextData(&note)
	if note.MyEvents.Type != "notification.added_to_channel" || note.MyEvents.Channel != stage {
		t.Fatalf("bob's own notification: %+v", note)
	}
	// Joining again changes nothing and says nothing.
	n.Must(t, env.Token(t, bob), join, brooktest.Vars{"c": stage}, &joined)
	if joined.JoinChannel.MemberCount != 2 {
		t.Fatalf("after joining twice: %+v", joined)
	}
	watcher.None(200 * time.Millisecond)

	// A member from the join on: what is sent after counts as unread.
	sendMsg(t, n, alice, stage, "welcome")
	n.WaitForJobs(t)
	if got := unreadOf(t, n, bob); got[stage] != 1 {
		t.Fatalf("bob's unread after joining: %v", got)
	}
	var left struct{ LeaveChannel bool }
	n.Must(t, env.Token(t, bob), leave, brooktest.Vars{"c": stage}, &left)
	if !left.LeaveChannel {
		t.Fatal("leaveChannel said bob was no member")
	}
	watcher.NextData(&ev)
	for ev.ChannelEvents.Type == "message.new" {
		watcher.NextData(&ev)
	}
	if ev.ChannelEvents.Type != "member.left" || ev.ChannelEvents.User.ID != bob {
		t.Fatalf("the leave event: %+v", ev)
	}
	if got := unreadOf(t, n, bob); got[stage] != 0 {
		t.Fatalf("bob's unread after leaving: %v", got)
	}
	n.Must(t, env.Token(t, bob), leave, brooktest.Vars{"c": stage}, &left)
	if left.LeaveChannel {
		t.Fatal("leaving again said bob was a member")
	}

	// An owner opens the messaging channel; a member may not.
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { updateChannel(id: $c, joinPolicy: OPEN) { joinPolicy } }`, brooktest.Vars{"c": private}, nil)
	n.Must(t, env.Token(t, bob), join, brooktest.Vars{"c": private}, &joined)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!) { updateChannel(id: $c, joinPolicy: INVITE) { id } }`,
		brooktest.Vars{"c": private}), "FORBIDDEN")
	if p := policy(private); p != "OPEN" {
		t.Fatalf("a member changed the join policy: %s", p)
	}
}

// A member who leaves a messaging channel loses its subscriptions to it,
// as a removed one does.
func TestChatLeavingEndsSubscriptions(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
	cid := createChannel(t, n, alice, "messaging", "quiet-"+tag, carol)
	msgs := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { text } }`, brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	n.Must(t, env.Token(t, carol), `mutation($c: ID!) { leaveChannel(channel: $c) }`, brooktest.Vars{"c": cid}, nil)
	if got := msgs.Next(); got.Type != "error" || !strings.Contains(string(got.Payload), "FORBIDDEN") {
		t.Fatalf("messageAdded after leaving: %s %s", got.Type, got.Payload)
	}
}

// Owners give roles; a moderator may delete others' messages; the last
// owner can neither leave nor step down while others are in the channel.
func TestChatRolesAndTheLastOwner(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "roles-"+tag, bob, carol)
	events := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	setRole := `mutation($c: ID!, $u: ID!, $r: String!) { setMemberRole(channel: $c, user: $u, role: $r) { role user { id } } }`
	leave := `mutation($c: ID!) { leaveChannel(channel: $c) }`
	del := `mutation($m: ID!) { deleteMessage(id: $m) { type } }`

	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), leave, brooktest.Vars{"c": cid}), "CONFLICT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), setRole, brooktest.Vars{"c": cid, "u": alice, "r": "member"}), "CONFLICT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), setRole, brooktest.Vars{"c": cid, "u": bob, "r": "owner"}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), setRole, brooktest.Vars{"c": cid, "u": bob, "r": "king"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), setRole, brooktest.Vars{"c": cid, "u": "nobody-" + tag, "r": "member"}), "NOT_FOUND")
	if c := n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1 AND role = 'owner'`, cid); c != 1 {
		t.Fatalf("refused changes wrote roles: %d owners", c)
	}

	msg := sendMsg(t, n, carol, cid, "mine")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), del, brooktest.Vars{"m": msg.ID}), "FORBIDDEN")
	var got struct{ SetMemberRole struct{ Role string } }
	n.Must(t, env.Token(t, alice), setRole, brooktest.Vars{"c": cid, "u": bob, "r": "moderator"}, &got)
	if got.SetMemberRole.Role != "moderator" {
		t.Fatalf("setMemberRole: %+v", got)
	}
	var ev memberEvent
	events.NextData(&ev)
	for ev.ChannelEvents.Type == "message.new" {
		events.NextData(&ev)
	}
	if ev.ChannelEvents.Type != "member.role_changed" || ev.ChannelEvents.User.ID != bob {
		t.Fatalf("the role event: %+v", ev)
	}
	n.Must(t, env.Token(t, bob), del, brooktest.Vars{"m": msg.ID}, nil)

	// With a second owner, the first may leave.
	n.Must(t, env.Token(t, alice), setRole, brooktest.Vars{"c": cid, "u": bob, "r": "owner"}, nil)
	var left struct{ LeaveChannel bool }
	n.Must(t, env.Token(t, alice), leave, brooktest.Vars{"c": cid}, &left)
	if !left.LeaveChannel || n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1`, cid) != 2 {
		t.Fatalf("the first owner's leave: %v", left)
	}
}
