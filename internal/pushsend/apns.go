package pushsend

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// APNsConfig is what Brook needs to speak to Apple's push service with
// token (p8) authentication.
type APNsConfig struct {
	// Key is the PEM text of the .p8 auth key made in the Apple developer
	// account (Certificates, Identifiers & Profiles → Keys).
	Key []byte
	// KeyID is the key's 10-character id, shown next to it.
	KeyID string
	// TeamID is the developer account's team id (the JWT's issuer).
	TeamID string
	// Topic is the app's bundle id.
	Topic string
	// Endpoint is "production" (the default), "sandbox" (apps built by
	// Xcode) or the https URL of another server (tests).
	Endpoint string
	// RootCAs, when set, replaces the system's roots (tests).
	RootCAs *x509.CertPool
}

// APNsConfigFromEnv reads BROOK_APNS_KEY_FILE, BROOK_APNS_KEY_ID,
// BROOK_APNS_TEAM_ID, BROOK_APNS_TOPIC and BROOK_APNS_ENDPOINT. APNs is
// enabled when any of them is set; then the first four are required, and
// a missing one is an error rather than a silently disabled provider.
func APNsConfigFromEnv(getenv func(string) string) (cfg APNsConfig, enabled bool, err error) {
	file := getenv("BROOK_APNS_KEY_FILE")
	cfg = APNsConfig{
		KeyID:    getenv("BROOK_APNS_KEY_ID"),
		TeamID:   getenv("BROOK_APNS_TEAM_ID"),
		Topic:    getenv("BROOK_APNS_TOPIC"),
		Endpoint: getenv("BROOK_APNS_ENDPOINT"),
	}
	if file == "" && cfg.KeyID == "" && cfg.TeamID == "" && cfg.Topic == "" && cfg.Endpoint == "" {
		return APNsConfig{}, false, nil
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{"BROOK_APNS_KEY_FILE", file}, {"BROOK_APNS_KEY_ID", cfg.KeyID},
		{"BROOK_APNS_TEAM_ID", cfg.TeamID}, {"BROOK_APNS_TOPIC", cfg.Topic},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return APNsConfig{}, false, fmt.Errorf("pushsend: APNs needs %s", strings.Join(missing, ", "))
	}
	if cfg.Key, err = os.ReadFile(file); err != nil {
		return APNsConfig{}, false, fmt.Errorf("pushsend: BROOK_APNS_KEY_FILE: %w", err)
	}
	if _, err := apnsHost(cfg.Endpoint); err != nil {
		return APNsConfig{}, false, err
	}
	return cfg, true, nil
}

// apnsHost turns the Endpoint setting into the base URL of requests.
func apnsHost(endpoint string) (string, error) {
	switch endpoint {
	case "", "production":
		return apns2.HostProduction, nil
	case "sandbox", "development":
		return apns2.HostDevelopment, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("pushsend: BROOK_APNS_ENDPOINT %q: want production, sandbox or https://host[:port]", endpoint)
	}
	return "https://" + u.Host, nil
}

// apnsRetryAfter is the wait asked for after a 429 or 503: APNs sends no
// Retry-After, and a minute lets a throttled device token cool down.
const apnsRetryAfter = time.Minute

// apnsMaxText bounds title and body so the payload stays well under the
// 4 KB APNs accepts for an alert.
const apnsMaxText = 1000

// apnsIDSpace is the namespace of the name-based (v5) UUIDs sent as
// apns-id: the same Notification.ID always gives the same apns-id.
var apnsIDSpace = uuid.MustParse("5b0c7f3e-8f3a-4c57-9a8e-2f6b1d0e7a41")

type apnsSender struct {
	client *apns2.Client
	topic  string
}

// NewAPNs returns a Sender for APNs over HTTP/2. The provider token (an
// ES256 JWT) is made from the p8 key and reused for 50 minutes, since
// Apple refuses tokens older than an hour and throttles ones made more
// often than every 20 minutes.
func NewAPNs(cfg APNsConfig) (Sender, error) {
	host, err := apnsHost(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.KeyID == "" || cfg.TeamID == "" || cfg.Topic == "" {
		return nil, errors.New("pushsend: APNs needs a key id, a team id and a topic")
	}
	key, err := token.AuthKeyFromBytes(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("pushsend: APNs p8 key: %w", err)
	}
	tok := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	// Sign once now: apns2 drops a signing error later, sending no token.
	if _, err := tok.Generate(); err != nil {
		return nil, fmt.Errorf("pushsend: APNs token: %w", err)
	}
	c := apns2.NewTokenClient(tok)
	c.Host = host
	// Our own HTTP/2 transport, so tests run the production code path with
	// only the roots changed; pings find dead connections as apns2's do.
	c.HTTPClient = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http2.Transport{
			TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			ReadIdleTimeout: 15 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
	return &apnsSender{client: c, topic: cfg.Topic}, nil
}

// ValidAPNsToken reports whether token looks like an APNs device token:
// hexadecimal (64 digits today; Apple says the length may grow).
func ValidAPNsToken(token string) bool {
	if len(token) < 32 || len(token) > 200 || len(token)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(token)
	return err == nil
}

// Send posts n to /3/device/<token>.
func (s *apnsSender) Send(ctx context.Context, tok string, n Notification) error {
	if !ValidAPNsToken(tok) {
		return fmt.Errorf("pushsend: APNs token is not hexadecimal: %w", ErrInvalidToken)
	}
	p := payload.NewPayload().
		AlertTitle(clip(n.Title, apnsMaxText)).
		AlertBody(clip(n.Body, apnsMaxText)).
		Sound("default")
	if n.Badge > 0 {
		p.Badge(n.Badge)
	}
	for k, v := range n.Data {
		if k != "aps" { // the one key Apple reserves
			p.Custom(k, v)
		}
	}
	note := &apns2.Notification{
		DeviceToken: strings.ToLower(tok),
		Topic:       s.topic,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityLow,
		Expiration:  time.Now().Add(ttlOrDefault(n.TTL)),
		CollapseID:  apnsCollapseID(n.CollapseKey),
		Payload:     p,
	}
	if n.ID != "" {
		note.ApnsID = uuid.NewSHA1(apnsIDSpace, []byte(n.ID)).String()
	}
	if n.Urgent {
		note.Priority = apns2.PriorityHigh
	}
	if n.VoIP {
		// PushKit: Apple wants the .voip topic and immediate delivery.
		note.Topic, note.PushType, note.Priority = s.topic+".voip", apns2.PushTypeVOIP, apns2.PriorityHigh
	}
	res, err := s.client.PushWithContext(ctx, note)
	if err != nil {
		return fmt.Errorf("pushsend: APNs: %w", err)
	}
	return apnsResult(s.client.Token, res)
}

// apnsResult maps Apple's status and reason onto the Sender contract.
func apnsResult(tok *token.Token, res *apns2.Response) error {
	err := fmt.Errorf("pushsend: APNs %d %s", res.StatusCode, res.Reason)
	switch {
	case res.StatusCode == http.StatusOK:
		return nil
	case res.StatusCode == http.StatusGone,
		res.StatusCode == http.StatusBadRequest && res.Reason == apns2.ReasonBadDeviceToken:
		return fmt.Errorf("%w: %w", err, ErrInvalidToken)
	case res.StatusCode == http.StatusTooManyRequests, res.StatusCode == http.StatusServiceUnavailable:
		return &RetryAfterError{After: apnsRetryAfter, Err: err}
	case res.StatusCode == http.StatusForbidden &&
		(res.Reason == apns2.ReasonExpiredProviderToken || res.Reason == apns2.ReasonInvalidProviderToken):
		// Apple no longer takes our token (a clock jump, a revoked key):
		// sign a fresh one on the retry.
		tok.Lock()
		tok.IssuedAt = 0
		tok.Unlock()
	}
	return err
}

// apnsCollapseID keeps a collapse key within Apple's 64 bytes: a longer
// one is replaced by its SHA-256 in hex, still one id per key.
func apnsCollapseID(key string) string {
	if len(key) <= 64 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// defaultTTL is how long a provider keeps a push for an offline device
// when the Notification says nothing: news of a message older than a day
// is not worth waking a phone for.
const defaultTTL = 24 * time.Hour

func ttlOrDefault(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return defaultTTL
	}
	return ttl
}

// clip cuts s to at most n bytes on a rune boundary, with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
