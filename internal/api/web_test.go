package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return send(t, req)
}

// send sends req and returns the answer's status and body.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDevTokenOnlyInDevMode(t *testing.T) {
	prod := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	if status, _ := httpDo(t, http.MethodPost, prod.URL+"/dev/token", `{"userId":"alice"}`); status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		t.Fatalf("dev token endpoint outside dev mode: %d", status)
	}
	dev := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev = true }})
	status, body := httpDo(t, http.MethodPost, dev.URL+"/dev/token", `{"userId":"demo-user"}`)
	var got struct{ Token string }
	if status != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Token == "" {
		t.Fatalf("dev token: %d %s", status, body)
	}
	var me struct{ Me struct{ ID string } }
	dev.Must(t, got.Token, `{ me { id } }`, nil, &me)
	if me.Me.ID != "demo-user" {
		t.Fatalf("me with a dev token: %+v", me)
	}
	if status, body := httpDo(t, http.MethodPost, dev.URL+"/dev/token", `{"userId":"no spaces"}`); status != 400 || !strings.Contains(body, "BAD_USER_INPUT") {
		t.Fatalf("bad user id: %d %s", status, body)
	}
}

// Whoever reaches the dev token endpoint gets any token, admin included:
// it answers only requests from this machine.
func TestDevTokenRefusesOtherMachines(t *testing.T) {
	dev := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev = true }})
	// A request from another address, as the handler sees it.
	req := httptest.NewRequest(http.MethodPost, "/dev/token", strings.NewReader(`{"userId":"mallory","admin":true}`))
	req.RemoteAddr = "203.0.113.7:40000"
	req.Header.Set("X-Forwarded-For", "127.0.0.1") // never trusted for this
	rec := httptest.NewRecorder()
	dev.API.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "FORBIDDEN") || strings.Contains(rec.Body.String(), "token\":") {
		t.Fatalf("dev token for another machine: %d %s", rec.Code, rec.Body.String())
	}
	// And over the network, when this machine has an address other than
	// loopback to listen on and connect from.
	ip := externalIP()
	if ip == nil {
		t.Log("no non-loopback address here: checked at the handler only")
		return
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Logf("cannot listen on %s: %v; checked at the handler only", ip, err)
		return
	}
	srv := httptest.NewUnstartedServer(dev.API.Handler())
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	status, body := httpDo(t, http.MethodPost, srv.URL+"/dev/token", `{"userId":"mallory","admin":true}`)
	if status != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Fatalf("dev token over %s: %d %s", ip, status, body)
	}
}

// devToken asks the dev token endpoint for an admin token, with the Host
// header and Content-Type given ("" sends none).
func devToken(t *testing.T, base, host, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/dev/token", strings.NewReader(`{"userId":"mallory","admin":true}`))
	if host != "" {
		req.Host = host
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(t, req)
}

// A page whose DNS name is rebound to 127.0.0.1 reaches the dev server
// from loopback and is same-origin with it: the endpoint also wants the
// request addressed to this machine by a name no one can rebind.
func TestDevTokenRefusesReboundHosts(t *testing.T) {
	dev := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev = true }})
	for _, host := range []string{"localhost:8080", "LOCALHOST", "127.0.0.1:8080", "127.0.0.1", "[::1]:8080", "[::1]"} {
		if status, body := devToken(t, dev.URL, host, "application/json"); status != http.StatusOK || !strings.Contains(body, `"token"`) {
			t.Errorf("Host %s: %d %s, want a token", host, status, body)
		}
	}
	for _, host := range []string{"attacker.example:8080", "attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "0.0.0.0:8080", "devbox.example"} {
		status, body := devToken(t, dev.URL, host, "application/json")
		if status != http.StatusForbidden || !strings.Contains(body, "FORBIDDEN") || !strings.Contains(body, "localhost") || strings.Contains(body, `"token"`) {
			t.Errorf("Host %s: %d %s, want 403 FORBIDDEN naming localhost", host, status, body)
		}
	}

	// Told to listen on a name (deliberately beyond loopback), the server
	// accepts that name too; a wildcard address names no host.
	named := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev, o.Addr = true, "devbox.example:8080" }})
	if status, body := devToken(t, named.URL, "devbox.example:8080", "application/json"); status != http.StatusOK {
		t.Errorf("Host of BROOK_ADDR: %d %s, want a token", status, body)
	}
	if status, _ := devToken(t, named.URL, "attacker.example", "application/json"); status != http.StatusForbidden {
		t.Errorf("another host beside BROOK_ADDR's: %d, want 403", status)
	}
	wild := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev, o.Addr = true, "0.0.0.0:8080" }})
	if status, _ := devToken(t, wild.URL, "0.0.0.0:8080", "application/json"); status != http.StatusForbidden {
		t.Errorf("Host 0.0.0.0 with BROOK_ADDR=0.0.0.0:8080: %d, want 403", status)
	}
}

// A page on another origin may send a form or text/plain POST without a
// CORS preflight; the endpoint reads only a body that says it is JSON,
// which such a page cannot send unasked.
func TestDevTokenWantsJSON(t *testing.T) {
	dev := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev = true }})
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"} {
		status, body := devToken(t, dev.URL, "", ct)
		if status != http.StatusUnsupportedMediaType || !strings.Contains(body, "BAD_USER_INPUT") || !strings.Contains(body, "application/json") || strings.Contains(body, `"token"`) {
			t.Errorf("Content-Type %q: %d %s, want 415 asking for application/json", ct, status, body)
		}
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		if status, body := devToken(t, dev.URL, "", ct); status != http.StatusOK {
			t.Errorf("Content-Type %q: %d %s, want a token", ct, status, body)
		}
	}
	// Nothing lets a cross-origin page send JSON: the preflight is not
	// answered with a CORS allowance.
	req, _ := http.NewRequest(http.MethodOptions, dev.URL+"/dev/token", nil)
	req.Header.Set("Origin", "http://attacker.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" || resp.StatusCode < 400 {
		t.Errorf("preflight of /dev/token: %d, Access-Control-Allow-Origin %q; want a refusal", resp.StatusCode, got)
	}
}

// externalIP returns an IPv4 address of this machine that is not loopback.
func externalIP() net.IP {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP
		}
	}
	return nil
}

func TestServesTheBuiltWebApp(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("index.html", "<html>demo app</html>")
	write("graphiql.html", "<html>local graphiql</html>")
	write("assets/app-123.js", "console.log(1)")
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.WebDir = dir }})
	for path, want := range map[string]string{
		"/":                      "local graphiql",
		"/app/":                  "demo app",
		"/app/chat/general":      "demo app", // the app's own routes survive a reload
		"/app/assets/app-123.js": "console.log(1)",
	} {
		status, body := httpDo(t, http.MethodGet, n.URL+path, "")
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q", path, status, body)
		}
	}
	// Without a build, / still serves GraphiQL (from a CDN) and /app/ is absent.
	bare := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.WebDir = t.TempDir() }})
	if status, body := httpDo(t, http.MethodGet, bare.URL+"/", ""); status != 200 || !bytes.Contains([]byte(body), []byte("graphiql")) {
		t.Errorf("GraphiQL without a build: %d", status)
	}
	if status, _ := httpDo(t, http.MethodGet, bare.URL+"/app/", ""); status != 404 {
		t.Errorf("/app/ without a build: %d", status)
	}
}
