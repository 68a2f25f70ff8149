package pushsend

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// browser is the receiving side of a push subscription, made in the test:
// its ECDH key pair and auth secret, as a browser keeps them.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) browser {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return browser{key: key, auth: auth}
}

// subscription is what the browser's pushSubscription.toJSON() gives.
func (b browser) subscription(endpoint string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"endpoint":%q,"expirationTime":null,"keys":{"p256dh":%q,"auth":%q}}`,
		endpoint, enc(b.key.PublicKey().Bytes()), enc(b.auth))
}

// decrypt undoes RFC 8291 §3.4 over the aes128gcm content coding of RFC
// 8188 §2, written here from the RFCs rather than taken from the sender's
// library.
func (b browser) decrypt(body []byte) ([]byte, error) {
	// Header: salt(16) rs(4) idlen(1) keyid(idlen) = the server's
	// ephemeral public key.
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("keyid of %d bytes, want a 65-byte P-256 key", idlen)
	}
	asPublic, records := body[21:21+idlen], body[21+idlen:]
	if uint32(len(records)) > rs || rs < 18 {
		return nil, fmt.Errorf("%d bytes of records with rs %d: want one record", len(records), rs)
	}
	asKey, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, err
	}
	ecdhSecret, err := b.key.ECDH(asKey)
	if err != nil {
		return nil, err
	}
	// IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
	keyInfo := append(append([]byte("WebPush: info\x00"), b.key.PublicKey().Bytes()...), asPublic...)
	ikm, err := hkdf.Key(sha256.New, ecdhSecret, b.auth, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, records, nil)
	if err != nil {
		return nil, fmt.Errorf("record does not decrypt: %w", err)
	}
	// The last record ends in 0x02 then zero padding (RFC 8188 §2).
	end := bytes.LastIndexFunc(plain, func(r rune) bool { return r != 0 })
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:end], nil
}

// pushRequest is what the fake push service saw of one request.
type pushRequest struct {
	path      string
	header    http.Header
	claims    jwt.MapClaims
	k         string
	jwtErr    error
	plaintext []byte
	decErr    error
}

// pushServer is a local TLS push service (RFC 8030) that checks VAPID (RFC
// 8292) and decrypts each message for the browser, keyed on the path:
// /push/dead answers 410, /push/gone 404, /push/busy 429.
type pushServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []pushRequest
}

var vapidHeader = regexp.MustCompile(`^vapid t=([A-Za-z0-9_\-.]+), ?k=([A-Za-z0-9_\-]+)$`)

func newPushServer(t *testing.T, b browser) *pushServer {
	s := &pushServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := pushRequest{path: r.URL.Path, header: r.Header.Clone()}
		m := vapidHeader.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil || r.Method != http.MethodPost {
			req.jwtErr = fmt.Errorf("%s with Authorization %q", r.Method, r.Header.Get("Authorization"))
		} else {
			req.k = m[2]
			tok, err := jwt.Parse(m[1], func(*jwt.Token) (any, error) {
				raw, err := base64.RawURLEncoding.DecodeString(m[2])
				if err != nil {
					return nil, err
				}
				return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
			}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired())
			req.jwtErr = err
			if tok != nil {
				req.claims, _ = tok.Claims.(jwt.MapClaims)
			}
		}
		req.plaintext, req.decErr = b.decrypt(body)
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		switch {
		case req.jwtErr != nil:
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/push/dead":
			http.Error(w, "subscription expired", http.StatusGone)
		case r.URL.Path == "/push/gone":
			http.Error(w, "no such subscription", http.StatusNotFound)
		case r.URL.Path == "/push/busy":
			w.Header().Set("Retry-After", "120")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			w.Header().Set("Location", s.URL+"/message/1")
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pushServer) requests() []pushRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pushRequest(nil), s.reqs...)
}

func newTestWebPush(t *testing.T, srv *pushServer, allowPrivate bool) (Sender, WebPushConfig) {
	pub, priv, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := WebPushConfig{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@brook.example",
		RootCAs: pool, AllowPrivateEndpoints: allowPrivate}
	s, err := NewWebPush(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

func TestWebPushEncryptsAndSignsAsTheRFCsSay(t *testing.T) {
	b := newBrowser(t)
	srv := newPushServer(t, b)
	s, cfg := newTestWebPush(t, srv, true)
	ctx := context.Background()
	start := time.Now()

	n := Notification{ID: "push-1", Kind: "message", Title: "ann in #général", Body: "lunch? 🍜", Badge: 2,
		Data: map[string]string{"channel": "ch-1"}, CollapseKey: "channel:ch-1", TTL: 90 * time.Minute}
	if err := s.Send(ctx, b.subscription(srv.URL+"/push/abc"), n); err != nil {
		t.Fatal(err)
	}
	ring := Notification{ID: "push-2", Kind: "ring", Title: "bob is calling", TTL: 30 * time.Second, Urgent: true}
	if err := s.Send(ctx, b.subscription(srv.URL+"/push/abc"), ring); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("push service saw %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.jwtErr != nil {
			t.Fatalf("request %d: VAPID token does not verify with k: %v", i, r.jwtErr)
		}
		if r.k != cfg.PublicKey {
			t.Errorf("request %d: k=%s, want the VAPID public key %s", i, r.k, cfg.PublicKey)
		}
		if r.claims["aud"] != srv.URL || r.claims["sub"] != "mailto:ops@brook.example" {
			t.Errorf("request %d: aud %v sub %v, want %s and the configured subject", i, r.claims["aud"], r.claims["sub"], srv.URL)
		}
		exp, _ := r.claims["exp"].(float64)
		if int64(exp) <= end.Unix() || int64(exp) > start.Add(24*time.Hour).Unix() {
			t.Errorf("request %d: exp %v, want within 24 hours", i, exp)
		}
		if r.path != "/push/abc" || r.header.Get("Content-Encoding") != "aes128gcm" {
			t.Errorf("request %d: path %s Content-Encoding %q", i, r.path, r.header.Get("Content-Encoding"))
		}
		if r.decErr != nil {
			t.Fatalf("request %d: %v", i, r.decErr)
		}
	}

	msg, rng := reqs[0], reqs[1]
	if msg.header.Get("TTL") != "5400" || rng.header.Get("TTL") != "30" {
		t.Errorf("TTL %q and %q, want 5400 and 30", msg.header.Get("TTL"), rng.header.Get("TTL"))
	}
	if msg.header.Get("Urgency") != "normal" || rng.header.Get("Urgency") != "high" {
		t.Errorf("Urgency %q and %q, want normal and high", msg.header.Get("Urgency"), rng.header.Get("Urgency"))
	}
	topic := regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	if !topic.MatchString(msg.header.Get("Topic")) || !topic.MatchString(rng.header.Get("Topic")) ||
		msg.header.Get("Topic") == rng.header.Get("Topic") || msg.header.Get("Topic") != webPushTopic("channel:ch-1") {
		t.Errorf("Topic %q and %q: want ≤ 32 base64url characters, one per collapse key", msg.header.Get("Topic"), rng.header.Get("Topic"))
	}

	var got map[string]any
	if err := json.Unmarshal(msg.plaintext, &got); err != nil {
		t.Fatalf("decrypted %q: %v", msg.plaintext, err)
	}
	want := map[string]any{"id": "push-1", "kind": "message", "title": "ann in #général", "body": "lunch? 🍜",
		"badge": 2.0, "data": map[string]any{"channel": "ch-1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decrypted payload\n got %v\nwant %v", got, want)
	}
	if string(rng.plaintext) != `{"id":"push-2","kind":"ring","title":"bob is calling","body":""}` {
		t.Errorf("decrypted ring payload %s", rng.plaintext)
	}
}

func TestWebPushErrorsFollowTheSenderContract(t *testing.T) {
	b := newBrowser(t)
	srv := newPushServer(t, b)
	s, _ := newTestWebPush(t, srv, true)
	ctx := context.Background()
	n := Notification{ID: "p", Title: "t"}

	for _, path := range []string{"/push/dead", "/push/gone"} {
		if err := s.Send(ctx, b.subscription(srv.URL+path), n); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", path, err)
		}
	}
	var ra *RetryAfterError
	if err := s.Send(ctx, b.subscription(srv.URL+"/push/busy"), n); !errors.As(err, &ra) || ra.After != 120*time.Second {
		t.Errorf("429: %v, want a RetryAfterError of 2m", err)
	}
	// A token that is no subscription never reaches the push service.
	if err := s.Send(ctx, `{"endpoint":"`+srv.URL+`"}`, n); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("subscription without keys: %v, want ErrInvalidToken", err)
	}
	if got := len(srv.requests()); got != 3 {
		t.Errorf("push service saw %d requests, want 3", got)
	}
}

func TestWebPushRefusesPrivateEndpoints(t *testing.T) {
	// A client picks the endpoint; by default Brook will not POST to its
	// own network (the test server listens on loopback).
	b := newBrowser(t)
	srv := newPushServer(t, b)
	s, _ := newTestWebPush(t, srv, false)
	err := s.Send(context.Background(), b.subscription(srv.URL+"/push/abc"), Notification{ID: "p"})
	if err == nil || errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "private address") {
		t.Errorf("got %v, want a refused private address", err)
	}
	if got := len(srv.requests()); got != 0 {
		t.Errorf("push service saw %d requests, want 0", got)
	}
}

func TestParseWebPushSubscription(t *testing.T) {
	b := newBrowser(t)
	enc := base64.RawURLEncoding.EncodeToString
	good := b.subscription("https://fcm.googleapis.com/fcm/send/abc:def")
	s, err := ParseWebPushSubscription(good)
	if err != nil || s.Endpoint != "https://fcm.googleapis.com/fcm/send/abc:def" || s.Keys.Auth != enc(b.auth) {
		t.Fatalf("valid subscription: %+v %v", s, err)
	}
	// Padded standard base64, as some older browsers sent keys, is fine too.
	std := base64.StdEncoding.EncodeToString
	padded := fmt.Sprintf(`{"endpoint":"https://push.example/x","keys":{"p256dh":%q,"auth":%q}}`,
		std(b.key.PublicKey().Bytes()), std(b.auth))
	if _, err := ParseWebPushSubscription(padded); err != nil {
		t.Errorf("padded standard base64: %v", err)
	}
	p256dh, auth := enc(b.key.PublicKey().Bytes()), enc(b.auth)
	offCurve := append([]byte{4}, bytes.Repeat([]byte{1}, 64)...)
	for name, tok := range map[string]string{
		"not JSON":       "fcm-token-abc",
		"http endpoint":  fmt.Sprintf(`{"endpoint":"http://push.example/x","keys":{"p256dh":%q,"auth":%q}}`, p256dh, auth),
		"no endpoint":    fmt.Sprintf(`{"keys":{"p256dh":%q,"auth":%q}}`, p256dh, auth),
		"user in URL":    fmt.Sprintf(`{"endpoint":"https://u:p@push.example/x","keys":{"p256dh":%q,"auth":%q}}`, p256dh, auth),
		"short auth":     fmt.Sprintf(`{"endpoint":"https://push.example/x","keys":{"p256dh":%q,"auth":%q}}`, p256dh, enc(b.auth[:8])),
		"point off P256": fmt.Sprintf(`{"endpoint":"https://push.example/x","keys":{"p256dh":%q,"auth":%q}}`, enc(offCurve), auth),
		"no keys":        `{"endpoint":"https://push.example/x"}`,
		"too long":       fmt.Sprintf(`{"endpoint":"https://push.example/%s","keys":{"p256dh":%q,"auth":%q}}`, strings.Repeat("x", 5000), p256dh, auth),
	} {
		if _, err := ParseWebPushSubscription(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestWebPushConfigFromEnv(t *testing.T) {
	pub, priv, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := GenerateVAPIDKeys()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	if _, on, err := WebPushConfigFromEnv(env(nil)); on || err != nil {
		t.Errorf("no settings: enabled %v err %v, want off", on, err)
	}
	full := map[string]string{"BROOK_VAPID_PUBLIC_KEY": pub, "BROOK_VAPID_PRIVATE_KEY": priv, "BROOK_VAPID_SUBJECT": "https://brook.example/contact"}
	cfg, on, err := WebPushConfigFromEnv(env(full))
	if !on || err != nil || cfg.PublicKey != pub || cfg.PrivateKey != priv || cfg.Subject != full["BROOK_VAPID_SUBJECT"] {
		t.Errorf("full settings: %+v %v %v", cfg, on, err)
	}
	for _, c := range []struct{ key, val, want string }{
		{"BROOK_VAPID_PRIVATE_KEY", "", "BROOK_VAPID_PRIVATE_KEY"},
		{"BROOK_VAPID_PUBLIC_KEY", otherPub, "BROOK_VAPID_PUBLIC_KEY"},
		{"BROOK_VAPID_PRIVATE_KEY", "not+base64url/", "BROOK_VAPID_PRIVATE_KEY"},
		{"BROOK_VAPID_SUBJECT", "ops@brook.example", "BROOK_VAPID_SUBJECT"},
	} {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		m[c.key] = c.val
		if _, on, err := WebPushConfigFromEnv(env(m)); on || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: enabled %v err %v, want an error naming %s", c.key, c.val, on, err, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "30": 30 * time.Second, "soon": 0, "-4": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
}
