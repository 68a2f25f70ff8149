package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
)

// Quoting a message of the same channel; a quote of another channel's
// message, or of none, is refused with nothing written.
func TestChatQuotedReplies(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "quotes-"+tag, bob)
	other := createChannel(t, n, alice, "messaging", "elsewhere-"+tag)
	first := sendMsg(t, n, alice, cid, "lunch at noon?")
	far := sendMsg(t, n, alice, other, "not here")

	var got struct {
		SendMessage struct {
			QuotedMessage struct {
				ID, Text string
				User     struct{ ID string }
			}
		}
	}
	send := `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { quotedMessage { id text user { id } } } }`
	n.Must(t, env.Token(t, bob), send, brooktest.Vars{"c": cid, "in": map[string]any{"text": "yes!", "quotedMessageId": first.ID}}, &got)
	if q := got.SendMessage.QuotedMessage; q.ID != first.ID || q.Text != "lunch at noon?" || q.User.ID != alice {
		t.Fatalf("the quoted message: %+v", q)
	}
	before := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid)
	for _, q := range []string{far.ID, "01890000-0000-7000-8000-000000000000", "not-a-uuid"} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, bob), send, brooktest.Vars{"c": cid, "in": map[string]any{"text": "hm", "quotedMessageId": q}}), "BAD_USER_INPUT")
	}
	if after := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1`, cid); after != before {
		t.Fatalf("refused quotes wrote %d messages", after-before)
	}
	// History shows the quote too.
	var hist struct {
		Channel struct {
			Messages struct {
				Edges []struct {
					Node struct{ QuotedMessage *struct{ ID string } }
				}
			}
		}
	}
	n.Must(t, env.Token(t, alice), `query($c: ID!) { channel(id: $c) { messages { edges { node { quotedMessage { id } } } } } }`, brooktest.Vars{"c": cid}, &hist)
	if e := hist.Channel.Messages.Edges; len(e) != 2 || e[0].Node.QuotedMessage != nil || e[1].Node.QuotedMessage == nil || e[1].Node.QuotedMessage.ID != first.ID {
		t.Fatalf("history's quotes: %+v", e)
	}
}

// A thread reply shown in the channel appears in its history, becomes its
// last message and counts as unread, in Redis and in PostgreSQL alike; a
// reply only in its thread does none of that.
func TestChatRepliesShownInChannel(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "shown-"+tag, bob)
	root := sendMsg(t, n, alice, cid, "thread start")
	sendMsg(t, n, alice, cid, "quiet reply", map[string]any{"parentId": root.ID})
	shown := sendMsg(t, n, alice, cid, "loud reply", map[string]any{"parentId": root.ID, "showInChannel": true})
	n.WaitForJobs(t)

	if got := unreadOf(t, n, bob); got[cid] != 2 {
		t.Fatalf("bob's unread (Redis): %v, want 2 (the thread start and the shown reply)", got)
	}
	if c := n.Count(t, `SELECT c.last_seq - m.last_read_seq FROM channels c JOIN channel_members m ON m.channel_id = c.id
		WHERE c.id = $1 AND m.user_id = $2`, cid, bob); c != 2 {
		t.Fatalf("bob's unread in PostgreSQL: %d, want 2", c)
	}
	var view struct {
		Channel struct {
			LastMessage struct{ ID string }
			Messages    struct {
				Edges []struct {
					Node struct {
						Text          string
						ShowInChannel bool
						Parent        *struct{ ID string }
					}
				}
			}
		}
	}
	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { lastMessage { id } messages { edges { node { text showInChannel parent { id } } } } } }`,
		brooktest.Vars{"c": cid}, &view)
	e := view.Channel.Messages.Edges
	if view.Channel.LastMessage.ID != shown.ID || len(e) != 2 || e[0].Node.Text != "thread start" || e[1].Node.Text != "loud reply" ||
		!e[1].Node.ShowInChannel || e[1].Node.Parent == nil || e[1].Node.Parent.ID != root.ID {
		t.Fatalf("bob's view: %+v", view.Channel)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "x", showInChannel: true }) { id } }`,
		brooktest.Vars{"c": cid}), "BAD_USER_INPUT")
}

// Opening history at a message, and paging from there both ways.
func TestChatHistoryAroundAndAfter(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	cid := createChannel(t, n, alice, "messaging", "around-"+tag)
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = sendMsg(t, n, alice, cid, fmt.Sprintf("m%d", i+1)).ID
	}
	reply := sendMsg(t, n, alice, cid, "in the thread of m3", map[string]any{"parentId": ids[2]})
	type window struct {
		Channel struct {
			Messages struct {
				Edges    []struct{ Node struct{ Text string } }
				PageInfo struct {
					HasNextPage, HasPreviousPage bool
					StartCursor, EndCursor       string
				}
			}
		}
	}
	q := `query($c: ID!, $last: Int, $before: String, $after: String, $around: ID) { channel(id: $c) {
		messages(last: $last, before: $before, after: $after, around: $around) { edges { node { text } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`
	read := func(v brooktest.Vars) (texts []string, w window) {
		v["c"] = cid
		n.Must(t, env.Token(t, alice), q, v, &w)
		for _, e := range w.Channel.Messages.Edges {
			texts = append(texts, e.Node.Text)
		}
		return texts, w
	}
	texts, w := read(brooktest.Vars{"around": ids[4], "last": 4})
	if fmt.Sprint(texts) != "[m3 m4 m5 m6]" || !w.Channel.Messages.PageInfo.HasNextPage || !w.Channel.Messages.PageInfo.HasPreviousPage {
		t.Fatalf("around m5: %v %+v", texts, w.Channel.Messages.PageInfo)
	}
	texts, w = read(brooktest.Vars{"after": w.Channel.Messages.PageInfo.StartCursor, "last": 3})
	if fmt.Sprint(texts) != "[m7 m8 m9]" || !w.Channel.Messages.PageInfo.HasNextPage || !w.Channel.Messages.PageInfo.HasPreviousPage {
		t.Fatalf("after m6: %v %+v", texts, w.Channel.Messages.PageInfo)
	}
	texts, w = read(brooktest.Vars{"after": w.Channel.Messages.PageInfo.StartCursor, "last": 3})
	if fmt.Sprint(texts) != "[m10]" || w.Channel.Messages.PageInfo.HasPreviousPage {
		t.Fatalf("after m9: %v %+v", texts, w.Channel.Messages.PageInfo)
	}
	texts, _ = read(brooktest.Vars{"before": w.Channel.Messages.PageInfo.EndCursor, "last": 2})
	if fmt.Sprint(texts) != "[m8 m9]" {
		t.Fatalf("before m10: %v", texts)
	}
	// A reply only in its thread opens the channel at its thread.
	texts, _ = read(brooktest.Vars{"around": reply.ID, "last": 3})
	if fmt.Sprint(texts) != "[m2 m3 m4]" {
		t.Fatalf("around a reply of m3: %v", texts)
	}
	texts, w = read(brooktest.Vars{"around": ids[0], "last": 4})
	if fmt.Sprint(texts) != "[m1 m2 m3 m4]" || w.Channel.Messages.PageInfo.HasNextPage {
		t.Fatalf("around the first message: %v %+v", texts, w.Channel.Messages.PageInfo)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), q, brooktest.Vars{"c": cid, "around": ids[1], "before": w.Channel.Messages.PageInfo.EndCursor}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), q, brooktest.Vars{"c": cid, "around": "01890000-0000-7000-8000-000000000000"}), "NOT_FOUND")
}

// Pins: members pin and unpin, with events; a pin that expires is gone
// from the list and the message at once, with nothing to run.
func TestChatPins(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	cid := createChannel(t, n, alice, "messaging", "pins-"+tag, bob)
	rules := sendMsg(t, n, alice, cid, "house rules")
	menu := sendMsg(t, n, alice, cid, "today's menu")
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } message { id pinnedAt } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	pin := `mutation($m: ID!, $until: Time) { pinMessage(id: $m, expiresAt: $until) { pinnedAt pinnedBy { id } pinExpiresAt } }`
	unpin := `mutation($m: ID!) { unpinMessage(id: $m) { pinnedAt } }`

	var pinned struct {
		PinMessage struct {
			PinnedAt     *string
			PinnedBy     struct{ ID string }
			PinExpiresAt *string
		}
	}
	n.Must(t, env.Token(t, bob), pin, brooktest.Vars{"m": rules.ID}, &pinned)
	if p := pinned.PinMessage; p.PinnedAt == nil || p.PinnedBy.ID != bob || p.PinExpiresAt != nil {
		t.Fatalf("pinMessage: %+v", p)
	}
	type pinEvent struct {
		ChannelEvents struct {
			Type    string
			User    struct{ ID string }
			Message struct {
				ID       string
				PinnedAt *string
			}
		}
	}
	var ev pinEvent
	events.NextData(&ev)
	if e := ev.ChannelEvents; e.Type != "message.pinned" || e.User.ID != bob || e.Message.ID != rules.ID || e.Message.PinnedAt == nil {
		t.Fatalf("the pin's event: %+v", e)
	}
	until := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	n.Must(t, env.Token(t, alice), pin, brooktest.Vars{"m": menu.ID, "until": until}, &pinned)
	events.NextData(&ev)

	list := func() []string {
		var got struct {
			Channel struct {
				PinnedMessages struct {
					Edges []struct{ Node struct{ Text string } }
				}
			}
		}
		n.Must(t, env.Token(t, bob), `query($c: ID!) { channel(id: $c) { pinnedMessages(first: 10) { edges { node { text } } } } }`, brooktest.Vars{"c": cid}, &got)
		var out []string
		for _, e := range got.Channel.PinnedMessages.Edges {
			out = append(out, e.Node.Text)
		}
		return out
	}
	if got := fmt.Sprint(list()); got != "[today's menu house rules]" {
		t.Fatalf("pinned messages: %s", got)
	}
	// Paging one at a time.
	var page struct {
		Channel struct {
			PinnedMessages struct {
				Edges    []struct{ Node struct{ Text string } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
	}
	pq := `query($c: ID!, $after: String) { channel(id: $c) { pinnedMessages(first: 1, after: $after) { edges { node { text } } pageInfo { hasNextPage endCursor } } } }`
	n.Must(t, env.Token(t, bob), pq, brooktest.Vars{"c": cid}, &page)
	n.Must(t, env.Token(t, bob), pq, brooktest.Vars{"c": cid, "after": page.Channel.PinnedMessages.PageInfo.EndCursor}, &page)
	if e := page.Channel.PinnedMessages.Edges; len(e) != 1 || e[0].Node.Text != "house rules" || page.Channel.PinnedMessages.PageInfo.HasNextPage {
		t.Fatalf("the second page of pins: %+v", page.Channel.PinnedMessages)
	}

	// The menu's pin expires on its own.
	time.Sleep(time.Until(time.Now().Add(1600 * time.Millisecond)))
	if got := fmt.Sprint(list()); got != "[house rules]" {
		t.Fatalf("pinned messages after the menu's pin expired: %s", got)
	}
	var msg struct{ Message struct{ PinnedAt *string } }
	n.Must(t, env.Token(t, bob), `query($m: ID!) { message(id: $m) { pinnedAt } }`, brooktest.Vars{"m": menu.ID}, &msg)
	if msg.Message.PinnedAt != nil {
		t.Fatalf("an expired pin still shows: %+v", msg)
	}

	// Unpinning is announced once; refused input writes nothing.
	n.Must(t, env.Token(t, alice), unpin, brooktest.Vars{"m": rules.ID}, nil)
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "message.unpinned" || ev.ChannelEvents.Message.ID != rules.ID {
		t.Fatalf("the unpin's event: %+v", ev.ChannelEvents)
	}
	n.Must(t, env.Token(t, alice), unpin, brooktest.Vars{"m": rules.ID}, nil)
	events.None(200 * time.Millisecond)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), pin, brooktest.Vars{"m": rules.ID, "until": past}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, carol), pin, brooktest.Vars{"m": rules.ID}), "FORBIDDEN")
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND pinned_at IS NOT NULL`, cid); c != 1 {
		t.Fatalf("%d pinned rows, want the expired menu's alone", c)
	}
	// Deleting a pinned message unpins it.
	n.Must(t, env.Token(t, alice), pin, brooktest.Vars{"m": rules.ID}, nil)
	n.Must(t, env.Token(t, alice), `mutation($m: ID!) { deleteMessage(id: $m) { id } }`, brooktest.Vars{"m": rules.ID}, nil)
	if got := list(); len(got) != 0 {
		t.Fatalf("pins after deleting the pinned message: %v", got)
	}
}
