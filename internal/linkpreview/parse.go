package linkpreview

import (
	"io"
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Caps on what a preview keeps, in characters.
const (
	maxTitle       = 300
	maxDescription = 500
	maxSiteName    = 100
	maxImageURL    = 2048
)

// parse reads the preview tags of a page's head from r, a UTF-8 stream.
// It stops at </head> or <body>: the tags belong in the head, and the
// rest of the page need not be read. base resolves a relative og:image.
func parse(r io.Reader, base *url.URL) (*Preview, error) {
	z := html.NewTokenizer(r)
	meta := map[string]string{}
	var title strings.Builder
	inTitle, hadTitle := false, false
scan:
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return nil, err
			}
			break scan
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch atom.Lookup(name) {
			case atom.Body:
				break scan
			case atom.Title:
				inTitle = tt == html.StartTagToken && !hadTitle
			case atom.Meta:
				if hasAttr {
					readMeta(z, meta)
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Head:
				break scan
			case atom.Title:
				if inTitle {
					inTitle, hadTitle = false, true
				}
			}
		case html.TextToken:
			if inTitle && title.Len() < 4*maxTitle {
				title.Write(z.Text())
			}
		}
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := meta[k]; v != "" {
				return v
			}
		}
		return ""
	}
	p := &Preview{
		URL:         base.String(),
		Title:       clean(first("og:title", "twitter:title"), maxTitle),
		Description: clean(first("og:description", "twitter:description", "description"), maxDescription),
		SiteName:    clean(first("og:site_name"), maxSiteName),
		ImageURL:    imageURL(base, first("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")),
	}
	if p.Title == "" {
		p.Title = clean(title.String(), maxTitle)
	}
	return p, nil
}

// readMeta records a <meta property|name=... content=...> tag in meta,
// keyed by its lower-cased property or name; the first of a key wins.
func readMeta(z *html.Tokenizer, meta map[string]string) {
	var key, content string
	for {
		k, v, more := z.TagAttr()
		switch string(k) {
		case "property", "name":
			if key == "" {
				key = strings.ToLower(strings.TrimSpace(string(v)))
			}
		case "content":
			content = string(v)
		}
		if !more {
			break
		}
	}
	if key != "" && content != "" {
		if _, ok := meta[key]; !ok {
			meta[key] = content
		}
	}
}

// clean collapses whitespace and cuts s to at most n characters.
func clean(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "")), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// imageURL resolves an image reference against the page's URL; only
// absolute http(s) URLs of reasonable length are kept.
func imageURL(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return ""
	}
	u, err := base.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	s := u.String()
	if len(s) > maxImageURL {
		return ""
	}
	return s
}
