package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/pushsend"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Config is everything Brook reads from its environment.
type Config struct {
	Addr            string
	DatabaseURL     string
	RedisURL        string
	RedisPrefix     string
	DataDir         string
	WebDir          string
	JWTSecret       string
	Dev             bool
	Workers         int
	AllowedOrigins  string
	Introspection   bool
	Playground      bool
	ComplexityLimit int
	DepthLimit      int
	TokenLimit      int
	Limits          api.Limits
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	// SFUNodes are the SFU media servers for calls (SFU_NODES).
	SFUNodes []sfu.Node
	// CallParticipantTimeout is CALL_PARTICIPANT_TIMEOUT.
	CallParticipantTimeout time.Duration
	// CallRingTimeout is CALL_RING_TIMEOUT: how long a ring rings before
	// it is missed.
	CallRingTimeout time.Duration
	// CallSFUTokenTTL is CALL_SFU_TOKEN_TTL: how long a participant's SFU
	// token is valid.
	CallSFUTokenTTL time.Duration
	// CallEventRate is BROOK_RATE_CALL_EVENT: sendCallEvent per
	// participant (off: a negative Rate, no limit).
	CallEventRate ephemeral.Rate
	// WebhookTimeout, WebhookMaxAttempts and WebhookConcurrency are
	// BROOK_WEBHOOK_TIMEOUT, BROOK_WEBHOOK_MAX_ATTEMPTS and
	// BROOK_WEBHOOK_CONCURRENCY (docs/webhooks.md).
	WebhookTimeout                         time.Duration
	WebhookMaxAttempts, WebhookConcurrency int
	// WebhookRetention is BROOK_WEBHOOK_RETENTION: how long delivered
	// webhook deliveries are kept.
	WebhookRetention time.Duration
	// BeforeSend is BROOK_BEFORE_SEND_URL, _SECRET, _TIMEOUT and _FAIL
	// (open or closed): the synchronous before-send hook.
	BeforeSend webhooks.BeforeSendOptions
	// PushSenders are the configured push providers (BROOK_FCM_*, ...;
	// docs/push.md); none: push is off.
	PushSenders map[pushsend.Provider]pushsend.Sender
	// Previews is BROOK_PREVIEWS (on unless false) and BROOK_PREVIEW_*:
	// link previews of URLs in messages and activities; nil when off.
	Previews *linkpreview.ServiceOptions
	// FeedPullThreshold is FEED_PULL_THRESHOLD: actors with more followers
	// are merged into timelines at read time instead of fanned out.
	FeedPullThreshold int
	// FeedCommentDepth is FEED_COMMENT_DEPTH: how deep comment replies nest.
	FeedCommentDepth int
	// ChatPushMemberLimit is CHAT_PUSH_MEMBER_LIMIT.
	ChatPushMemberLimit int
	// ReplicaURLs is DATABASE_REPLICA_URLS (comma-separated): read replicas
	// for reads that may lag. ReplicaMaxLag is BROOK_REPLICA_MAX_LAG.
	ReplicaURLs   []string
	ReplicaMaxLag time.Duration
	// RedisTimeout is REDIS_TIMEOUT: how long a request waits for one Redis
	// command before it goes on without Redis (see internal/redisguard).
	RedisTimeout time.Duration
	// HeapFloor is BROOK_GC_HEAP_FLOOR_MB in bytes: the garbage collector
	// does not run before the heap reaches it (see gc.go). 0 when off, and
	// when GOGC is set, which then rules alone.
	HeapFloor uint64
	// HTTP are the API listener's timeouts and connection caps.
	HTTP HTTPLimits
	// Uploads is where uploaded files are kept (config_uploads.go).
	Uploads UploadsConfig
	// Serve is false for a worker-only process.
	Serve bool
}

// HTTPLimits keep slow and idle clients from holding the server's
// connections (see listen.go).
type HTTPLimits struct {
	// ReadTimeout bounds reading one request, body included
	// (BROOK_READ_TIMEOUT): a client trickling its body is cut after it.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from its headers to its answer's end
	// (BROOK_WRITE_TIMEOUT).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long
	// (BROOK_IDLE_TIMEOUT).
	IdleTimeout time.Duration
	// MaxConnections caps the open connections, WebSockets included
	// (BROOK_MAX_CONNECTIONS; -1: nine tenths of the file limit; 0: none).
	MaxConnections int
	// MaxConnectionsPerAddress caps one client address's open connections
	// (BROOK_MAX_CONNECTIONS_PER_ADDRESS; 0: none). Behind a load balancer
	// every client has its address: turn it off there and cap at the
	// balancer.
	MaxConnectionsPerAddress int
}

// sendRateVars names the environment variable of each sending mutation's budget.
var sendRateVars = map[string]struct{ field, def string }{
	"BROOK_RATE_ADD_ACTIVITY": {"addActivity", "10/s:30"},
	"BROOK_RATE_SEND_MESSAGE": {"sendMessage", "20/s:40"},
	"BROOK_RATE_SEND_SIGNAL":  {"sendSignal", "200/s:500"},
	"BROOK_RATE_TYPING":       {"sendTypingEvent", "5/s:10"},
}

// parseRate reads "N/s", "N/m" or "N/h" with an optional ":BURST" (the burst
// defaults to N); "0" or "off" turns the limit off.
func parseRate(v string) (ephemeral.Rate, error) {
	if v == "0" || v == "off" {
		return ephemeral.Rate{}, nil
	}
	spec, burst, hasBurst := strings.Cut(v, ":")
	n, unit, ok := strings.Cut(spec, "/")
	rate, err := strconv.Atoi(n)
	if !ok || err != nil || rate <= 0 {
		return ephemeral.Rate{}, fmt.Errorf("%q: want N/s, N/m or N/h, optionally :BURST, or off", v)
	}
	r := ephemeral.Rate{Rate: rate, Burst: rate}
	switch unit {
	case "s":
		r.Period = time.Second
	case "m":
		r.Period = time.Minute
	case "h":
		r.Period = time.Hour
	default:
		return ephemeral.Rate{}, fmt.Errorf("%q: the period must be s, m or h", v)
	}
	if hasBurst {
		if r.Burst, err = strconv.Atoi(burst); err != nil || r.Burst < 1 {
			return ephemeral.Rate{}, fmt.Errorf("%q: the burst must be a whole number of at least 1", v)
		}
	}
	return r, nil
}

// parsePorts reads BROOK_PREVIEW_PORTS: ports separated by commas, or
// "any".
func parsePorts(v string) (ports []uint16, anyPort bool, err error) {
	if strings.TrimSpace(v) == "any" {
		return nil, true, nil
	}
	for _, f := range strings.Split(v, ",") {
		p, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || p == 0 {
			return nil, false, fmt.Errorf("%q: want ports separated by commas (like 80,443), or any", v)
		}
		ports = append(ports, uint16(p))
	}
	return ports, false, nil
}

// configFromEnv reads the configuration; getenv is os.Getenv outside tests.
func configFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:    getenv("DATABASE_URL"),
		RedisURL:       getenv("REDIS_URL"),
		RedisPrefix:    firstSet(getenv("BROOK_REDIS_PREFIX"), "brook:"),
		DataDir:        firstSet(getenv("BROOK_DATA_DIR"), ".data"),
		WebDir:         firstSet(getenv("BROOK_WEB_DIR"), "web/dist"),
		JWTSecret:      getenv("BROOK_JWT_SECRET"),
		AllowedOrigins: getenv("BROOK_ALLOWED_ORIGINS"),
		LogFormat:      firstSet(getenv("BROOK_LOG_FORMAT"), "text"),
		Serve:          true,
	}
	var errs []error
	parseBool := func(name string, def bool) bool {
		v := getenv(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
		}
		return b
	}
	parseInt := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number of at least 0", name, v))
		}
		return n
	}
	c.Dev = parseBool("BROOK_DEV", false)
	c.Introspection = parseBool("BROOK_INTROSPECTION", true)
	c.Playground = parseBool("BROOK_PLAYGROUND", true)
	c.Workers = parseInt("BROOK_WORKERS", 2)
	c.ComplexityLimit = parseInt("BROOK_COMPLEXITY_LIMIT", api.DefaultComplexityLimit)
	c.FeedPullThreshold = parseInt("FEED_PULL_THRESHOLD", feeds.DefaultPullThreshold)
	c.FeedCommentDepth = parseInt("FEED_COMMENT_DEPTH", feeds.DefaultCommentDepth)
	if c.FeedCommentDepth < 1 || c.FeedCommentDepth > feeds.MaxCommentDepth {
		errs = append(errs, fmt.Errorf("FEED_COMMENT_DEPTH=%d: want 1 to %d", c.FeedCommentDepth, feeds.MaxCommentDepth))
	}
	c.DepthLimit = parseInt("BROOK_DEPTH_LIMIT", api.DefaultDepthLimit)
	c.TokenLimit = parseInt("BROOK_TOKEN_LIMIT", api.DefaultTokenLimit)
	c.ShutdownTimeout = time.Duration(parseInt("BROOK_SHUTDOWN_TIMEOUT_SECONDS", 30)) * time.Second
	// 128 MB keeps what the floor does for latency under load (signals at
	// 1,000/s: p99 about as with 256, half of what it is without; see the
	// README's Calls) and costs a node holding thousands of idle
	// connections nothing, as their live heap soon passes half of it: with
	// 256 such a node's heap grew to the floor first, 10 KB more RSS per
	// connection at 10,000.
	if floor := parseInt("BROOK_GC_HEAP_FLOOR_MB", 128); getenv("GOGC") == "" {
		c.HeapFloor = uint64(floor) << 20
	}
	rate := func(name, def string) ephemeral.Rate {
		r, err := parseRate(firstSet(getenv(name), def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%w", name, err))
		}
		return r
	}
	c.Limits = api.Limits{
		MaxBodyBytes:                  int64(parseInt("BROOK_MAX_BODY_BYTES", api.DefaultMaxBodyBytes)),
		MaxWebsocketMessage:           int64(parseInt("BROOK_MAX_WS_MESSAGE_BYTES", api.DefaultMaxWebsocketMessage)),
		AliasLimit:                    parseInt("BROOK_ALIAS_LIMIT", api.DefaultAliasLimit),
		BatchLimit:                    parseInt("BROOK_BATCH_LIMIT", api.DefaultBatchLimit),
		MaxSubscriptionsPerConnection: parseInt("BROOK_MAX_SUBSCRIPTIONS_PER_CONNECTION", api.DefaultMaxSubscriptionsPerConnection),
		MaxConnectionsPerUser:         parseInt("BROOK_MAX_CONNECTIONS_PER_USER", 20),
		RatePerIP:                     rate("BROOK_RATE_IP", "300/s:600"),
		RatePerUser:                   rate("BROOK_RATE_USER", "100/s:200"),
		SendRates:                     map[string]ephemeral.Rate{},
	}
	for name, v := range sendRateVars {
		c.Limits.SendRates[v.field] = rate(name, v.def)
	}
	// Per participant, so the calls product charges it, not the API.
	if c.CallEventRate = rate("BROOK_RATE_CALL_EVENT", "10/s:20"); c.CallEventRate.Off() {
		c.CallEventRate = ephemeral.Rate{Rate: -1}
	}
	if err := c.LogLevel.UnmarshalText([]byte(firstSet(getenv("BROOK_LOG_LEVEL"), "info"))); err != nil {
		errs = append(errs, fmt.Errorf("BROOK_LOG_LEVEL: %w", err))
	}
	if nodes, err := sfu.Parse(getenv("SFU_NODES")); err != nil {
		errs = append(errs, fmt.Errorf("SFU_NODES: %w", err))
	} else {
		c.SFUNodes = nodes
	}
	// parseDuration reads a duration like 30s or 2m (a bare number is
	// seconds) between lo and hi.
	parseDuration := func(name string, def, lo, hi time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if n, nerr := strconv.Atoi(v); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d < lo || d > hi {
			errs = append(errs, fmt.Errorf("%s=%q: want a duration from %s to %s, like %s", name, v, lo, hi, def))
			return def
		}
		return d
	}
	c.CallParticipantTimeout = parseDuration("CALL_PARTICIPANT_TIMEOUT", 30*time.Second, time.Second, 24*time.Hour)
	c.CallRingTimeout = parseDuration("CALL_RING_TIMEOUT", 30*time.Second, time.Second, time.Hour)
	c.CallSFUTokenTTL = parseDuration("CALL_SFU_TOKEN_TTL", 10*time.Minute, time.Minute, 24*time.Hour)
	c.WebhookTimeout = parseDuration("BROOK_WEBHOOK_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute)
	c.WebhookMaxAttempts = parseInt("BROOK_WEBHOOK_MAX_ATTEMPTS", 8)
	c.WebhookConcurrency = parseInt("BROOK_WEBHOOK_CONCURRENCY", 8)
	c.WebhookRetention = parseDuration("BROOK_WEBHOOK_RETENTION", 7*24*time.Hour, time.Minute, 10*365*24*time.Hour)
	c.BeforeSend = webhooks.BeforeSendOptions{URL: getenv("BROOK_BEFORE_SEND_URL"), Secret: getenv("BROOK_BEFORE_SEND_SECRET"),
		Timeout: parseDuration("BROOK_BEFORE_SEND_TIMEOUT", 500*time.Millisecond, 10*time.Millisecond, 10*time.Second)}
	if u := c.BeforeSend.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		errs = append(errs, fmt.Errorf("BROOK_BEFORE_SEND_URL=%q: want an http or https URL", u))
	}
	switch v := getenv("BROOK_BEFORE_SEND_FAIL"); v {
	case "", "open":
	case "closed":
		c.BeforeSend.FailClosed = true
	default:
		errs = append(errs, fmt.Errorf("BROOK_BEFORE_SEND_FAIL=%q: want open or closed", v))
	}
	if senders, err := pushSenders(getenv); err != nil {
		errs = append(errs, err)
	} else {
		c.PushSenders = senders
	}
	if parseBool("BROOK_PREVIEWS", true) {
		c.Previews = &linkpreview.ServiceOptions{
			Fetch: linkpreview.Options{Timeout: parseDuration("BROOK_PREVIEW_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
				AllowPrivate: parseBool("BROOK_PREVIEW_ALLOW_PRIVATE", false)},
			CacheTTL: parseDuration("BROOK_PREVIEW_CACHE_TTL", 24*time.Hour, time.Second, 365*24*time.Hour),
			Workers:  parseInt("BROOK_PREVIEW_WORKERS", 2),
		}
		var err error
		if c.Previews.Fetch.Ports, c.Previews.Fetch.AnyPort, err = parsePorts(firstSet(getenv("BROOK_PREVIEW_PORTS"), "80,443")); err != nil {
			errs = append(errs, fmt.Errorf("BROOK_PREVIEW_PORTS: %w", err))
		}
	}
	c.Uploads = uploadsFromEnv(getenv, c.DataDir, &errs)
	c.ReplicaURLs = replicaURLs(getenv("DATABASE_REPLICA_URLS"))
	c.ReplicaMaxLag = parseDuration("BROOK_REPLICA_MAX_LAG", store.DefaultReplicaMaxLag, 10*time.Millisecond, time.Hour)
	c.RedisTimeout = parseDuration("REDIS_TIMEOUT", 50*time.Millisecond, time.Millisecond, 10*time.Second)
	c.HTTP = HTTPLimits{
		ReadTimeout:              parseDuration("BROOK_READ_TIMEOUT", 20*time.Second, 100*time.Millisecond, time.Hour),
		WriteTimeout:             parseDuration("BROOK_WRITE_TIMEOUT", 60*time.Second, 100*time.Millisecond, time.Hour),
		IdleTimeout:              parseDuration("BROOK_IDLE_TIMEOUT", 60*time.Second, 100*time.Millisecond, time.Hour),
		MaxConnections:           parseInt("BROOK_MAX_CONNECTIONS", -1),
		MaxConnectionsPerAddress: parseInt("BROOK_MAX_CONNECTIONS_PER_ADDRESS", 1000),
	}
	// Dev mode hands out tokens to whoever asks: by default it listens on
	// this machine only.
	port := firstSet(getenv("PORT"), "8080")
	if c.Dev {
		c.Addr = firstSet(getenv("BROOK_ADDR"), "127.0.0.1:"+port)
	} else {
		c.Addr = firstSet(getenv("BROOK_ADDR"), ":"+port)
	}
	c.ChatPushMemberLimit = chat.DefaultPushMemberLimit
	if v := getenv("CHAT_PUSH_MEMBER_LIMIT"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("CHAT_PUSH_MEMBER_LIMIT=%q: want a positive number of members", v))
		} else {
			c.ChatPushMemberLimit = n
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("BROOK_LOG_FORMAT=%q: want text or json", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

// pushSenders builds a Sender for each push provider the environment
// configures (docs/push.md).
func pushSenders(getenv func(string) string) (map[pushsend.Provider]pushsend.Sender, error) {
	senders := map[pushsend.Provider]pushsend.Sender{}
	if cfg, on, err := pushsend.FCMConfigFromEnv(getenv); err != nil {
		return nil, err
	} else if on {
		if senders[pushsend.FCM], err = pushsend.NewFCM(cfg); err != nil {
			return nil, err
		}
	}
	if cfg, on, err := pushsend.APNsConfigFromEnv(getenv); err != nil {
		return nil, err
	} else if on {
		if senders[pushsend.APNS], err = pushsend.NewAPNs(cfg); err != nil {
			return nil, err
		}
	}
	if cfg, on, err := pushsend.WebPushConfigFromEnv(getenv); err != nil {
		return nil, err
	} else if on {
		if senders[pushsend.WebPush], err = pushsend.NewWebPush(cfg); err != nil {
			return nil, err
		}
	}
	return senders, nil
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
