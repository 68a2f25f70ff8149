package feeds_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/node"
)

// An activity whose object is a URL, or whose data.text holds one, gets a
// preview from a worker; feedUpdated's updated carries it, and updatedAt
// stays. An activity without URL gets none. Not parallel: an activity's
// job runs on whichever node claims it, and only this test's node makes
// previews.
func TestFeedLinkPreview(t *testing.T) {
	var hits atomic.Int64
	// The page answers once the test has seen the activity added (so its
	// stream watches it): a preview that lands before a stream watches its
	// activity reaches that stream's client only through its next read.
	gate := make(chan struct{})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<head><meta property="og:title" content="Page %s"><meta property="og:image" content="https://img.example/%s.png"></head>`,
			r.URL.Path, r.URL.Path[1:])
	}))
	defer site.Close()
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.Previews = &linkpreview.ServiceOptions{Fetch: linkpreview.Options{AllowPrivate: true, AnyPort: true}}
	}})
	u := feedUsers(t, n, brooktest.Tag(), "writer")
	feed := "user:" + u["writer"]
	sub := n.MustDial(t, env.Token(t, u["writer"])).Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) {
		added { id } updated { id createdAt updatedAt attachments { type url title imageUrl } } } }`, brooktest.Vars{"f": feed})
	n.WaitSubscribed(t) // the first post's event would race the subscription
	type att struct {
		Type, URL, Title string
		ImageURL         *string
	}
	type msg struct {
		FeedUpdated struct {
			Added   []struct{ ID string }
			Updated []struct {
				ID, CreatedAt, UpdatedAt string
				Attachments              []att
			}
		}
	}
	add := func(in map[string]any) string {
		var out struct{ AddActivity struct{ ID string } }
		n.Must(t, env.Token(t, u["writer"]), `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": feed, "in": in}, &out)
		return out.AddActivity.ID
	}
	expect := func(id, url, title string) {
		t.Helper()
		var m msg
		sub.NextData(&m)
		if len(m.FeedUpdated.Added) != 1 || m.FeedUpdated.Added[0].ID != id {
			t.Fatalf("want %s added, got %+v", id, m.FeedUpdated)
		}
		if feeds.WatchersOf(n.Feeds, id) != 1 {
			t.Fatalf("%s delivered as added before watched", id)
		}
		gate <- struct{}{}
		sub.NextData(&m)
		up := m.FeedUpdated.Updated
		if len(up) != 1 || up[0].ID != id || len(up[0].Attachments) != 1 || up[0].UpdatedAt != up[0].CreatedAt {
			t.Fatalf("want %s updated with its preview, got %+v", id, m.FeedUpdated)
		}
		if a := up[0].Attachments[0]; a.Type != "LINK" || a.URL != url || a.Title != title || a.ImageURL == nil {
			t.Fatalf("preview %+v", a)
		}
	}
	shared := add(map[string]any{"verb": "share", "object": site.URL + "/article"})
	expect(shared, site.URL+"/article", "Page /article")
	status := add(map[string]any{"verb": "post", "object": "status:1", "data": map[string]any{"text": "new post: " + site.URL + "/blog, enjoy"}})
	expect(status, site.URL+"/blog", "Page /blog")

	plain := add(map[string]any{"verb": "post", "object": "status:2", "data": map[string]any{"caption": site.URL + "/not-text"}})
	var m msg
	sub.NextData(&m)
	if len(m.FeedUpdated.Added) != 1 || m.FeedUpdated.Added[0].ID != plain {
		t.Fatalf("want %s added, got %+v", plain, m.FeedUpdated)
	}
	n.WaitForJobs(t)
	sub.None(300 * time.Millisecond)
	if h := hits.Load(); h != 2 {
		t.Fatalf("%d fetches, want 2", h)
	}
	var out struct{ Activity struct{ Attachments []att } }
	n.Must(t, env.Token(t, u["writer"]), `query($id: ID!) { activity(id: $id) { attachments { type url title imageUrl } } }`,
		brooktest.Vars{"id": shared}, &out)
	if len(out.Activity.Attachments) != 1 || out.Activity.Attachments[0].Title != "Page /article" {
		t.Fatalf("activity reads %+v", out.Activity)
	}
}
