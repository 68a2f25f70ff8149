package pushsend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// apnsRequest is what the fake APNs saw of one request, checked by the test.
type apnsRequest struct {
	proto   int
	method  string
	path    string
	header  http.Header
	payload map[string]any
	claims  jwt.MapClaims
	kid     any
	jwtErr  error
	bearer  string
}

// apnsServer is a local HTTP/2 TLS server that answers as Apple documents
// ("Sending notification requests to APNs", "Handling notification
// responses from APNs"), keyed on the device token.
type apnsServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []apnsRequest
}

const (
	liveToken      = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	deadToken      = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
	throttledToken = "7777777777777777777777777777777777777777777777777777777777777777"
	badToken       = "0badbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadbadba0"
	downToken      = "5035035035035035035035035035035035035035035035035035035035035035"
)

func newAPNsServer(t *testing.T, pub *ecdsa.PublicKey) *apnsServer {
	s := &apnsServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := apnsRequest{proto: r.ProtoMajor, method: r.Method, path: r.URL.Path, header: r.Header.Clone()}
		_ = json.Unmarshal(body, &req.payload)
		req.bearer = strings.TrimPrefix(r.Header.Get("authorization"), "bearer ")
		tok, err := jwt.Parse(req.bearer, func(tok *jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}))
		req.jwtErr = err
		if tok != nil {
			req.claims, _ = tok.Claims.(jwt.MapClaims)
			req.kid = tok.Header["kid"]
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()

		fail := func(status int, reason string) {
			w.Header().Set("apns-id", r.Header.Get("apns-id"))
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"reason":"`+reason+`","timestamp":1700000000000}`)
		}
		switch {
		case err != nil:
			fail(http.StatusForbidden, "InvalidProviderToken")
		case strings.HasSuffix(r.URL.Path, deadToken):
			fail(http.StatusGone, "Unregistered")
		case strings.HasSuffix(r.URL.Path, throttledToken):
			fail(http.StatusTooManyRequests, "TooManyRequests")
		case strings.HasSuffix(r.URL.Path, badToken):
			fail(http.StatusBadRequest, "BadDeviceToken")
		case strings.HasSuffix(r.URL.Path, downToken):
			fail(http.StatusServiceUnavailable, "ServiceUnavailable")
		default:
			w.Header().Set("apns-id", r.Header.Get("apns-id"))
			w.WriteHeader(http.StatusOK)
		}
	}))
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *apnsServer) requests() []apnsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]apnsRequest(nil), s.reqs...)
}

// testP8 makes a .p8 auth key as Apple hands it out: a PKCS#8 P-256 key.
func testP8(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func newTestAPNs(t *testing.T) (Sender, *apnsServer) {
	key, p8 := testP8(t)
	srv := newAPNsServer(t, &key.PublicKey)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	s, err := NewAPNs(APNsConfig{Key: p8, KeyID: "ABC123DEFG", TeamID: "TEAM123456",
		Topic: "dev.brook.app", Endpoint: srv.URL, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv
}

func TestAPNsSendsWhatAppleDocuments(t *testing.T) {
	s, srv := newTestAPNs(t)
	ctx := context.Background()
	start := time.Now()
	n := Notification{
		ID: "push-1", Kind: "message", Title: "ann in #general", Body: "lunch?", Badge: 3,
		Data:        map[string]string{"channel": "ch-1", "message": "m-9"},
		CollapseKey: "channel:ch-1", TTL: 2 * time.Hour,
	}
	if err := s.Send(ctx, liveToken, n); err != nil {
		t.Fatal(err)
	}
	ring := Notification{ID: "push-2", Kind: "ring", Title: "bob is calling", Body: "video call",
		CollapseKey: "call:" + strings.Repeat("x", 80), TTL: 30 * time.Second, Urgent: true}
	if err := s.Send(ctx, strings.ToUpper(liveToken), ring); err != nil {
		t.Fatal(err)
	}
	// A retry of the first push: same apns-id, so Apple shows it once.
	if err := s.Send(ctx, liveToken, n); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.proto != 2 || r.method != http.MethodPost || r.path != "/3/device/"+liveToken {
			t.Errorf("request %d: HTTP/%d %s %s, want HTTP/2 POST /3/device/<token>", i, r.proto, r.method, r.path)
		}
		if r.jwtErr != nil {
			t.Fatalf("request %d: provider token does not verify with the p8's public key: %v", i, r.jwtErr)
		}
		if r.kid != "ABC123DEFG" || r.claims["iss"] != "TEAM123456" {
			t.Errorf("request %d: kid %v iss %v", i, r.kid, r.claims["iss"])
		}
		iat, _ := r.claims["iat"].(float64)
		if int64(iat) < start.Unix()-1 || int64(iat) > end.Unix() {
			t.Errorf("request %d: iat %v not the time of sending", i, iat)
		}
		if r.header.Get("apns-topic") != "dev.brook.app" || r.header.Get("apns-push-type") != "alert" {
			t.Errorf("request %d: topic %q push type %q", i, r.header.Get("apns-topic"), r.header.Get("apns-push-type"))
		}
		if _, err := uuid.Parse(r.header.Get("apns-id")); err != nil || r.header.Get("apns-id") != strings.ToLower(r.header.Get("apns-id")) {
			t.Errorf("request %d: apns-id %q is not a canonical UUID", i, r.header.Get("apns-id"))
		}
	}
	// The token is reused, not signed anew for every push.
	if reqs[0].bearer != reqs[1].bearer || reqs[1].bearer != reqs[2].bearer {
		t.Error("provider token was not reused across pushes")
	}

	first, ringReq, retry := reqs[0], reqs[1], reqs[2]
	if first.header.Get("apns-id") != retry.header.Get("apns-id") || first.header.Get("apns-id") == ringReq.header.Get("apns-id") {
		t.Errorf("apns-id: first %q retry %q ring %q: want retries equal, pushes distinct",
			first.header.Get("apns-id"), retry.header.Get("apns-id"), ringReq.header.Get("apns-id"))
	}
	if got := first.header.Get("apns-priority"); got != "5" {
		t.Errorf("message apns-priority %q, want 5", got)
	}
	if got := ringReq.header.Get("apns-priority"); got != "10" {
		t.Errorf("ring apns-priority %q, want 10", got)
	}
	checkExpiration(t, first.header.Get("apns-expiration"), start, end, 2*time.Hour)
	checkExpiration(t, ringReq.header.Get("apns-expiration"), start, end, 30*time.Second)
	if got := first.header.Get("apns-collapse-id"); got != "channel:ch-1" {
		t.Errorf("apns-collapse-id %q", got)
	}
	sum := sha256.Sum256([]byte(ring.CollapseKey))
	if got := ringReq.header.Get("apns-collapse-id"); got != hex.EncodeToString(sum[:]) || len(got) > 64 {
		t.Errorf("long collapse key sent as %q, want its 64-byte hash", got)
	}

	want := map[string]any{
		"aps": map[string]any{
			"alert": map[string]any{"title": "ann in #general", "body": "lunch?"},
			"badge": 3.0, "sound": "default",
		},
		"channel": "ch-1", "message": "m-9",
	}
	if !reflect.DeepEqual(first.payload, want) {
		t.Errorf("payload\n got %v\nwant %v", first.payload, want)
	}
	wantRing := map[string]any{"aps": map[string]any{
		"alert": map[string]any{"title": "bob is calling", "body": "video call"}, "sound": "default",
	}}
	if !reflect.DeepEqual(ringReq.payload, wantRing) {
		t.Errorf("ring payload\n got %v\nwant %v", ringReq.payload, wantRing)
	}
}

func checkExpiration(t *testing.T, header string, start, end time.Time, ttl time.Duration) {
	t.Helper()
	exp, err := strconv.ParseInt(header, 10, 64)
	if err != nil || exp < start.Add(ttl).Unix() || exp > end.Add(ttl).Unix()+1 {
		t.Errorf("apns-expiration %q, want now + %s", header, ttl)
	}
}

func TestAPNsErrorsFollowTheSenderContract(t *testing.T) {
	s, srv := newTestAPNs(t)
	ctx := context.Background()
	n := Notification{ID: "p", Title: "t", Body: "b"}

	for _, tok := range []string{deadToken, badToken} {
		if err := s.Send(ctx, tok, n); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %s…: %v, want ErrInvalidToken", tok[:8], err)
		}
	}
	for _, tok := range []string{throttledToken, downToken} {
		var ra *RetryAfterError
		if err := s.Send(ctx, tok, n); !errors.As(err, &ra) || ra.After != apnsRetryAfter || errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %s…: %v, want a RetryAfterError", tok[:8], err)
		}
	}
	// Tokens that cannot be APNs tokens never reach Apple.
	for _, tok := range []string{"", "not-hex-at-all-not-hex-at-all-not-hex-at-all-not-hex-at-all-123", "abc/../../x", liveToken + "0"} {
		if err := s.Send(ctx, tok, n); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %q: %v, want ErrInvalidToken", tok, err)
		}
	}
	if got := len(srv.requests()); got != 4 {
		t.Errorf("server saw %d requests, want 4", got)
	}
}

func TestAPNsRejectsAWrongKey(t *testing.T) {
	// A token signed by another key is refused (403); the sender reports a
	// plain, retryable error and does not drop the device.
	_, p8 := testP8(t)
	other, _ := testP8(t)
	srv := newAPNsServer(t, &other.PublicKey)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	s, err := NewAPNs(APNsConfig{Key: p8, KeyID: "K", TeamID: "T", Topic: "x", Endpoint: srv.URL, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), liveToken, Notification{ID: "p"})
	var ra *RetryAfterError
	if err == nil || errors.Is(err, ErrInvalidToken) || errors.As(err, &ra) || !strings.Contains(err.Error(), "403 InvalidProviderToken") {
		t.Errorf("got %v, want a 403 InvalidProviderToken error", err)
	}
	if _, err := NewAPNs(APNsConfig{Key: []byte("not a key"), KeyID: "K", TeamID: "T", Topic: "x"}); err == nil {
		t.Error("NewAPNs accepted a key that is not a p8")
	}
}

func TestAPNsConfigFromEnv(t *testing.T) {
	_, p8 := testP8(t)
	file := filepath.Join(t.TempDir(), "AuthKey_ABC123DEFG.p8")
	if err := os.WriteFile(file, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	full := map[string]string{
		"BROOK_APNS_KEY_FILE": file, "BROOK_APNS_KEY_ID": "ABC123DEFG",
		"BROOK_APNS_TEAM_ID": "TEAM123456", "BROOK_APNS_TOPIC": "dev.brook.app",
	}

	if _, on, err := APNsConfigFromEnv(env(nil)); on || err != nil {
		t.Errorf("no settings: enabled %v err %v, want off", on, err)
	}
	cfg, on, err := APNsConfigFromEnv(env(full))
	if !on || err != nil || string(cfg.Key) != string(p8) || cfg.KeyID != "ABC123DEFG" || cfg.TeamID != "TEAM123456" || cfg.Topic != "dev.brook.app" {
		t.Errorf("full settings: %+v %v %v", cfg, on, err)
	}
	if _, err := NewAPNs(cfg); err != nil {
		t.Errorf("NewAPNs(from env): %v", err)
	}
	for _, c := range []struct{ key, val, want string }{
		{"BROOK_APNS_TEAM_ID", "", "BROOK_APNS_TEAM_ID"},
		{"BROOK_APNS_KEY_FILE", file + ".missing", "BROOK_APNS_KEY_FILE"},
		{"BROOK_APNS_ENDPOINT", "http://insecure.example", "BROOK_APNS_ENDPOINT"},
		{"BROOK_APNS_ENDPOINT", "staging", "BROOK_APNS_ENDPOINT"},
	} {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		m[c.key] = c.val
		if _, on, err := APNsConfigFromEnv(env(m)); on || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: enabled %v err %v, want an error naming %s", c.key, c.val, on, err, c.want)
		}
	}
	for endpoint, host := range map[string]string{"": "https://api.push.apple.com", "production": "https://api.push.apple.com",
		"sandbox": "https://api.sandbox.push.apple.com", "https://127.0.0.1:8443/": "https://127.0.0.1:8443"} {
		if got, err := apnsHost(endpoint); got != host || err != nil {
			t.Errorf("endpoint %q: %q %v, want %q", endpoint, got, err, host)
		}
	}
}

func TestClipKeepsRunesWhole(t *testing.T) {
	s := strings.Repeat("é", 10) // 20 bytes
	got := clip(s, 9)
	if len(got) > 9 || !strings.HasSuffix(got, "…") || got != "ééé…" {
		t.Errorf("clip = %q", got)
	}
	if clip("short", 9) != "short" {
		t.Error("clip changed a short string")
	}
}

// A ring for a PushKit token goes out as a VoIP push on the .voip topic.
func TestAPNsVoIPRing(t *testing.T) {
	s, srv := newTestAPNs(t)
	ring := Notification{ID: "push-v", Kind: "ring", Title: "bob is calling", Urgent: true, VoIP: true}
	if err := s.Send(context.Background(), liveToken, ring); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	if h.Get("apns-topic") != "dev.brook.app.voip" || h.Get("apns-push-type") != "voip" || h.Get("apns-priority") != "10" {
		t.Errorf("voip push: topic %q push type %q priority %q", h.Get("apns-topic"), h.Get("apns-push-type"), h.Get("apns-priority"))
	}
}
