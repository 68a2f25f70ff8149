package linkpreview

import (
	"net/url"
	"regexp"
	"strings"
)

// MaxURL is the longest URL previewed, in bytes.
const MaxURL = 2048

// urlPattern finds candidate URLs in text: http or https, up to the next
// space, angle bracket or quote.
var urlPattern = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'` + "`" + `]+`)

// FirstURL returns the first http(s) URL in text, or "" for none: Brook
// previews one link per message or activity, the first, as Stream does.
// Punctuation that ends a sentence after a URL is not part of it, nor is
// a closing bracket without its opening one inside the URL.
func FirstURL(text string) string {
	for _, m := range urlPattern.FindAllString(text, 8) {
		if u := trimURL(m); u != "" {
			return u
		}
	}
	return ""
}

func trimURL(s string) string {
	for s != "" && trailing(s) {
		s = s[:len(s)-1]
	}
	if len(s) > MaxURL {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	return s
}

// trailing reports whether the last byte of s ends the sentence rather
// than the URL.
func trailing(s string) bool {
	last := s[len(s)-1]
	switch {
	case strings.IndexByte(".,;:!?*", last) >= 0:
		return true
	case last == ')':
		return strings.Count(s, "(") < strings.Count(s, ")")
	case last == ']':
		return strings.Count(s, "[") < strings.Count(s, "]")
	}
	return false
}
