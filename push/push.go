// Package push tells users with no open connection about new messages,
// mentions and rings, through the push services of their devices (FCM,
// APNs, Web Push; see internal/pushsend).
//
// The products decide who may hear of an event (chat's mutes, blocks and
// shadow bans; calls' rings) and hand the recipients over with one call in
// the transaction of their outbox job: the pushes become rows of
// push_pending and an outbox job, as durable as the event. The job waits a
// moment (Options.Delay) so that several messages make one push with a
// count, skips users who came online meanwhile, sends to every device of
// the others, removes the tokens a provider reports invalid, and records
// per device what it was sent, so a retried job pushes no device twice.
package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/pushsend"
	"github.com/brookhq/brook/store"
)

// Options tune a Service. Zero values take the defaults.
type Options struct {
	Store *store.Store
	State *ephemeral.State
	// Senders are the configured providers; with none, push is off:
	// devices can still be registered, and nothing is queued or sent.
	Senders map[pushsend.Provider]pushsend.Sender
	Logger  *slog.Logger
	// Registerer receives the push counters; nil registers none.
	Registerer prometheus.Registerer
	// MaxDevices is how many devices a user keeps (25); registering one
	// more removes the one registered longest ago.
	MaxDevices int
	// Delay is how long a new message's push waits for more messages to
	// join it (1 s). Rings do not wait.
	Delay time.Duration
	// MaxAge is how old a pending push may grow while its sends fail
	// before it is dropped unsent (1 h): old news wakes nobody.
	MaxAge time.Duration
	// Concurrency is how many sends one job makes at once (8).
	Concurrency int
	// SendTimeout bounds one send (10 s).
	SendTimeout time.Duration
}

// Service registers devices and pushes to them.
type Service struct {
	store *store.Store
	state *ephemeral.State
	log   *slog.Logger
	opts  Options
	sent  *prometheus.CounterVec
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.MaxDevices <= 0 {
		opts.MaxDevices = 25
	}
	if opts.Delay <= 0 {
		opts.Delay = time.Second
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = time.Hour
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: opts.Store, state: opts.State, log: opts.Logger, opts: opts,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brook_push_sends_total",
			Help: "Pushes sent to devices, by provider and outcome (sent, invalid_token, failed, retry_after)."},
			[]string{"provider", "outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.sent)
	}
	return s
}

// Enabled reports whether some provider is configured. A nil Service is
// off.
func (s *Service) Enabled() bool { return s != nil && len(s.opts.Senders) > 0 }

// Limits of device input.
const (
	maxTokenLen = 4096
	maxNameLen  = 100
)

var fcmToken = regexp.MustCompile(`^[A-Za-z0-9_:.\-]+$`)

// DeviceInput is what addDevice registers.
type DeviceInput struct {
	Provider store.PushProvider
	Token    string
	Name     *string
	VoIP     bool
}

// AddDevice registers a device of the caller. Registering a token again
// updates it (and moves it to the caller if another user had it).
func (s *Service) AddDevice(ctx context.Context, in DeviceInput) (*store.PushDevice, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	token, err := checkToken(in.Provider, in.Token)
	if err != nil {
		return nil, err
	}
	if in.Name != nil && (utf8.RuneCountInString(*in.Name) > maxNameLen || !utf8.ValidString(*in.Name)) {
		return nil, store.Invalid("name", "at most %d characters", maxNameLen)
	}
	if in.VoIP && in.Provider != store.PushAPNS {
		return nil, store.Invalid("voip", "only APNS tokens (PushKit) are VoIP tokens")
	}
	d, dropped, err := s.store.AddPushDevice(ctx, store.PushDevice{UserID: me.UserID, Provider: in.Provider, Token: token,
		Name: in.Name, VoIP: in.VoIP}, s.opts.MaxDevices)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		s.log.Info("push: device limit reached; oldest devices removed", "user", me.UserID, "removed", len(dropped))
	}
	return d, nil
}

// checkToken validates a token in its provider's format and returns it as
// stored (an APNs token in lower case, a Web Push subscription as compact
// JSON of the fields Brook uses).
func checkToken(p store.PushProvider, token string) (string, error) {
	if token == "" {
		return "", store.Invalid("token", "must not be empty")
	}
	if len(token) > maxTokenLen {
		return "", store.Invalid("token", "at most %d bytes, got %d", maxTokenLen, len(token))
	}
	switch p {
	case store.PushFCM:
		if !fcmToken.MatchString(token) {
			return "", store.Invalid("token", "an FCM registration token has only letters, digits and _ : . -")
		}
		return token, nil
	case store.PushAPNS:
		if !pushsend.ValidAPNsToken(token) {
			return "", store.Invalid("token", "an APNs device token is hexadecimal, 32 to 200 digits (the bytes of didRegisterForRemoteNotificationsWithDeviceToken)")
		}
		return strings.ToLower(token), nil
	case store.PushWebPush:
		return checkSubscription(token)
	}
	return "", store.Invalid("provider", "unknown push provider %q", p)
}

// checkSubscription validates a Web Push subscription's JSON with the
// rule the Web Push sender itself applies, and returns its compact form.
func checkSubscription(token string) (string, error) {
	sub, err := pushsend.ParseWebPushSubscription(token)
	if err != nil {
		return "", store.Invalid("token", "a WEBPUSH token is the browser's PushSubscription JSON ({endpoint, keys: {p256dh, auth}}): %s",
			strings.TrimPrefix(strings.TrimSuffix(err.Error(), ": "+pushsend.ErrInvalidToken.Error()), "pushsend: web push "))
	}
	out, err := json.Marshal(sub)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// RemoveDevice removes the caller's device with the given id or token
// (give one). It reports whether there was one.
func (s *Service) RemoveDevice(ctx context.Context, id, token *string) (bool, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	if (id == nil) == (token == nil) {
		return false, store.Invalid("id", "give the device's id or its token, not both")
	}
	var uid *uuid.UUID
	tok := ""
	if id != nil {
		u, err := uuid.Parse(*id)
		if err != nil {
			return false, store.Invalid("id", "not a device id")
		}
		uid = &u
	} else {
		if len(*token) > maxTokenLen {
			return false, store.Invalid("token", "at most %d bytes", maxTokenLen)
		}
		tok = *token
		if t, err := checkSubscription(tok); err == nil {
			tok = t // a subscription is stored in its compact form
		}
	}
	return s.store.RemovePushDevice(ctx, me.UserID, uid, tok)
}

// Devices lists a user's devices: the caller's own, or anyone's for an
// admin.
func (s *Service) Devices(ctx context.Context, user string) ([]*store.PushDevice, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if me.UserID != user && !me.IsAdmin() {
		return nil, auth.Forbidden("only %q (or an admin) may list its devices", user)
	}
	return s.store.PushDevices(ctx, []string{user})
}
