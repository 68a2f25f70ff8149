// Package pushsend delivers one notification to one device through its
// provider's HTTP API: FCM HTTP v1, APNs over HTTP/2 and Web Push. The push
// package decides who gets what and when; a Sender only speaks the wire
// format of one provider.
package pushsend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider names a push service; the values are the GraphQL enum's.
type Provider string

// The providers Brook speaks.
const (
	FCM     Provider = "FCM"
	APNS    Provider = "APNS"
	WebPush Provider = "WEBPUSH"
)

// Notification is what one device is sent.
type Notification struct {
	// ID is the same on every retry of one push, so that a provider that
	// deduplicates (APNs apns-id, Web Push Topic) shows it once.
	ID string
	// Kind is "message", "mention" or "ring".
	Kind  string
	Title string
	Body  string
	// Badge is the number the app shows on its icon (0: leave it).
	Badge int
	// Data is handed to the app as string pairs (channel id, message id...).
	Data map[string]string
	// CollapseKey groups pushes where a newer one replaces an older one
	// still waiting on the provider (one per channel, one per call).
	CollapseKey string
	// TTL is how long the provider keeps trying to reach an offline device.
	TTL time.Duration
	// Urgent pushes (rings) wake the device: high priority on every provider.
	Urgent bool
	// VoIP is a ring for an APNs PushKit token: sent as a VoIP push (topic
	// <bundle id>.voip) that wakes the app's call UI.
	VoIP bool
}

// Sender delivers notifications to device tokens of one provider.
type Sender interface {
	// Send delivers n to the device with the given token. It returns an
	// error wrapping ErrInvalidToken when the provider says the token will
	// never work again (the device is then removed), a *RetryAfterError
	// when the provider asks to be retried later, and other errors for
	// failures worth retrying.
	Send(ctx context.Context, token string, n Notification) error
}

// ErrInvalidToken is what a Sender's error wraps when the provider reports
// the device token unregistered or malformed.
var ErrInvalidToken = errors.New("pushsend: device token is no longer valid")

// RetryAfterError is a provider's "try again later" (HTTP 429 or 503 with
// Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("pushsend: retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }
