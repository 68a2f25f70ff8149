package pushsend

import (
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
)

// WebPushConfig holds the server's VAPID identity (RFC 8292).
type WebPushConfig struct {
	// PublicKey is the uncompressed P-256 public key, base64url: what the
	// web app passes to pushManager.subscribe as applicationServerKey.
	PublicKey string
	// PrivateKey is the matching 32-byte private scalar, base64url.
	PrivateKey string
	// Subject is a contact for the push service's operators: a mailto: or
	// https: URL.
	Subject string
	// RootCAs, when set, replaces the system's roots (tests).
	RootCAs *x509.CertPool
	// AllowPrivateEndpoints lets subscription endpoints resolve to
	// loopback and private addresses. Off in production: the endpoint is
	// chosen by a client, and Brook must not be made to POST into its own
	// network. Tests turn it on for their local server.
	AllowPrivateEndpoints bool
}

// WebPushConfigFromEnv reads BROOK_VAPID_PUBLIC_KEY, BROOK_VAPID_PRIVATE_KEY
// and BROOK_VAPID_SUBJECT. Web Push is enabled when any is set; then all
// three are required and checked.
func WebPushConfigFromEnv(getenv func(string) string) (WebPushConfig, bool, error) {
	cfg := WebPushConfig{
		PublicKey:  getenv("BROOK_VAPID_PUBLIC_KEY"),
		PrivateKey: getenv("BROOK_VAPID_PRIVATE_KEY"),
		Subject:    getenv("BROOK_VAPID_SUBJECT"),
	}
	if cfg.PublicKey == "" && cfg.PrivateKey == "" && cfg.Subject == "" {
		return WebPushConfig{}, false, nil
	}
	if err := cfg.check(); err != nil {
		return WebPushConfig{}, false, err
	}
	return cfg, true, nil
}

// check verifies that the keys are a P-256 pair and the subject a contact.
func (c WebPushConfig) check() error {
	if !strings.HasPrefix(c.Subject, "mailto:") && !strings.HasPrefix(c.Subject, "https:") {
		return errors.New("pushsend: BROOK_VAPID_SUBJECT must be a mailto: or https: URL")
	}
	for _, v := range []struct{ name, val string }{
		{"BROOK_VAPID_PUBLIC_KEY", c.PublicKey}, {"BROOK_VAPID_PRIVATE_KEY", c.PrivateKey},
	} {
		if v.val == "" {
			return fmt.Errorf("pushsend: Web Push needs %s", v.name)
		}
	}
	// base64url only: webpush-go reads the keys in no other alphabet.
	d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.PrivateKey, "="))
	if err != nil {
		return fmt.Errorf("pushsend: BROOK_VAPID_PRIVATE_KEY: %w", err)
	}
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return fmt.Errorf("pushsend: BROOK_VAPID_PRIVATE_KEY: %w", err)
	}
	pub, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.PublicKey, "="))
	if err != nil {
		return fmt.Errorf("pushsend: BROOK_VAPID_PUBLIC_KEY: %w", err)
	}
	if string(priv.PublicKey().Bytes()) != string(pub) {
		return errors.New("pushsend: BROOK_VAPID_PUBLIC_KEY is not the private key's public key")
	}
	return nil
}

// GenerateVAPIDKeys makes a new VAPID key pair, base64url, for
// BROOK_VAPID_PUBLIC_KEY and BROOK_VAPID_PRIVATE_KEY.
func GenerateVAPIDKeys() (publicKey, privateKey string, err error) {
	privateKey, publicKey, err = webpush.GenerateVAPIDKeys()
	return publicKey, privateKey, err
}

// WebPushSubscription is the device token of a browser: the JSON of its
// PushSubscription (pushSubscription.toJSON()).
type WebPushSubscription struct {
	// Endpoint is the https URL of the browser's push service that
	// messages are POSTed to.
	Endpoint string `json:"endpoint"`
	Keys     struct {
		// P256dh is the browser's ECDH public key, base64url.
		P256dh string `json:"p256dh"`
		// Auth is the 16-byte authentication secret, base64url.
		Auth string `json:"auth"`
	} `json:"keys"`
}

// maxWebPushToken bounds a subscription's JSON (endpoints are a few
// hundred bytes).
const maxWebPushToken = 4096

// ParseWebPushSubscription checks that token is a usable PushSubscription
// JSON: an https endpoint, a P-256 public key and a 16-byte auth secret.
// Its errors wrap ErrInvalidToken.
func ParseWebPushSubscription(token string) (WebPushSubscription, error) {
	var s WebPushSubscription
	bad := func(why string) (WebPushSubscription, error) {
		return WebPushSubscription{}, fmt.Errorf("pushsend: web push subscription %s: %w", why, ErrInvalidToken)
	}
	if len(token) > maxWebPushToken {
		return bad("is too long")
	}
	if err := json.Unmarshal([]byte(token), &s); err != nil {
		return bad("is not PushSubscription JSON")
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return bad("endpoint is not an https URL")
	}
	p, err := decodeB64(s.Keys.P256dh)
	if err != nil {
		return bad("keys.p256dh is not base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(p); err != nil {
		return bad("keys.p256dh is not a P-256 public key")
	}
	if a, err := decodeB64(s.Keys.Auth); err != nil || len(a) != 16 {
		return bad("keys.auth is not a 16-byte secret")
	}
	return s, nil
}

// decodeB64 reads base64url with or without padding, and the standard
// alphabet some older browsers and libraries used.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// WebPushPayload is the JSON a service worker gets in its push event
// (event.data.json()).
type WebPushPayload struct {
	ID    string            `json:"id"`
	Kind  string            `json:"kind"`
	Title string            `json:"title"`
	Body  string            `json:"body"`
	Badge int               `json:"badge,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

// webPushMaxText bounds title and body: the encrypted record is padded
// to 4096 bytes, the most push services accept.
const webPushMaxText = 1000

// webPushRetryAfter is the wait after a 429 without Retry-After.
const webPushRetryAfter = time.Minute

type webPushSender struct {
	cfg    WebPushConfig
	client *http.Client
}

// NewWebPush returns a Sender that encrypts each notification for the
// browser (RFC 8291, aes128gcm) and signs the request with VAPID (RFC
// 8292), through webpush-go.
func NewWebPush(cfg WebPushConfig) (Sender, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !cfg.AllowPrivateEndpoints {
		dialer.Control = refusePrivate
	}
	return &webPushSender{cfg: cfg, client: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		// A push service answers; it never redirects. Following one would
		// let an endpoint steer the POST elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// refusePrivate runs on the resolved address of every connection.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("pushsend: web push endpoint resolves to %s, a private address", ip)
	}
	return nil
}

// Send encrypts n for the subscription in token and posts it.
func (s *webPushSender) Send(ctx context.Context, token string, n Notification) error {
	sub, err := ParseWebPushSubscription(token)
	if err != nil {
		return err
	}
	body, err := json.Marshal(WebPushPayload{
		ID: n.ID, Kind: n.Kind, Badge: n.Badge, Data: n.Data,
		Title: clip(n.Title, webPushMaxText), Body: clip(n.Body, webPushMaxText),
	})
	if err != nil {
		return fmt.Errorf("pushsend: web push payload: %w", err)
	}
	urgency := webpush.UrgencyNormal
	if n.Urgent {
		urgency = webpush.UrgencyHigh
	}
	topic := n.CollapseKey
	if topic == "" {
		topic = n.ID
	}
	res, err := webpush.SendNotificationWithContext(ctx, body, &webpush.Subscription{
		Endpoint: sub.Endpoint,
		Keys:     webpush.Keys{P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth},
	}, &webpush.Options{
		HTTPClient: s.client,
		// webpush-go prefixes "mailto:" to any subject not starting with
		// "https:", so it must get the bare address.
		Subscriber:      strings.TrimPrefix(s.cfg.Subject, "mailto:"),
		VAPIDPublicKey:  s.cfg.PublicKey,
		VAPIDPrivateKey: s.cfg.PrivateKey,
		TTL:             int(ttlOrDefault(n.TTL) / time.Second),
		Urgency:         urgency,
		Topic:           webPushTopic(topic),
	})
	if err != nil {
		return fmt.Errorf("pushsend: web push: %w", err)
	}
	defer res.Body.Close()
	reason, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	return webPushResult(res, strings.TrimSpace(string(reason)))
}

// webPushResult maps the push service's answer (RFC 8030 §5, §8.4).
func webPushResult(res *http.Response, reason string) error {
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	err := fmt.Errorf("pushsend: web push %s %s", res.Status, reason)
	switch res.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: %w", err, ErrInvalidToken)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		after := retryAfter(res.Header.Get("Retry-After"), time.Now())
		if after == 0 {
			if res.StatusCode == http.StatusServiceUnavailable {
				return err
			}
			after = webPushRetryAfter
		}
		return &RetryAfterError{After: after, Err: err}
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// webPushTopic turns a collapse key into a Topic header: RFC 8030 allows
// at most 32 characters of the base64url alphabet, so the key is hashed.
func webPushTopic(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}
