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
