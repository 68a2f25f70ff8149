package pushsend_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/pushsend"
)

// fcmServer plays Google's OAuth2 token endpoint and FCM HTTP v1's
// messages:send over HTTPS, checking each request as Google documents it:
// the JWT bearer assertion signed with the service account's key (RS256,
// kid, iss, aud = token_uri, scope), then the bearer token it issued, the
// project in the path and the message body.
type fcmServer struct {
	t       *testing.T
	srv     *httptest.Server
	key     *rsa.PrivateKey
	project string

	mu      sync.Mutex
	tokens  int
	bodies  []map[string]any
	reply   func(w http.ResponseWriter) bool // non-nil: answers sends instead
	devices map[string]string                // token → error code to answer
}

func newFCMServer(t *testing.T) *fcmServer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fcmServer{t: t, key: key, project: "brook-test-project", devices: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/{send}", f.send)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// credentials writes the service account's JSON key, as the Firebase
// console makes it, and returns its path.
func (f *fcmServer) credentials() string {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": f.project, "private_key_id": "key-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "brook@" + f.project + ".iam.gserviceaccount.com", "client_id": "1",
		"token_uri": f.srv.URL + "/token",
	})
	p := filepath.Join(f.t.TempDir(), "sa.json")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// token checks the assertion and issues "access-<n>".
func (f *fcmServer) token(w http.ResponseWriter, r *http.Request) {
	if err := f.checkAssertion(r); err != nil {
		f.t.Errorf("token endpoint: %v", err)
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.tokens++
	n := f.tokens
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"access-%d","token_type":"Bearer","expires_in":3600}`, n)
}

func (f *fcmServer) checkAssertion(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion has %d parts", len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&f.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var head struct{ Alg, Typ, Kid string }
	var claims struct {
		Iss, Aud, Scope string
		Iat, Exp        int64
	}
	for i, v := range []any{&head, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return err
		}
	}
	if head.Alg != "RS256" || head.Kid != "key-1" {
		return fmt.Errorf("header %+v", head)
	}
	now := time.Now().Unix()
	if claims.Iss != "brook@"+f.project+".iam.gserviceaccount.com" || claims.Aud != f.srv.URL+"/token" ||
		claims.Scope != pushsend.FCMScope || claims.Iat > now+5 || claims.Exp <= now || claims.Exp-claims.Iat > 3600 {
		return fmt.Errorf("claims %+v", claims)
	}
	return nil
}

func (f *fcmServer) send(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("project") != f.project || r.PathValue("send") != "messages:send" {
		f.t.Errorf("send path %s", r.URL.Path)
	}
	f.mu.Lock()
	want := "Bearer access-" + strconv.Itoa(f.tokens)
	f.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != want {
		f.t.Errorf("Authorization %q, want %q", got, want)
		http.Error(w, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`, http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Errorf("Content-Type %q", ct)
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.t.Errorf("body: %v", err)
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	reply := f.reply
	tok, _ := body["message"].(map[string]any)["token"].(string)
	code := f.devices[tok]
	f.mu.Unlock()
	if reply != nil && reply(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch code {
	case "":
		fmt.Fprintf(w, `{"name":"projects/%s/messages/0:1"}`, f.project)
	case "UNREGISTERED":
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`)
	case "INVALID_ARGUMENT":
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}`)
	}
}

func (f *fcmServer) sender(t *testing.T) pushsend.Sender {
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	env := map[string]string{"BROOK_FCM_CREDENTIALS": f.credentials(), "BROOK_FCM_ENDPOINT": f.srv.URL}
	cfg, on, err := pushsend.FCMConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || !on {
		t.Fatalf("config: %v %v", on, err)
	}
	cfg.RootCAs = pool
	s, err := pushsend.NewFCM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFCMSendsTheDocumentedMessage(t *testing.T) {
	f := newFCMServer(t)
	s := f.sender(t)
	ctx := context.Background()
	n := pushsend.Notification{ID: "p-1", Kind: "mention", Title: "alice in #general", Body: "hi @bob",
		Data: map[string]string{"channel": "general"}, CollapseKey: "channel:general", TTL: time.Hour, Badge: 3}
	for range 2 {
		if err := s.Send(ctx, "device-token-1", n); err != nil {
			t.Fatal(err)
		}
	}
	if f.tokens != 1 {
		t.Fatalf("%d access tokens fetched, want 1 (cached)", f.tokens)
	}
	got := f.bodies[0]["message"].(map[string]any)
	exp := got["apns"].(map[string]any)["headers"].(map[string]any)["apns-expiration"].(string)
	if e, _ := strconv.ParseInt(exp, 10, 64); e < time.Now().Add(59*time.Minute).Unix() || e > time.Now().Add(time.Hour).Unix() {
		t.Errorf("apns-expiration %s is not an hour from now", exp)
	}
	want := map[string]any{
		"token":        "device-token-1",
		"notification": map[string]any{"title": "alice in #general", "body": "hi @bob"},
		"data":         map[string]any{"channel": "general", "kind": "mention", "push_id": "p-1"},
		"android":      map[string]any{"collapse_key": "channel:general", "priority": "normal", "ttl": "3600s"},
		"apns": map[string]any{
			"headers": map[string]any{"apns-priority": "5", "apns-expiration": exp, "apns-collapse-id": "channel:general"},
			"payload": map[string]any{"aps": map[string]any{"badge": float64(3)}},
		},
		"webpush": map[string]any{"headers": map[string]any{"TTL": "3600", "Urgency": "normal", "Topic": "channel_general"}},
	}
	if a, b := mustJSON(got), mustJSON(want); a != b {
		t.Errorf("message\n got %s\nwant %s", a, b)
	}

	// Urgent (a ring): high priority everywhere.
	if err := s.Send(ctx, "device-token-1", pushsend.Notification{ID: "r", Kind: "ring", Title: "alice is calling", Urgent: true}); err != nil {
		t.Fatal(err)
	}
	ring := f.bodies[2]["message"].(map[string]any)
	if ring["android"].(map[string]any)["priority"] != "high" ||
		ring["apns"].(map[string]any)["headers"].(map[string]any)["apns-priority"] != "10" ||
		ring["webpush"].(map[string]any)["headers"].(map[string]any)["Urgency"] != "high" {
		t.Errorf("urgent message %s", mustJSON(ring))
	}
}

func TestFCMErrors(t *testing.T) {
	f := newFCMServer(t)
	s := f.sender(t)
	ctx := context.Background()
	n := pushsend.Notification{ID: "p", Kind: "message", Title: "t"}
	f.devices["gone"] = "UNREGISTERED"
	f.devices["bad"] = "INVALID_ARGUMENT"
	for _, tok := range []string{"gone", "bad"} {
		if err := s.Send(ctx, tok, n); !errors.Is(err, pushsend.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", tok, err)
		}
	}
	// A payload FCM refuses on another field is Brook's fault, not the token's.
	f.reply = func(w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"code":400,"message":"Invalid value at 'message.data[0].value'","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.data[0].value"}]}]}}`)
		return true
	}
	if err := s.Send(ctx, "ok", n); err == nil || errors.Is(err, pushsend.ErrInvalidToken) {
		t.Errorf("payload error: %v", err)
	}
	for _, st := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		f.reply = func(w http.ResponseWriter) bool {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":{"code":%d,"status":"UNAVAILABLE"}}`, st)
			return true
		}
		var ra *pushsend.RetryAfterError
		if err := s.Send(ctx, "ok", n); !errors.As(err, &ra) || ra.After != 7*time.Second {
			t.Errorf("HTTP %d: %v, want retry after 7s", st, err)
		}
	}
	f.reply = func(w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"code":500,"status":"INTERNAL"}}`)
		return true
	}
	if err := s.Send(ctx, "ok", n); err == nil || errors.Is(err, pushsend.ErrInvalidToken) {
		t.Errorf("500: %v, want a plain error", err)
	}
}

func TestFCMConfigFromEnv(t *testing.T) {
	if _, on, err := pushsend.FCMConfigFromEnv(func(string) string { return "" }); on || err != nil {
		t.Errorf("unset: %v %v", on, err)
	}
	if _, _, err := pushsend.FCMConfigFromEnv(func(k string) string {
		return map[string]string{"BROOK_FCM_ENDPOINT": "https://x"}[k]
	}); err == nil {
		t.Error("an endpoint without credentials was accepted")
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"type":"authorized_user"}`), 0o600)
	if _, _, err := pushsend.FCMConfigFromEnv(func(k string) string {
		return map[string]string{"BROOK_FCM_CREDENTIALS": p}[k]
	}); err == nil {
		t.Error("a key that is not a service account's was accepted")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
