package uploads_test

import (
	"context"
	"errors"
	"testing"

	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/brooktest"
)

// Deleting a message or an activity takes its attachments off it at once
// and removes the uploaded files and their rows in a job.
func TestDeletingRemovesFiles(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice := "upd-alice-" + tag
	env.AddUsers(t, n, alice)
	ta := env.Token(t, alice)
	m := uploadFile(t, n, ta, "m.png", "image/png", pngOf(t, 2, 2))
	a := uploadFile(t, n, ta, "a.png", "image/png", pngOf(t, 2, 2))
	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, ta, `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "upd-" + tag}}, &ch)
	var sent struct{ SendMessage struct{ ID string } }
	n.Must(t, ta, `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
		brooktest.Vars{"c": ch.CreateChannel.ID, "in": map[string]any{"text": "x", "attachments": []map[string]any{{"uploadId": m.ID}}}}, &sent)
	var act struct{ AddActivity struct{ ID string } }
	n.Must(t, ta, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + alice, "in": map[string]any{"verb": "post", "object": "x", "attachments": []map[string]any{{"uploadId": a.ID}}}}, &act)
	n.WaitForJobs(t)

	var del struct {
		DeleteMessage struct{ Attachments []attachment }
	}
	n.Must(t, ta, `mutation($id: ID!) { deleteMessage(id: $id) { `+attachmentFields+` } }`, brooktest.Vars{"id": sent.SendMessage.ID}, &del)
	if len(del.DeleteMessage.Attachments) != 0 {
		t.Fatalf("a deleted message still has attachments: %+v", del.DeleteMessage.Attachments)
	}
	n.Must(t, ta, `mutation($id: ID!) { removeActivity(id: $id) }`, brooktest.Vars{"id": act.AddActivity.ID}, nil)
	n.WaitForJobs(t)
	if got := n.Count(t, `SELECT count(*) FROM uploads WHERE id = ANY($1::uuid[])`, []string{m.ID, a.ID}); got != 0 {
		t.Fatalf("%d upload rows left", got)
	}
	for _, id := range []string{m.ID, a.ID} {
		if _, err := n.Uploads.Blob().Stat(context.Background(), "u/"+id); !errors.Is(err, blob.ErrNotExist) {
			t.Fatalf("file of %s left: %v", id, err)
		}
	}
}
