package chat_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// A distinct channel is the one channel of its member set, whoever creates
// it and in whatever order the members are named; concurrent creates make
// one channel with one set of members.
func TestChatDistinctChannels(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	create := `mutation($in: ChannelInput!) { createChannel(input: $in) { id memberCount } }`
	distinct := func(user string, members ...string) (string, int) {
		var out struct {
			CreateChannel struct {
				ID          string
				MemberCount int
			}
		}
		n.Must(t, env.Token(t, user), create, brooktest.Vars{"in": map[string]any{"type": "messaging", "distinct": true, "members": members}}, &out)
		return out.CreateChannel.ID, out.CreateChannel.MemberCount
	}

	// Ten concurrent creates of alice, bob and carol's channel, by each
	// of them, naming the others in either order.
	ids := make([]string, 12)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				ids[i], _ = distinct(alice, bob, carol)
			case 1:
				ids[i], _ = distinct(bob, carol, alice)
			default:
				ids[i], _ = distinct(carol, alice, bob, carol)
			}
		}()
	}
	wg.Wait()
	trio := ids[0]
	for _, id := range ids {
		if id != trio {
			t.Fatalf("concurrent distinct creates returned %v", ids)
		}
	}
	if !strings.HasPrefix(trio, "messaging:!members-") {
		t.Fatalf("a distinct channel's id: %s", trio)
	}
	if c := n.Count(t, `SELECT count(*) FROM channels WHERE id = $1`, trio); c != 1 {
		t.Fatalf("%d channels for one member set", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1`, trio); c != 3 {
		t.Fatalf("%d members in the trio's channel", c)
	}
	// Another set is another channel.
	pair, members := distinct(alice, bob)
	if pair == trio || members != 2 {
		t.Fatalf("alice and bob's channel: %s with %d members", pair, members)
	}
	if again, _ := distinct(bob, alice); again != pair {
		t.Fatalf("bob opening his channel with alice: %s, want %s", again, pair)
	}
	// The channel can be read by its id, like any other.
	var got struct{ Channel struct{ ID string } }
	n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { id } }`, brooktest.Vars{"c": pair}, &got)
	if got.Channel.ID != pair {
		t.Fatalf("reading the channel by id: %+v", got)
	}

	// A member who left is back in it when it opens the conversation again.
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { leaveChannel(channel: $c) }`, brooktest.Vars{"c": pair}, nil)
	if back, members := distinct(bob, alice); back != pair || members != 2 {
		t.Fatalf("bob reopening after leaving: %s with %d members", back, members)
	}
	// Carol is not in alice and bob's channel, and cannot name it.
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), `query($c: ID!) { channel(id: $c) { messages { edges { cursor } } } }`,
		brooktest.Vars{"c": pair}), "FORBIDDEN")

	// Bad input: an id, or nobody besides the creator; nothing written.
	mine := `SELECT count(*) FROM channels WHERE created_by = $1`
	before := n.Count(t, mine, alice)
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), create,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "distinct": true, "id": "x" + tag, "members": []string{bob}}}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), create,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "distinct": true, "members": []string{alice}}}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), create,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "distinct": true, "members": []string{"nobody-" + tag}}}), "BAD_USER_INPUT")
	if after := n.Count(t, mine, alice); after != before {
		t.Fatalf("refused creates wrote %d channels", after-before)
	}
}
