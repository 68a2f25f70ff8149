package pushsend

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// FCMScope is the OAuth2 scope FCM HTTP v1 requires of the access token.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// fcmDefaultEndpoint is where FCM HTTP v1 lives.
const fcmDefaultEndpoint = "https://fcm.googleapis.com"

// FCMConfig is what Brook needs to send through Firebase Cloud Messaging's
// HTTP v1 API: a service account of the Firebase project (its JSON key,
// made in the Firebase console under Project settings → Service accounts).
type FCMConfig struct {
	// Credentials is the service account's JSON key file's content.
	Credentials []byte
	// Endpoint is the base URL of the send API (https://fcm.googleapis.com;
	// tests point it at a local server).
	Endpoint string
	// RootCAs, when set, replaces the system's roots for both the token
	// endpoint and the send API (tests).
	RootCAs *x509.CertPool
	// Timeout bounds one request (10 s).
	Timeout time.Duration
}

// FCMConfigFromEnv reads BROOK_FCM_CREDENTIALS (the path of the service
// account's JSON key) and BROOK_FCM_ENDPOINT (optional). FCM is enabled
// when BROOK_FCM_CREDENTIALS is set; an endpoint alone is an error rather
// than a silently disabled provider.
func FCMConfigFromEnv(getenv func(string) string) (cfg FCMConfig, enabled bool, err error) {
	file := getenv("BROOK_FCM_CREDENTIALS")
	cfg.Endpoint = getenv("BROOK_FCM_ENDPOINT")
	if file == "" {
		if cfg.Endpoint != "" {
			return FCMConfig{}, false, errors.New("pushsend: BROOK_FCM_ENDPOINT is set but BROOK_FCM_CREDENTIALS is not")
		}
		return FCMConfig{}, false, nil
	}
	if cfg.Credentials, err = os.ReadFile(file); err != nil {
		return FCMConfig{}, false, fmt.Errorf("pushsend: BROOK_FCM_CREDENTIALS: %w", err)
	}
	if _, err := parseFCMCredentials(cfg.Credentials); err != nil {
		return FCMConfig{}, false, err
	}
	if _, err := fcmBase(cfg.Endpoint); err != nil {
		return FCMConfig{}, false, err
	}
	return cfg, true, nil
}

// fcmCredentials are the fields of a service account key FCM needs.
type fcmCredentials struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

func parseFCMCredentials(raw []byte) (*fcmCredentials, error) {
	var c fcmCredentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("pushsend: FCM credentials are not a service account JSON key: %w", err)
	}
	if c.Type != "service_account" {
		return nil, fmt.Errorf("pushsend: FCM credentials have type %q, want service_account", c.Type)
	}
	var missing []string
	for _, f := range []struct{ name, val string }{
		{"project_id", c.ProjectID}, {"private_key", c.PrivateKey}, {"client_email", c.ClientEmail},
	} {
		if f.val == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("pushsend: FCM credentials lack %s", strings.Join(missing, ", "))
	}
	if c.TokenURI == "" {
		c.TokenURI = "https://oauth2.googleapis.com/token"
	}
	return &c, nil
}

func fcmBase(endpoint string) (string, error) {
	if endpoint == "" {
		return fcmDefaultEndpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("pushsend: BROOK_FCM_ENDPOINT=%q: want an https URL", endpoint)
	}
	return strings.TrimRight(endpoint, "/"), nil
}

type fcmSender struct {
	client *http.Client
	tokens oauth2.TokenSource
	url    string
}

// NewFCM returns a Sender for FCM HTTP v1. Its OAuth2 access token is made
// from the service account (a JWT signed with its key, exchanged at its
// token_uri), cached, and refreshed shortly before it expires.
func NewFCM(cfg FCMConfig) (Sender, error) {
	creds, err := parseFCMCredentials(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	base, err := fcmBase(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.RootCAs != nil {
		tr.TLSClientConfig.RootCAs = cfg.RootCAs
	}
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	jc := &jwt.Config{
		Email:        creds.ClientEmail,
		PrivateKey:   []byte(creds.PrivateKey),
		PrivateKeyID: creds.PrivateKeyID,
		Scopes:       []string{FCMScope},
		TokenURL:     creds.TokenURI,
	}
	// The token source keeps this context for every refresh: it carries
	// the client only, never a deadline.
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	return &fcmSender{
		client: client,
		tokens: jc.TokenSource(tctx),
		url:    base + "/v1/projects/" + url.PathEscape(creds.ProjectID) + "/messages:send",
	}, nil
}

// fcmMessage is the body of messages:send, as FCM HTTP v1 documents it.
type fcmMessage struct {
	Message fcmMessageBody `json:"message"`
}

type fcmMessageBody struct {
	Token        string            `json:"token"`
	Notification *fcmNotification  `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      fcmAndroid        `json:"android"`
	APNs         fcmAPNs           `json:"apns"`
	WebPush      fcmWebPush        `json:"webpush"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type fcmAndroid struct {
	CollapseKey string `json:"collapse_key,omitempty"`
	Priority    string `json:"priority"`
	TTL         string `json:"ttl"`
}

type fcmAPNs struct {
	Headers map[string]string `json:"headers"`
	Payload *fcmAPNsPayload   `json:"payload,omitempty"`
}

type fcmAPNsPayload struct {
	APS fcmAPS `json:"aps"`
}

type fcmAPS struct {
	Badge int `json:"badge"`
}

type fcmWebPush struct {
	Headers map[string]string `json:"headers"`
}

// fcmTTL is how long FCM keeps a push for an offline device when the
// Notification says nothing.
const fcmTTL = 24 * time.Hour

// FCMBody is the JSON body sent to messages:send for n to token; exported
// for the tests that play FCM.
func FCMBody(token string, n Notification) ([]byte, error) {
	ttl := n.TTL
	if ttl <= 0 {
		ttl = fcmTTL
	}
	secs := int64(ttl / time.Second)
	m := fcmMessageBody{Token: token, Data: map[string]string{}}
	for k, v := range n.Data {
		m.Data[k] = v
	}
	// The app learns what the push is about from the data too: a data
	// only push (no title) still says its kind and id.
	if n.Kind != "" {
		m.Data["kind"] = n.Kind
	}
	if n.ID != "" {
		m.Data["push_id"] = n.ID
	}
	if n.Title != "" || n.Body != "" {
		m.Notification = &fcmNotification{Title: n.Title, Body: n.Body}
	}
	m.Android = fcmAndroid{CollapseKey: n.CollapseKey, Priority: "normal", TTL: strconv.FormatInt(secs, 10) + "s"}
	apnsPriority, urgency := "5", "normal"
	if n.Urgent {
		m.Android.Priority, apnsPriority, urgency = "high", "10", "high"
	}
	m.APNs.Headers = map[string]string{
		"apns-priority":   apnsPriority,
		"apns-expiration": strconv.FormatInt(time.Now().Add(ttl).Unix(), 10),
	}
	m.WebPush.Headers = map[string]string{"TTL": strconv.FormatInt(secs, 10), "Urgency": urgency}
	if n.CollapseKey != "" {
		// apns-collapse-id is at most 64 bytes; Web Push's Topic at most
		// 32 URL-safe characters.
		m.APNs.Headers["apns-collapse-id"] = fcmCut(n.CollapseKey, 64)
		m.WebPush.Headers["Topic"] = fcmTopic(n.CollapseKey)
	}
	if n.Badge > 0 {
		m.APNs.Payload = &fcmAPNsPayload{APS: fcmAPS{Badge: n.Badge}}
	}
	return json.Marshal(fcmMessage{Message: m})
}

func fcmCut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// fcmTopic makes a Web Push Topic (URL-safe base64 alphabet, at most 32
// characters) of a collapse key.
func fcmTopic(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return fcmCut(b.String(), 32)
}

// Send posts n to token's device through FCM.
func (s *fcmSender) Send(ctx context.Context, token string, n Notification) error {
	body, err := FCMBody(token, n)
	if err != nil {
		return fmt.Errorf("pushsend: fcm: %w", err)
	}
	tok, err := s.tokens.Token()
	if err != nil {
		return fmt.Errorf("pushsend: fcm: access token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("pushsend: fcm: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	tok.SetAuthHeader(req)
	res, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("pushsend: fcm: %w", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 == 2 {
		return nil
	}
	return fcmError(res, data)
}

// fcmErrorBody is FCM's error answer: a google.rpc.Status whose details
// may hold an FcmError (errorCode) and a BadRequest (fieldViolations).
type fcmErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// fcmError maps an FCM error answer as its error codes are documented:
// UNREGISTERED (the app left the device), SENDER_ID_MISMATCH (a token of
// another project) and INVALID_ARGUMENT about the token itself mean the
// token will never work; 429 and 503 ask to come back after Retry-After.
func fcmError(res *http.Response, data []byte) error {
	var eb fcmErrorBody
	_ = json.Unmarshal(data, &eb)
	code := eb.Error.Status
	otherField, fcmDetail := false, false
	for _, d := range eb.Error.Details {
		if d.ErrorCode != "" {
			code, fcmDetail = d.ErrorCode, true
		}
		for _, v := range d.FieldViolations {
			if v.Field != "message.token" {
				otherField = true
			}
		}
	}
	err := fmt.Errorf("pushsend: fcm: HTTP %d %s: %s", res.StatusCode, code, eb.Error.Message)
	switch {
	case code == "UNREGISTERED", code == "SENDER_ID_MISMATCH":
		return fmt.Errorf("%w (%w)", ErrInvalidToken, err)
	case code == "INVALID_ARGUMENT" && fcmDetail && !otherField:
		// FCM's own INVALID_ARGUMENT with no violation of another field
		// is the token's: a payload Brook built wrong names its field.
		return fmt.Errorf("%w (%w)", ErrInvalidToken, err)
	case res.StatusCode == http.StatusTooManyRequests, res.StatusCode == http.StatusServiceUnavailable:
		return &RetryAfterError{After: fcmRetryAfter(res.Header.Get("Retry-After")), Err: err}
	}
	return err
}

// fcmRetryAfter reads Retry-After (seconds or an HTTP date); FCM asks for
// at least a minute's backoff when it sends none with a 429.
func fcmRetryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return time.Minute
}
