package chat_test

import (
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// A frozen channel takes messages from its owners and moderators only;
// moderators freeze and unfreeze (announced, and recorded in the history)
// but do not change the profile; a refused message writes nothing.
func TestChatFreeze(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "freeze-"+tag, bob, carol)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	events := n.MustDial(t, env.Token(t, carol)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } message { text type } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	freeze := `mutation($c: ID!, $f: Boolean) { updateChannel(id: $c, frozen: $f) { frozen } }`
	send := `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "hello" }) { id } }`
	mine := `SELECT count(*) FROM messages WHERE channel_id = $1 AND user_id = $2`

	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), freeze, brooktest.Vars{"c": cid, "f": true}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), `mutation($c: ID!) { updateChannel(id: $c, name: "mine now", frozen: true) { id } }`,
		brooktest.Vars{"c": cid}), "FORBIDDEN")
	var got struct{ UpdateChannel struct{ Frozen bool } }
	n.Must(t, env.Token(t, bob), freeze, brooktest.Vars{"c": cid, "f": true}, &got)
	if !got.UpdateChannel.Frozen {
		t.Fatal("the moderator's freeze did not take")
	}
	type ev struct {
		ChannelEvents struct {
			Type    string
			User    struct{ ID string }
			Message *struct{ Text, Type string }
		}
	}
	var seen []string
	for len(seen) < 3 {
		var e ev
		events.NextData(&e)
		seen = append(seen, e.ChannelEvents.Type)
		if e.ChannelEvents.Type == "message.new" && (e.ChannelEvents.Message.Type != "system" || e.ChannelEvents.Message.Text != "Bob-"+tag+" froze the channel") {
			t.Fatalf("the freeze's system message: %+v", e.ChannelEvents.Message)
		}
	}
	if seen[0] != "channel.updated" || seen[1] != "channel.frozen" || seen[2] != "message.new" {
		t.Fatalf("events of the freeze: %v", seen)
	}

	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), send, brooktest.Vars{"c": cid}), "FORBIDDEN")
	if c := n.Count(t, mine, cid, carol); c != 0 {
		t.Fatalf("a message refused by the freeze was written: %d", c)
	}
	n.Must(t, env.Token(t, bob), send, brooktest.Vars{"c": cid}, nil)
	n.Must(t, env.Token(t, alice), send, brooktest.Vars{"c": cid}, nil)
	n.Must(t, env.Token(t, alice), freeze, brooktest.Vars{"c": cid, "f": false}, nil)
	n.Must(t, env.Token(t, carol), send, brooktest.Vars{"c": cid}, nil)
}

// Slow mode refuses a member's second message within the cooldown with
// RATE_LIMITED and retryAfter, writes nothing, lets a retry of the first
// through, and exempts moderators; the cooldown's range is checked.
func TestChatSlowMode(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
	cid := createChannel(t, n, alice, "messaging", "slow-"+tag, carol)
	slow := `mutation($c: ID!, $s: Int) { updateChannel(id: $c, cooldownSeconds: $s) { cooldownSeconds } }`
	for _, bad := range []int{-1, 3601} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, alice), slow, brooktest.Vars{"c": cid, "s": bad}), "BAD_USER_INPUT")
	}
	var got struct{ UpdateChannel struct{ CooldownSeconds int } }
	n.Must(t, env.Token(t, alice), slow, brooktest.Vars{"c": cid, "s": 2}, &got)
	if got.UpdateChannel.CooldownSeconds != 2 {
		t.Fatalf("cooldown: %+v", got)
	}
	send := `mutation($c: ID!, $id: ID) { sendMessage(channel: $c, input: { id: $id, text: "hi" }) { id } }`
	first := "01890000-0000-7000-8000-" + tag + "0001"
	start := time.Now()
	n.Must(t, env.Token(t, carol), send, brooktest.Vars{"c": cid, "id": first}, nil)
	r := n.Query(t, env.Token(t, carol), send, brooktest.Vars{"c": cid})
	brooktest.WantCode(t, r, "RATE_LIMITED")
	if ra, _ := r.Errors[0].Extensions["retryAfter"].(float64); ra < 1 || ra > 2 {
		t.Fatalf("retryAfter %v, want 1 or 2 seconds", r.Errors[0].Extensions["retryAfter"])
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND user_id = $2`, cid, carol); c != 1 {
		t.Fatalf("%d of carol's messages, want the first alone", c)
	}
	n.Must(t, env.Token(t, carol), send, brooktest.Vars{"c": cid, "id": first}, nil) // a retry of the first
	for i := 0; i < 3; i++ {
		n.Must(t, env.Token(t, alice), send, brooktest.Vars{"c": cid}, nil) // the owner is exempt
	}
	time.Sleep(time.Until(start.Add(2100 * time.Millisecond)))
	n.Must(t, env.Token(t, carol), send, brooktest.Vars{"c": cid}, nil)
}
