package uploads_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

const createQ = `mutation($f: String!, $c: String!, $s: Int!) { createUpload(filename: $f, contentType: $c, size: $s) { upload { id } } }`
const completeQ = `mutation($id: ID!) { completeUpload(id: $id) { id status } }`

// wantError checks a response's code and that its message says why.
func wantError(t *testing.T, res *brooktest.Response, code, says string) {
	t.Helper()
	brooktest.WantCode(t, res, code)
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), says) {
		t.Fatalf("want an error saying %q, got %v", says, err)
	}
}

// Each bad input gets a clear error with its code, and writes nothing.
func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "upr-alice-"+tag, "upr-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	ta, tb := env.Token(t, alice), env.Token(t, bob)
	rows := func() int { return n.Count(t, `SELECT count(*) FROM uploads WHERE owner_id = $1`, alice) }

	for _, c := range []struct {
		name, filename, typ string
		size                int
		says                string
	}{
		{"too large", "big.png", "image/png", 10<<20 + 1, "1 to 10485760 bytes (10 MB)"},
		{"empty", "a.png", "image/png", 0, "1 to"},
		{"type not allowed", "a.html", "text/html", 10, "not a type Brook accepts"},
		{"a path", "../a.png", "image/png", 10, "not a path"},
		{"a control character", "a\x07.png", "image/png", 10, "control characters"},
		{"no name", " ", "image/png", 10, "must not be empty"},
	} {
		wantError(t, n.Query(t, ta, createQ, brooktest.Vars{"f": c.filename, "c": c.typ, "s": c.size}), "BAD_USER_INPUT", c.says)
	}
	if got := rows(); got != 0 {
		t.Fatalf("refused uploads wrote %d rows", got)
	}

	// A type that lies: an "image" that is a zip is refused and deleted.
	z := zipOf(t)
	tk := createUpload(t, n, ta, "cat.png", "image/png", len(z))
	if code := put(t, tk, z); code != 200 {
		t.Fatalf("PUT: %d", code)
	}
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "BAD_USER_INPUT", "application/zip")
	if got := rows(); got != 0 {
		t.Fatalf("the lying upload's row is left: %d", got)
	}
	if _, err := n.Uploads.Blob().Stat(context.Background(), "u/"+tk.Upload.ID); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("the lying upload's file is left: %v", err)
	}
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "NOT_FOUND", "not found")

	// Completed before its bytes arrived; then after its URL expired.
	tk = createUpload(t, n, ta, "a.png", "image/png", 10)
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "BAD_USER_INPUT", "nothing was uploaded yet")
	if _, err := n.Store.DB().Exec(context.Background(), `UPDATE uploads SET created_at = now() - interval '1 hour' WHERE id = $1`, tk.Upload.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "BAD_USER_INPUT", "expired")
	if got := n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1 AND status = 'PENDING'`, tk.Upload.ID); got != 1 {
		t.Fatal("an upload completed without its bytes")
	}

	// Unknown, malformed and other users' ids.
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": "01900000-0000-7000-8000-000000000000"}), "NOT_FOUND", "not found")
	wantError(t, n.Query(t, ta, completeQ, brooktest.Vars{"id": "nope"}), "BAD_USER_INPUT", "not a valid id")
	wantError(t, n.Query(t, tb, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "FORBIDDEN", "another user's")

	// Local URLs: expired and tampered ones are refused with a clear body.
	ctx := context.Background()
	expired, err := n.Uploads.Blob().SignPut(ctx, "u/"+tk.Upload.ID, 10, "image/png", time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := putRaw(t, expired.URL, "image/png", make([]byte, 10)); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("expired PUT: %d %s", code, body)
	}
	tampered := strings.Replace(tk.UploadURL, "n=10", "n=11", 1)
	if code, body := putRaw(t, tampered, "image/png", make([]byte, 11)); code != 403 || !strings.Contains(body, "signature") {
		t.Fatalf("tampered PUT: %d %s", code, body)
	}
}

func putRaw(t *testing.T, url, typ string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", typ)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// Attaching refuses other users' uploads, unfinished ones, unknown ones
// and ones attached already; a refused send attaches nothing, not even
// the good uploads it named.
func TestAttachRefusals(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "upa-alice-"+tag, "upa-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	ta, tb := env.Token(t, alice), env.Token(t, bob)
	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, ta, `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "upa-" + tag, "members": []string{bob}}}, &ch)
	send := func(token string, ids ...string) *brooktest.Response {
		var att []map[string]any
		for _, id := range ids {
			att = append(att, map[string]any{"uploadId": id})
		}
		return n.Query(t, token, `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
			brooktest.Vars{"c": ch.CreateChannel.ID, "in": map[string]any{"text": "files", "attachments": att}})
	}
	mine := uploadFile(t, n, ta, "a.png", "image/png", pngOf(t, 2, 2))
	bobs := uploadFile(t, n, tb, "b.png", "image/png", pngOf(t, 2, 2))
	pending := createUpload(t, n, ta, "c.png", "image/png", 10)

	wantError(t, send(ta, mine.ID, bobs.ID), "FORBIDDEN", "another user's")
	wantError(t, send(ta, mine.ID, pending.Upload.ID), "BAD_USER_INPUT", "not complete")
	wantError(t, send(ta, mine.ID, "01900000-0000-7000-8000-000000000000"), "NOT_FOUND", "not found")
	wantError(t, send(ta, mine.ID, mine.ID), "BAD_USER_INPUT", "attached twice")
	if got := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND text = 'files'`, ch.CreateChannel.ID); got != 0 {
		t.Fatalf("refused sends wrote %d messages", got)
	}
	if got := n.Count(t, `SELECT count(*) FROM uploads WHERE id = ANY($1::uuid[]) AND attached_at IS NOT NULL`, []string{mine.ID, bobs.ID}); got != 0 {
		t.Fatalf("refused sends attached %d uploads", got)
	}
	if res := send(ta, mine.ID); res.Code() != "" {
		t.Fatalf("send: %v", res.Err())
	}
	wantError(t, send(ta, mine.ID), "BAD_USER_INPUT", "attached already")
	// The same rule for activities.
	wantError(t, n.Query(t, ta, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + alice, "in": map[string]any{"verb": "post", "object": "x", "attachments": []map[string]any{{"uploadId": mine.ID}}}}),
		"BAD_USER_INPUT", "attached already")
}

// A user may have only so many pending uploads at once.
func TestPendingUploadCap(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.Uploads.Limits.MaxPending = 2 }})
	user := "upc-" + brooktest.Tag()
	env.AddUsers(t, n, user)
	tok := env.Token(t, user)
	for range 2 {
		createUpload(t, n, tok, "a.txt", "text/plain", 5)
	}
	wantError(t, n.Query(t, tok, createQ, brooktest.Vars{"f": "a.txt", "c": "text/plain", "s": 5}), "RATE_LIMITED", "pending uploads")
}

// Each kind has its own largest size (the defaults: images 10 MB, video
// 100 MB, audio 20 MB, other files 25 MB), and a message or an activity
// carries at most 10 attachments.
func TestUploadLimitsPerKind(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	user := "upk-" + brooktest.Tag()
	env.AddUsers(t, n, user)
	tok := env.Token(t, user)
	const mb = 1 << 20
	for _, c := range []struct {
		typ   string
		limit int
	}{{"image/png", 10 * mb}, {"video/mp4", 100 * mb}, {"audio/mpeg", 20 * mb}, {"application/pdf", 25 * mb}} {
		if res := n.Query(t, tok, createQ, brooktest.Vars{"f": "f", "c": c.typ, "s": c.limit}); res.Code() != "" {
			t.Errorf("%s of %d bytes, its limit: %v", c.typ, c.limit, res.Err())
		}
		wantError(t, n.Query(t, tok, createQ, brooktest.Vars{"f": "f", "c": c.typ, "s": c.limit + 1}), "BAD_USER_INPUT",
			fmt.Sprintf("1 to %d bytes", c.limit))
	}
	// 11 MB is too much for an image, not for a video.
	wantError(t, n.Query(t, tok, createQ, brooktest.Vars{"f": "f", "c": "image/jpeg", "s": 11 * mb}), "BAD_USER_INPUT", "10 MB")
	if res := n.Query(t, tok, createQ, brooktest.Vars{"f": "f", "c": "video/webm", "s": 11 * mb}); res.Code() != "" {
		t.Errorf("an 11 MB video: %v", res.Err())
	}

	many := make([]map[string]any, 11)
	for i := range many {
		many[i] = map[string]any{"url": "https://example.com/" + strconv.Itoa(i)}
	}
	wantError(t, n.Query(t, tok, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": "post", "object": "x", "attachments": many}}), "BAD_USER_INPUT", "at most 10")
	if res := n.Query(t, tok, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + user, "in": map[string]any{"verb": "post", "object": "x", "attachments": many[:10]}}); res.Code() != "" {
		t.Errorf("an activity with 10 attachments: %v", res.Err())
	}
}

// A stored file of another size than declared (a storage that did not
// hold the PUT to its signed length) is refused at completeUpload and
// deleted with its upload.
func TestCompleteRefusesAnotherSize(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	user := "ups-" + brooktest.Tag()
	env.AddUsers(t, n, user)
	tok := env.Token(t, user)
	tk := createUpload(t, n, tok, "a.txt", "text/plain", 10)
	body := []byte("eleven byte")
	if err := n.Uploads.Blob().Put(context.Background(), "u/"+tk.Upload.ID, bytes.NewReader(body), int64(len(body)), "text/plain"); err != nil {
		t.Fatal(err)
	}
	wantError(t, n.Query(t, tok, completeQ, brooktest.Vars{"id": tk.Upload.ID}), "BAD_USER_INPUT", "not the 10 declared")
	if c := n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1`, tk.Upload.ID); c != 0 {
		t.Fatal("the refused upload's row is left")
	}
	if _, err := n.Uploads.Blob().Stat(context.Background(), "u/"+tk.Upload.ID); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("the refused upload's file is left: %v", err)
	}
}
