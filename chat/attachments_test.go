package chat_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// An external attachment is stored with its message and read back with it;
// bad ones are refused and write nothing.
func TestChatExternalAttachments(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "att-alice-"+tag, "att-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "att-"+tag, bob)
	m := sendMsg(t, n, alice, cid, "look", map[string]any{"attachments": []map[string]any{
		{"url": "https://example.com/cat.png", "type": "IMAGE", "title": "a cat"},
		{"url": "http://example.com/report.pdf"},
	}})
	var out struct {
		Message struct {
			Attachments []struct {
				Type, URL string
				Title     *string
				ThumbURL  *string
				Width     *int
			}
		}
	}
	n.Must(t, env.Token(t, bob), `query($id: ID!) { message(id: $id) { attachments { type url title thumbUrl width } } }`,
		brooktest.Vars{"id": m.ID}, &out)
	got := out.Message.Attachments
	if len(got) != 2 || got[0].Type != "IMAGE" || got[0].URL != "https://example.com/cat.png" || got[0].Title == nil || *got[0].Title != "a cat" ||
		got[0].ThumbURL != nil || got[0].Width != nil || got[1].Type != "FILE" || got[1].Title != nil {
		t.Fatalf("attachments %+v", got)
	}

	bad := []map[string]any{
		{"url": "javascript:alert(1)"},
		{"url": "/relative"},
		{"type": "IMAGE"},
		{"url": "https://example.com/x", "type": "LINK"},
	}
	for _, a := range bad {
		res := n.Query(t, env.Token(t, alice), `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
			brooktest.Vars{"c": cid, "in": map[string]any{"text": "bad", "attachments": []any{a}}})
		brooktest.WantCode(t, res, "BAD_USER_INPUT")
	}
	many := make([]any, 11)
	for i := range many {
		many[i] = map[string]any{"url": "https://example.com/x"}
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, alice), `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
		brooktest.Vars{"c": cid, "in": map[string]any{"text": "bad", "attachments": many}}), "BAD_USER_INPUT")
	var count int
	if err := n.Store.DB().QueryRow(t.Context(), `SELECT count(*) FROM messages WHERE channel_id = $1 AND text = 'bad'`, cid).Scan(&count); err != nil || count != 0 {
		t.Fatalf("bad messages written: %d, %v", count, err)
	}
}
