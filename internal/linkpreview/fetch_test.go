package linkpreview_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/linkpreview"
)

// open is a fetcher that may reach the tests' local servers.
func open() *linkpreview.Fetcher {
	return linkpreview.NewFetcher(linkpreview.Options{AllowPrivate: true, AnyPort: true})
}

// site serves the pages of the tests and counts the requests it got.
type site struct {
	*httptest.Server
	hits atomic.Int64
}

func serve(t *testing.T, h http.HandlerFunc) *site {
	t.Helper()
	s := &site{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serveOn is serve on a given loopback address.
func serveOn(t *testing.T, addr string, h http.HandlerFunc) *site {
	t.Helper()
	l, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := &site{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func html(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

func TestFetchOpenGraph(t *testing.T) {
	t.Parallel()
	var ua string
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ua = r.UserAgent()
		html(`<!doctype html><html><head><title>The plain title</title>
<meta property="og:title" content="  The   OG &amp; title ">
<meta property="og:description" content="What the page is about.">
<meta property="og:image" content="/img/cover.png">
<meta property="og:site_name" content="Example">
<meta name="description" content="not this one">
</head><body><meta property="og:title" content="in the body: ignored"></body></html>`)(w, r)
	})
	p, err := open().Fetch(t.Context(), s.URL+"/post/1")
	if err != nil {
		t.Fatal(err)
	}
	want := linkpreview.Preview{URL: s.URL + "/post/1", Title: "The OG & title", Description: "What the page is about.",
		ImageURL: s.URL + "/img/cover.png", SiteName: "Example"}
	if *p != want {
		t.Fatalf("preview %+v, want %+v", *p, want)
	}
	if !strings.HasPrefix(ua, "Brook-LinkPreview/") {
		t.Fatalf("User-Agent %q", ua)
	}
}

// Without OpenGraph, <title> and the meta description make the preview;
// Twitter card tags come before them; an image that is no http(s) URL is
// dropped.
func TestFetchFallbacks(t *testing.T) {
	t.Parallel()
	s := serve(t, html(`<html><head><title>
  Plain   title &lt;3 </title><meta name="Description" content="Meta description"><meta name="twitter:image" content="javascript:alert(1)"></head><body>x</body></html>`))
	p, err := open().Fetch(t.Context(), s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Title != "Plain title <3" || p.Description != "Meta description" || p.ImageURL != "" {
		t.Fatalf("preview %+v", *p)
	}
	s = serve(t, html(`<head><title>plain</title><meta name="twitter:title" content="Card title"><meta name="twitter:image" content="https://cdn.example/a.png"></head>`))
	if p, err = open().Fetch(t.Context(), s.URL); err != nil || p.Title != "Card title" || p.ImageURL != "https://cdn.example/a.png" {
		t.Fatalf("preview %+v, %v", p, err)
	}
	long := strings.Repeat("é", 400)
	s = serve(t, html(`<title>`+long+`</title>`))
	if p, err = open().Fetch(t.Context(), s.URL); err != nil || len([]rune(p.Title)) != 300 || !strings.HasSuffix(p.Title, "…") {
		t.Fatalf("long title %q, %v", p.Title, err)
	}
}

// Pages that give no preview fail permanently; those that may give one
// later fail transiently.
func TestFetchFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		h         http.HandlerFunc
		permanent bool
	}{
		{"not HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/pdf")
			fmt.Fprint(w, "%PDF-1.4 <title>no</title>")
		}, true},
		{"sniffed not HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0})
		}, true},
		{"no title", html(`<html><head><meta name="description" content="only this"></head><body><h1>hi</h1></body></html>`), true},
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, true},
		{"410", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }, true},
		{"503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, false},
		{"429", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }, false},
		{"redirect loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/again", http.StatusFound) }, true},
	}
	for _, c := range cases {
		s := serve(t, c.h)
		p, err := open().Fetch(t.Context(), s.URL)
		if err == nil || errors.Is(err, linkpreview.ErrPermanent) != c.permanent {
			t.Errorf("%s: preview %+v, err %v; want permanent=%v", c.name, p, err, c.permanent)
		}
	}
}

// At most MaxBytes of a page are read: tags after the cap are not seen.
func TestFetchSizeCap(t *testing.T) {
	t.Parallel()
	pad := `<meta name="pad" content="` + strings.Repeat("x", 100) + `">`
	page := func(padding int) string {
		return `<html><head><title>early</title>` + strings.Repeat(pad, padding/len(pad)) +
			`<meta property="og:title" content="late"></head><body>` + strings.Repeat("y", 3<<20) + `</body></html>`
	}
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/far" {
			html(page(1536<<10))(w, r) // 1.5 MiB of head before og:title
		} else {
			html(page(512<<10))(w, r)
		}
	})
	p, err := open().Fetch(t.Context(), s.URL+"/near")
	if err != nil || p.Title != "late" {
		t.Fatalf("near: %+v, %v", p, err)
	}
	if p, err = open().Fetch(t.Context(), s.URL+"/far"); err != nil || p.Title != "early" {
		t.Fatalf("far: %+v, %v", p, err)
	}
}

// A page slower than the timeout fails transiently.
func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head>")
		w.(http.Flusher).Flush() // headers sent: the body is what is slow
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	f := linkpreview.NewFetcher(linkpreview.Options{AllowPrivate: true, AnyPort: true, Timeout: 200 * time.Millisecond})
	p, err := f.Fetch(t.Context(), s.URL)
	if err == nil || errors.Is(err, linkpreview.ErrPermanent) {
		t.Fatalf("slow page: %+v, %v; want a transient error", p, err)
	}
}

// With the guard on, loopback addresses are refused whether named by
// address or by a name that resolves to them, and nothing reaches them.
func TestFetchRefusesPrivate(t *testing.T) {
	t.Parallel()
	s := serve(t, html(`<title>secret</title>`))
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	guarded := linkpreview.NewFetcher(linkpreview.Options{AnyPort: true})
	for _, u := range []string{s.URL, "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		p, err := guarded.Fetch(t.Context(), u)
		if !errors.Is(err, linkpreview.ErrPermanent) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %+v, %v; want refused", u, p, err)
		}
	}
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("the private server got %d requests", n)
	}
	// Only ports 80 and 443 unless configured.
	ports := linkpreview.NewFetcher(linkpreview.Options{AllowPrivate: true})
	if _, err := ports.Fetch(t.Context(), s.URL); !errors.Is(err, linkpreview.ErrPermanent) || !strings.Contains(err.Error(), "port") {
		t.Fatalf("other port: %v", err)
	}
	// With AllowPrivate the same server is reachable.
	if p, err := open().Fetch(t.Context(), s.URL); err != nil || p.Title != "secret" {
		t.Fatalf("allowed: %+v, %v", p, err)
	}
}

// A redirect to a private address is refused at the redirect: every
// connection is checked, not only the first.
func TestFetchRefusesRedirectToPrivate(t *testing.T) {
	t.Parallel()
	target := serve(t, html(`<title>internal</title>`))
	hop := serveOn(t, "127.0.0.2", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusFound)
	})
	f := linkpreview.NewFetcher(linkpreview.Options{AnyPort: true})
	f.Exempt(netip.MustParseAddr("127.0.0.2")) // the redirecting server stands for a public one
	p, err := f.Fetch(t.Context(), hop.URL)
	if !errors.Is(err, linkpreview.ErrPermanent) || !strings.Contains(err.Error(), "127.0.0.1 is loopback") {
		t.Fatalf("redirect to loopback: %+v, %v", p, err)
	}
	if hop.hits.Load() != 1 || target.hits.Load() != 0 {
		t.Fatalf("hits: hop %d, target %d", hop.hits.Load(), target.hits.Load())
	}
}

// Pages in other charsets are converted to UTF-8, by the Content-Type's
// charset or by <meta charset>.
func TestFetchCharset(t *testing.T) {
	t.Parallel()
	latin1 := "<html><head><title>Caf\xe9 cr\xe8me</title>"
	s := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/header" {
			w.Header().Set("Content-Type", "text/html; charset=ISO-8859-1")
			fmt.Fprint(w, latin1+"</head></html>")
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><meta charset="windows-1252">`+"<title>Caf\xe9 \x93quoted\x94</title></head></html>")
	})
	if p, err := open().Fetch(t.Context(), s.URL+"/header"); err != nil || p.Title != "Café crème" {
		t.Fatalf("header charset: %+v, %v", p, err)
	}
	if p, err := open().Fetch(t.Context(), s.URL+"/meta"); err != nil || p.Title != "Café “quoted”" {
		t.Fatalf("meta charset: %+v, %v", p, err)
	}
}

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	refused := []string{"127.0.0.1", "127.1.2.3", "::ffff:127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"100.64.0.1", "0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1",
		"ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:7f00:1::1", "::127.0.0.1"}
	for _, a := range refused {
		if linkpreview.PublicAddr(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s is allowed", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"} {
		if why := linkpreview.PublicAddr(netip.MustParseAddr(a)); why != "" {
			t.Errorf("%s is refused: %s", a, why)
		}
	}
}

func TestFirstURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"see https://example.com/a?b=c#d now":               "https://example.com/a?b=c#d",
		"end of sentence: http://example.com/x.":            "http://example.com/x",
		"(in parens http://example.com/y)":                  "http://example.com/y",
		"wiki https://en.wikipedia.org/wiki/Go_(lang), ok":  "https://en.wikipedia.org/wiki/Go_(lang)",
		"HTTPS://EXAMPLE.COM first, then https://b.example": "HTTPS://EXAMPLE.COM",
		"<https://example.com/q>":                           "https://example.com/q",
		"no link here, nor ftp://example.com":               "",
		"broken http:// then https://ok.example/":           "https://ok.example/",
	}
	for in, want := range cases {
		if got := linkpreview.FirstURL(in); got != want {
			t.Errorf("FirstURL(%q) = %q, want %q", in, got, want)
		}
	}
}
