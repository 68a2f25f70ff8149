package chat_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/node"
)

// The preview tests do not run in parallel with the package's others: a
// message's job runs on whichever node claims it, and only these tests'
// nodes make previews (and one of them refuses local addresses).

// page is a local site the preview tests fetch, counting its requests.
type page struct {
	*httptest.Server
	hits atomic.Int64
}

func servePage(t *testing.T, h http.HandlerFunc) *page {
	t.Helper()
	p := &page{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

const ogPage = `<html><head><title>plain</title><meta property="og:title" content="A fine article">
<meta property="og:description" content="All about it."><meta property="og:image" content="/cover.png"></head><body></body></html>`

func ogHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, ogPage)
}

// previewNode is a node that makes previews; allowPrivate lets it reach
// the tests' local pages (on any port).
func previewNode(t *testing.T, allowPrivate bool, adjust ...func(*node.Options)) *brooktest.Node {
	return env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.Previews = &linkpreview.ServiceOptions{Fetch: linkpreview.Options{AllowPrivate: allowPrivate, AnyPort: true}}
		for _, a := range adjust {
			a(o)
		}
	}})
}

type previewMsg struct {
	ID          string
	Text        string
	CreatedAt   string
	UpdatedAt   string
	Attachments []struct {
		Type, URL                    string
		Title, Description, ImageURL *string
	}
}

const previewFields = `id text createdAt updatedAt attachments { type url title description imageUrl }`

func readPreviewMsg(t *testing.T, n *brooktest.Node, user, id string) previewMsg {
	t.Helper()
	var out struct{ Message previewMsg }
	n.Must(t, env.Token(t, user), `query($id: ID!) { message(id: $id) { `+previewFields+` } }`, brooktest.Vars{"id": id}, &out)
	return out.Message
}

// A message with a URL gets its preview from a worker: message.updated
// carries it to channelEvents subscribers, the message reads with it, and
// updatedAt stays (a preview is no edit). A second message with the same
// URL takes the cached preview without a second fetch.
func TestChatLinkPreview(t *testing.T) {
	site := servePage(t, ogHandler)
	n := previewNode(t, true)
	tag := brooktest.Tag()
	alice, bob := "lp-alice-"+tag, "lp-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "lp-"+tag, bob)
	events := n.MustDial(t, env.Token(t, bob)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } message { `+previewFields+` } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)

	url := site.URL + "/articles/1"
	m := sendMsg(t, n, alice, cid, "have you read "+url+"?")
	type event struct {
		ChannelEvents struct {
			Type    string
			User    *struct{ ID string }
			Message previewMsg
		}
	}
	var ev event
	events.NextData(&ev)
	// message.new comes first, always; it carries the preview already
	// when the preview's job published it (ensureMessageNew).
	if ev.ChannelEvents.Type != "message.new" || len(ev.ChannelEvents.Message.Attachments) > 1 {
		t.Fatalf("first event %+v", ev.ChannelEvents)
	}
	events.NextData(&ev)
	got := ev.ChannelEvents.Message
	if ev.ChannelEvents.Type != "message.updated" || got.ID != m.ID || ev.ChannelEvents.User != nil || len(got.Attachments) != 1 {
		t.Fatalf("second event %+v", ev.ChannelEvents)
	}
	a := got.Attachments[0]
	if a.Type != "LINK" || a.URL != url || *a.Title != "A fine article" || *a.Description != "All about it." || *a.ImageURL != site.URL+"/cover.png" {
		t.Fatalf("preview %+v", a)
	}
	if got.UpdatedAt != got.CreatedAt {
		t.Fatalf("the preview changed updatedAt: %s, created %s", got.UpdatedAt, got.CreatedAt)
	}
	if read := readPreviewMsg(t, n, bob, m.ID); len(read.Attachments) != 1 || *read.Attachments[0].Title != "A fine article" {
		t.Fatalf("message reads %+v", read)
	}

	m2 := sendMsg(t, n, bob, cid, url)
	events.NextData(&ev) // message.new
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "message.updated" || ev.ChannelEvents.Message.ID != m2.ID || len(ev.ChannelEvents.Message.Attachments) != 1 {
		t.Fatalf("second message's update %+v", ev.ChannelEvents)
	}
	if h := site.hits.Load(); h != 1 {
		t.Fatalf("the page was fetched %d times, want 1 (cached)", h)
	}
	n.WaitForJobs(t)
	events.None(200 * time.Millisecond)
}

// A message without URL, a system message, and one with a LINK already
// queue no preview job; an edit that brings a URL does.
func TestChatLinkPreviewEdit(t *testing.T) {
	site := servePage(t, ogHandler)
	n := previewNode(t, true)
	tag := brooktest.Tag()
	alice, bob := "lpe-alice-"+tag, "lpe-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "lpe-"+tag, bob)
	m := sendMsg(t, n, alice, cid, "no link yet")
	n.WaitForJobs(t)
	if c := n.Count(t, `SELECT count(*) FROM jobs WHERE kind LIKE 'preview.message'`); c != 0 {
		t.Fatalf("%d preview jobs for a message without URL", c)
	}
	n.Must(t, env.Token(t, alice), `mutation($id: ID!, $t: String!) { updateMessage(id: $id, text: $t) { id } }`,
		brooktest.Vars{"id": m.ID, "t": "now with " + site.URL + "/x"}, nil)
	brooktest.Eventually(t, "the edit's preview", func() bool { return len(readPreviewMsg(t, n, alice, m.ID).Attachments) == 1 })
	got := readPreviewMsg(t, n, alice, m.ID)
	if got.Attachments[0].URL != site.URL+"/x" || *got.Attachments[0].Title != "A fine article" {
		t.Fatalf("edited message %+v", got)
	}
	// Editing again with another URL keeps the one preview.
	n.Must(t, env.Token(t, alice), `mutation($id: ID!, $t: String!) { updateMessage(id: $id, text: $t) { id } }`,
		brooktest.Vars{"id": m.ID, "t": "and " + site.URL + "/y"}, nil)
	n.WaitForJobs(t)
	if got := readPreviewMsg(t, n, alice, m.ID); len(got.Attachments) != 1 || site.hits.Load() != 1 {
		t.Fatalf("after a second edit: %+v, %d fetches", got, site.hits.Load())
	}
}

// A message deleted before its preview arrives gets none: deleted while
// the page is fetched (the write checks again), or before its jobs ran.
func TestChatLinkPreviewDeleted(t *testing.T) {
	fetching, release := make(chan struct{}, 1), make(chan struct{})
	site := servePage(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetching <- struct{}{}:
		default:
		}
		<-release
		ogHandler(w, r)
	})
	n := previewNode(t, true)
	tag := brooktest.Tag()
	alice, bob := "lpd-alice-"+tag, "lpd-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "lpd-"+tag, bob)
	del := func(id string) {
		n.Must(t, env.Token(t, alice), `mutation($id: ID!) { deleteMessage(id: $id) { id } }`, brooktest.Vars{"id": id}, nil)
	}
	m := sendMsg(t, n, alice, cid, "see "+site.URL+"/a")
	<-fetching
	del(m.ID)
	close(release)
	n.WaitForJobs(t)
	var atts *string
	if err := n.Store.DB().QueryRow(t.Context(), `SELECT attachments::text FROM messages WHERE id = $1`, m.ID).Scan(&atts); err != nil || atts != nil {
		t.Fatalf("deleted message's attachments %v, %v", atts, err)
	}

	// Sent and deleted while no worker runs: its job, run later, queues
	// no preview.
	n.Stop()
	n = env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	m2 := sendMsg(t, n, alice, cid, "see "+site.URL+"/b")
	del(m2.ID)
	n = previewNode(t, true)
	n.WaitForJobs(t)
	if h := site.hits.Load(); h != 1 {
		t.Fatalf("%d fetches, want 1", h)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE id = $1 AND attachments IS NOT NULL`, m2.ID); c != 0 {
		t.Fatal("a deleted message got a preview")
	}
}

// With the guard on, a URL of a private address is refused: no request
// reaches it, the message gets no preview, the job ends (not retried nor
// parked) and the refusal is cached.
func TestChatLinkPreviewRefusesPrivate(t *testing.T) {
	site := servePage(t, ogHandler)
	n := previewNode(t, false)
	tag := brooktest.Tag()
	alice, bob := "lpr-alice-"+tag, "lpr-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "lpr-"+tag, bob)
	url := site.URL + "/internal"
	m := sendMsg(t, n, alice, cid, "metadata at "+url)
	brooktest.Eventually(t, "the refusal is cached", func() bool {
		return n.Count(t, `SELECT count(*) FROM link_previews WHERE url = $1 AND preview IS NULL`, url) == 1
	})
	n.WaitForJobs(t)
	if c := n.Count(t, `SELECT count(*) FROM jobs WHERE kind = 'preview.message'`); c != 0 {
		t.Fatalf("%d preview jobs left", c)
	}
	if got := readPreviewMsg(t, n, alice, m.ID); len(got.Attachments) != 0 || site.hits.Load() != 0 {
		t.Fatalf("refused page: %+v, %d requests", got, site.hits.Load())
	}
}

// A page that fails transiently (503) is tried again with backoff, and
// its preview arrives once it answers.
func TestChatLinkPreviewRetries(t *testing.T) {
	site := servePage(t, nil)
	var fail atomic.Bool
	fail.Store(true)
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site.hits.Add(1)
		if fail.Swap(false) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ogHandler(w, r)
	})
	n := previewNode(t, true)
	tag := brooktest.Tag()
	alice, bob := "lpt-alice-"+tag, "lpt-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "lpt-"+tag, bob)
	m := sendMsg(t, n, alice, cid, site.URL+"/flaky")
	brooktest.Eventually(t, "the retried preview", func() bool { return len(readPreviewMsg(t, n, alice, m.ID).Attachments) == 1 })
	if h := site.hits.Load(); h != 2 {
		t.Fatalf("%d requests, want 2", h)
	}
}
