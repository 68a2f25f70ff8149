package api

import (
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which browser origins may call Brook. Requests
// without an Origin header (servers, mobile apps, CLI tools) are not
// browser cross-site requests and are allowed.
type originPolicy struct {
	any       bool
	allowed   map[string]bool
	localhost bool
}

// newOriginPolicy parses a comma-separated list of origins; "*" allows any.
// Dev mode also allows any http://localhost or 127.0.0.1 origin.
func newOriginPolicy(list string, dev bool) *originPolicy {
	p := &originPolicy{allowed: map[string]bool{}, localhost: dev}
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			p.any = true
		default:
			p.allowed[strings.ToLower(o)] = true
		}
	}
	return p
}

// allows reports whether a browser page at origin may call Brook at host.
func (p *originPolicy) allows(origin, host string) bool {
	if origin == "" || p.any || p.allowed[strings.ToLower(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	if p.localhost {
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// allowWebsocket is the upgrader's CheckOrigin: it refuses cross-site
// WebSocket hijacking from pages on origins not allowed.
func (p *originPolicy) allowWebsocket(r *http.Request) bool {
	return p.allows(r.Header.Get("Origin"), r.Host)
}
