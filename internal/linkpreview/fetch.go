// Package linkpreview makes link previews: it fetches a web page with a
// timeout, a size cap and a guard against private addresses, and reads
// its OpenGraph title, description and image (falling back to Twitter
// card tags, <title> and the meta description).
//
// The HTML is read with golang.org/x/net/html's tokenizer rather than a
// DOM library such as goquery: a preview needs a handful of tags from the
// page's head, which the tokenizer reads as a stream and stops after,
// without building a tree of the page (goquery parses the whole document
// with this same package first), and the module is already Brook's.
package linkpreview

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html/charset"
)

// Options tune a Fetcher. Zero values take the defaults.
type Options struct {
	// Timeout bounds one fetch, redirects and body included (5 s).
	Timeout time.Duration
	// MaxBytes is how much of a page is read at most (1 MiB); a page's
	// head is at its start.
	MaxBytes int64
	// MaxRedirects is how many redirects a fetch follows (3).
	MaxRedirects int
	// UserAgent names Brook to the sites it fetches.
	UserAgent string
	// AllowPrivate lets fetches reach loopback, private, link-local and
	// other non-public addresses (BROOK_PREVIEW_ALLOW_PRIVATE): for tests
	// and closed networks only.
	AllowPrivate bool
	// Ports are the ports fetches may connect to (80 and 443); AnyPort
	// allows every port.
	Ports   []uint16
	AnyPort bool
}

// DefaultUserAgent is the User-Agent of preview fetches.
const DefaultUserAgent = "Brook-LinkPreview/1 (+https://github.com/brookhq/brook)"

// Fetcher fetches pages and reads their previews. It is safe for
// concurrent use.
type Fetcher struct {
	opts   Options
	ports  []uint16
	client *http.Client
	// exempt are addresses the guard lets through: only tests set it, to
	// reach a redirecting server while refusing its target.
	exempt []netip.Addr
}

// NewFetcher returns a Fetcher.
func NewFetcher(opts Options) *Fetcher {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 20
	}
	if opts.MaxRedirects <= 0 {
		opts.MaxRedirects = 3
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	f := &Fetcher{opts: opts}
	if !opts.AnyPort {
		f.ports = opts.Ports
		if len(f.ports) == 0 {
			f.ports = []uint16{80, 443}
		}
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: f.control}
	f.client = &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: the guard must see the
			// address of the site itself.
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    opts.Timeout,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > opts.MaxRedirects {
				return permanent("more than %d redirects", opts.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return permanent("redirect to a %q URL", req.URL.Scheme)
			}
			return nil
		},
	}
	return f
}

// ErrPermanent marks a fetch that will not give a preview if tried again
// soon: the page is missing, is not HTML, has no title, or its address is
// refused. Other errors (timeouts, 5xx, a reset connection) are transient.
var ErrPermanent = errors.New("linkpreview: no preview")

// permanent is an error that wraps ErrPermanent.
func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPermanent, fmt.Sprintf(format, args...))
}

// Preview is what a page says about itself.
type Preview struct {
	// URL is the page's address after redirects.
	URL         string
	Title       string
	Description string
	// ImageURL is absolute, http or https; empty for none.
	ImageURL string
	SiteName string
}

// Fetch GETs rawURL and reads its preview. A page without a title (no
// og:title, twitter:title nor <title>) gives none: ErrPermanent.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*Preview, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, permanent("not an absolute http(s) URL: %q", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, permanent("%v", err)
	}
	req.Header.Set("User-Agent", f.opts.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return nil, fmt.Errorf("linkpreview: HTTP %d", code)
	default:
		return nil, permanent("HTTP %d", code)
	}
	body := io.LimitReader(resp.Body, f.opts.MaxBytes)
	ct := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		// No usable type: sniff the first bytes, as a browser would.
		head := make([]byte, 512)
		n, _ := io.ReadFull(body, head)
		ct = http.DetectContentType(head[:n])
		mt, _, _ = mime.ParseMediaType(ct)
		body = io.MultiReader(strings.NewReader(string(head[:n])), body)
	}
	if mt != "text/html" && mt != "application/xhtml+xml" {
		return nil, permanent("not HTML but %q", mt)
	}
	// Pages that are not UTF-8 are converted, by the charset of the
	// Content-Type, a byte order mark or a <meta charset> near the start.
	r, err := charset.NewReader(body, ct)
	if err != nil {
		return nil, classify(err) // it peeks at the body: a read error
	}
	p, err := parse(r, resp.Request.URL)
	if err != nil {
		return nil, classify(err)
	}
	if p.Title == "" {
		return nil, permanent("the page has no title")
	}
	return p, nil
}

// classify wraps the errors that retrying soon cannot fix in ErrPermanent.
func classify(err error) error {
	var (
		refused *refusedError
		dns     *net.DNSError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrPermanent):
		return err
	case errors.As(err, &refused), errors.As(err, &dns) && dns.IsNotFound,
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return fmt.Errorf("linkpreview: %w", err)
}
