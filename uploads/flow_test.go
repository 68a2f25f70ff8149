package uploads_test

import (
	"archive/zip"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// pngOf returns a w x h PNG.
func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipOf returns a small zip archive.
func zipOf(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	f, _ := z.Create("a.txt")
	_, _ = f.Write([]byte(strings.Repeat("zip ", 100)))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type ticket struct {
	Upload    upload
	UploadURL string
	Method    string
	Headers   []struct{ Name, Value string }
	ExpiresAt string
}

type upload struct {
	ID, Filename, ContentType, Status string
	Size                              int
	MimeType                          *string
	Width, Height                     *int
}

const uploadFields = `id filename contentType size status mimeType width height`

func createUpload(t testing.TB, n *brooktest.Node, token, filename, contentType string, size int) ticket {
	t.Helper()
	var out struct{ CreateUpload ticket }
	n.Must(t, token, `mutation($f: String!, $c: String!, $s: Int!) { createUpload(filename: $f, contentType: $c, size: $s) {
		upload { `+uploadFields+` } uploadUrl method headers { name value } expiresAt } }`,
		brooktest.Vars{"f": filename, "c": contentType, "s": size}, &out)
	return out.CreateUpload
}

// put sends the bytes as the ticket says and returns the status.
func put(t testing.TB, tk ticket, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(tk.Method, tk.UploadURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range tk.Headers {
		if h.Name == "Content-Length" {
			continue // net/http sends the body's own
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Logf("PUT %s: %d %s", tk.Method, resp.StatusCode, msg)
	}
	return resp.StatusCode
}

func complete(t testing.TB, n *brooktest.Node, token, id string) upload {
	t.Helper()
	var out struct{ CompleteUpload upload }
	n.Must(t, token, `mutation($id: ID!) { completeUpload(id: $id) { `+uploadFields+` } }`, brooktest.Vars{"id": id}, &out)
	return out.CompleteUpload
}

// uploadFile creates, puts and completes an upload.
func uploadFile(t testing.TB, n *brooktest.Node, token, filename, contentType string, body []byte) upload {
	t.Helper()
	tk := createUpload(t, n, token, filename, contentType, len(body))
	if code := put(t, tk, body); code/100 != 2 {
		t.Fatalf("PUT: %d", code)
	}
	return complete(t, n, token, tk.Upload.ID)
}

// get downloads a URL: status, headers, body.
func get(t testing.TB, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type attachment struct {
	Type, URL          string
	ThumbURL, MimeType *string
	Size, Width        *int
	Height             *int
	Title, UploadID    *string
}

const attachmentFields = `attachments { type url thumbUrl mimeType size width height title uploadId }`

// roundTrip is the whole path on node n, whatever its storage: upload an
// image and a PDF, complete them, attach them to a message and to an
// activity, read them back as a member (signed URLs that download the
// same bytes, with the sniffed type), and check that a stranger who may
// not read the channel never gets them.
func roundTrip(t *testing.T, n *brooktest.Node) {
	tag := brooktest.Tag()
	alice, bob, carol := "up-alice-"+tag, "up-bob-"+tag, "up-carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	ta, tb, tc := env.Token(t, alice), env.Token(t, bob), env.Token(t, carol)

	img := pngOf(t, 3, 2)
	u := uploadFile(t, n, ta, "cat.png", "image/png", img)
	if u.Status != "READY" || u.MimeType == nil || *u.MimeType != "image/png" || *u.Width != 3 || *u.Height != 2 || u.Size != len(img) {
		t.Fatalf("completed image: %+v", u)
	}
	if again := complete(t, n, ta, u.ID); again.Status != "READY" || *again.Width != 3 || *again.MimeType != *u.MimeType {
		t.Fatalf("completing twice: %+v, then %+v", u, again)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	doc := uploadFile(t, n, ta, "report (final).pdf", "application/pdf", pdf)

	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, ta, `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "up-" + tag, "members": []string{bob}}}, &ch)
	var sent struct {
		SendMessage struct {
			ID          string
			Attachments []attachment
		}
	}
	n.Must(t, ta, `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id `+attachmentFields+` } }`,
		brooktest.Vars{"c": ch.CreateChannel.ID, "in": map[string]any{"text": "look", "attachments": []map[string]any{
			{"uploadId": u.ID}, {"url": "https://example.com/x"}, {"uploadId": doc.ID, "title": "The report"}}}}, &sent)

	var read struct {
		Message struct{ Attachments []attachment }
	}
	n.Must(t, tb, `query($id: ID!) { message(id: $id) { `+attachmentFields+` } }`, brooktest.Vars{"id": sent.SendMessage.ID}, &read)
	got := read.Message.Attachments
	if len(got) != 3 || got[0].Type != "IMAGE" || *got[0].MimeType != "image/png" || *got[0].Width != 3 || *got[0].Size != len(img) ||
		*got[0].UploadID != u.ID || *got[0].Title != "cat.png" || got[1].URL != "https://example.com/x" ||
		got[2].Type != "FILE" || *got[2].Title != "The report" {
		t.Fatalf("attachments as bob reads them: %+v", got)
	}
	code, h, body := get(t, got[0].URL)
	if code != 200 || !bytes.Equal(body, img) || h.Get("Content-Type") != "image/png" || !strings.HasPrefix(h.Get("Content-Disposition"), "inline") {
		t.Fatalf("download the image: %d %v %d bytes", code, h, len(body))
	}
	code, h, body = get(t, got[2].URL)
	if code != 200 || !bytes.Equal(body, pdf) || h.Get("Content-Type") != "application/pdf" ||
		h.Get("Content-Disposition") != `attachment; filename="report (final).pdf"` {
		t.Fatalf("download the PDF: %d %v %q", code, h, body)
	}

	// carol is no member: the message, and so its URLs, are not hers.
	res := n.Query(t, tc, `query($id: ID!) { message(id: $id) { `+attachmentFields+` } }`, brooktest.Vars{"id": sent.SendMessage.ID})
	if strings.Contains(string(res.Data), "http") {
		t.Fatalf("a stranger read the attachments: %s", res.Data)
	}

	// An activity with an upload of bob's.
	pic := uploadFile(t, n, tb, "dog.png", "image/png", pngOf(t, 5, 4))
	var act struct {
		AddActivity struct {
			ID          string
			Attachments []attachment
		}
	}
	n.Must(t, tb, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id `+attachmentFields+` } }`,
		brooktest.Vars{"f": "user:" + bob, "in": map[string]any{"verb": "post", "object": "photo", "attachments": []map[string]any{{"uploadId": pic.ID}}}}, &act)
	a := act.AddActivity.Attachments
	if len(a) != 1 || a[0].Type != "IMAGE" || *a[0].Width != 5 {
		t.Fatalf("activity attachments: %+v", a)
	}
	if code, _, body := get(t, a[0].URL); code != 200 || len(body) == 0 {
		t.Fatalf("download the activity's image: %d", code)
	}
	if c := n.Count(t, `SELECT count(*) FROM uploads WHERE id = ANY($1::uuid[]) AND attached_at IS NOT NULL`,
		[]string{u.ID, doc.ID, pic.ID}); c != 3 {
		t.Fatalf("attached uploads: %d", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM uploads WHERE id = $1 AND attached_to = $2`, pic.ID, "activity:"+act.AddActivity.ID); c != 1 {
		t.Fatal("the activity's upload does not point at it")
	}
}

// The whole path with files on local disk, served by Brook.
func TestUploadRoundTripLocal(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	roundTrip(t, n)
}

// The permission to read an activity's file follows the activity: while
// its feed is PRIVATE only its owner gets the file's URL (a follower and
// a stranger get FORBIDDEN and no URL); once the feed is PUBLIC again,
// anyone signed in gets a URL that downloads the bytes.
func TestActivityAttachmentReadFollowsTheFeed(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	bob, carol, dave := "upf-bob-"+tag, "upf-carol-"+tag, "upf-dave-"+tag
	env.AddUsers(t, n, bob, carol, dave)
	tb, tc, td := env.Token(t, bob), env.Token(t, carol), env.Token(t, dave)
	n.Must(t, td, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { status } }`,
		brooktest.Vars{"s": "timeline:" + dave, "t": "user:" + bob}, nil)
	visibility := func(v string) {
		t.Helper()
		n.Must(t, tb, `mutation($f: ID!, $v: FeedVisibility!) { setFeedVisibility(feed: $f, visibility: $v) { visibility } }`,
			brooktest.Vars{"f": "user:" + bob, "v": v}, nil)
	}
	visibility("PRIVATE")

	img := pngOf(t, 4, 4)
	pic := uploadFile(t, n, tb, "secret.png", "image/png", img)
	var act struct{ AddActivity struct{ ID string } }
	n.Must(t, tb, `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
		brooktest.Vars{"f": "user:" + bob, "in": map[string]any{"verb": "post", "object": "photo", "attachments": []map[string]any{{"uploadId": pic.ID}}}}, &act)
	readQ := `query($a: ID!) { activity(id: $a) { ` + attachmentFields + ` } }`
	vars := brooktest.Vars{"a": act.AddActivity.ID}

	var own struct {
		Activity struct{ Attachments []attachment }
	}
	n.Must(t, tb, readQ, vars, &own)
	if len(own.Activity.Attachments) != 1 {
		t.Fatalf("the owner's read: %+v", own.Activity.Attachments)
	}
	if code, _, body := get(t, own.Activity.Attachments[0].URL); code != 200 || !bytes.Equal(body, img) {
		t.Fatalf("the owner's download: %d, %d bytes", code, len(body))
	}
	for who, tok := range map[string]string{"a follower": td, "a stranger": tc} {
		res := n.Query(t, tok, readQ, vars)
		brooktest.WantCode(t, res, "FORBIDDEN")
		if strings.Contains(string(res.Data), "http") {
			t.Fatalf("%s read the private activity's file: %s", who, res.Data)
		}
	}

	visibility("PUBLIC")
	env.CaughtUp(t) // bob's change, read by another user (BROOK_TEST_PG=replica)
	var other struct {
		Activity struct{ Attachments []attachment }
	}
	n.Must(t, tc, readQ, vars, &other)
	if a := other.Activity.Attachments; len(a) != 1 || a[0].UploadID == nil || *a[0].UploadID != pic.ID {
		t.Fatalf("a stranger's read of the public activity: %+v", a)
	}
	if code, _, body := get(t, other.Activity.Attachments[0].URL); code != 200 || !bytes.Equal(body, img) {
		t.Fatalf("a stranger's download once public: %d, %d bytes", code, len(body))
	}
}
