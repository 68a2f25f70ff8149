package api

import (
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// serveApp serves the demo web app built into WebDir (web/dist): its files
// under /app/, and index.html for any other /app/ path, so the app's own
// routes survive a reload.
func (s *Server) serveApp() http.Handler {
	dir := s.opts.WebDir
	files := http.StripPrefix("/app/", http.FileServer(http.Dir(dir)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rel := strings.TrimPrefix(r.URL.Path, "/app/")
		if rel != "" && !strings.HasSuffix(rel, "/") {
			if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err == nil && !st.IsDir() {
				if strings.HasPrefix(rel, "assets/") {
					// Vite names assets by content hash.
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFile(w, r, filepath.Join(dir, "index.html"))
	})
}

// hasFile reports whether dir holds name.
func hasFile(dir, name string) bool {
	if dir == "" {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && !st.IsDir()
}

// fromLoopback reports whether r came from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// localHost reports whether a request's Host header (its port aside)
// names this machine: localhost, a loopback address, or the host the
// server was told to listen on (bindAddr's, when it names one). A page
// whose DNS name an attacker rebinds to 127.0.0.1 reaches a loopback
// listener from a loopback peer, but its Host is still the attacker's
// name; an IP address or localhost cannot be rebound.
func localHost(host, bindAddr string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	bind, _, err := net.SplitHostPort(bindAddr)
	if err != nil || bind == "" {
		return false
	}
	if ip := net.ParseIP(bind); ip != nil && ip.IsUnspecified() {
		return false // 0.0.0.0 or [::]: every address, no name
	}
	return strings.EqualFold(host, strings.TrimSuffix(strings.TrimPrefix(bind, "["), "]"))
}

// isJSON reports whether a request says its body is JSON.
func isJSON(r *http.Request) bool {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && t == "application/json"
}

// devTokenTTL is how long a token from the dev endpoint lasts.
const devTokenTTL = 24 * time.Hour

// serveDevToken hands out tokens to anyone who asks, for the demo app's
// sign-in. It exists only in dev mode (BROOK_DEV=true, which make run
// sets): in production, tokens come from the app's own backend.
//
//	POST /dev/token {"userId": "alice", "admin": false} → {"token": "..."}
func (s *Server) serveDevToken(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		// Anyone who reaches this endpoint gets any token, admin
		// included: only someone on this machine may. The address is the
		// TCP peer's, never a forwarded header a client could write.
		s.writeError(w, r, auth.Forbidden("the dev token endpoint answers only requests from this machine (loopback); run `brook token <user>` on the server instead"))
		return
	}
	if !localHost(r.Host, s.opts.Addr) {
		// A loopback peer is not enough: a web page rebound to 127.0.0.1
		// is same-origin with this server and could read the token.
		s.writeError(w, r, auth.Forbidden("the dev token endpoint answers only requests addressed to localhost, a loopback address or the host of BROOK_ADDR, not to %q; open Brook as http://localhost:PORT", r.Host))
		return
	}
	if !isJSON(r) {
		// A page on another origin can send a form or text/plain POST
		// without asking; application/json needs a CORS preflight, which
		// this endpoint never allows.
		s.writeError(w, r, &statusError{status: http.StatusUnsupportedMediaType,
			err: store.Invalid("Content-Type", `send {"userId": "alice"} with Content-Type: application/json (this request's: %q)`, r.Header.Get("Content-Type"))})
		return
	}
	var req struct {
		UserID string `json:"userId"`
		Admin  bool   `json:"admin"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		s.writeError(w, r, store.Invalid("", `send {"userId": "alice"}`))
		return
	}
	if err := store.CheckUserID("userId", req.UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	tok, err := s.opts.Keys.Issue(req.UserID, req.Admin, devTokenTTL)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "userId": req.UserID, "expiresIn": int(devTokenTTL.Seconds())})
}
