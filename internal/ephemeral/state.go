// Package ephemeral holds Brook's state in Redis: what can be lost without
// losing anything a user could miss, because it is rebuilt exactly from
// PostgreSQL (unread counters, call participants' facts and liveness) or
// is safe to lose (presence leases, rate-limit budgets, persisted
// queries). Every command goes through the redisguard hook: a Redis that
// hangs costs a request tens of milliseconds, and callers fall back to
// PostgreSQL.
package ephemeral

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
)

// Options say where Redis is.
type Options struct {
	// RedisURL is a Redis connection URL: one server, or a cluster (see
	// newClient).
	RedisURL string
	// Prefix is prepended to every Redis key Brook uses.
	Prefix string
	// Timeout bounds one command on the request path (0: 50 ms); see
	// package redisguard.
	Timeout time.Duration
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the guard's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// State is the handle on Redis.
type State struct {
	// rdb is a *redis.Client, or a *redis.ClusterClient (see Cluster).
	rdb    redis.UniversalClient
	prefix string
	log    *slog.Logger
	guard  *redisguard.Guard
	// unreadDirty counts failed writes to the unread counters not yet
	// settled (see SettleUnread).
	unreadDirty atomic.Int64
}

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, opts Options) (*State, error) {
	if err := checkPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	// The first contact may be slow (a server just started): not a
	// request's deadline.
	rdb, err := NewClient(redisguard.Background(ctx), opts.RedisURL)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	guard := redisguard.New(redisguard.Options{Timeout: opts.Timeout, Logger: logger, Registerer: opts.Registerer})
	guard.Attach(rdb)
	s := &State{rdb: rdb, prefix: opts.Prefix, log: logger, guard: guard}
	// The first contact may be slow (a server just started): not a
	// request's deadline.
	if err := s.Ping(redisguard.Background(ctx)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the connections.
func (s *State) Close() {
	s.guard.Close()
	_ = s.rdb.Close()
}

// Ping checks that Redis answers.
func (s *State) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ephemeral: redis: %w", err)
	}
	return nil
}

// Redis returns the client, for the event bus: a *redis.ClusterClient
// when REDIS_URL names a cluster, a *redis.Client otherwise.
func (s *State) Redis() redis.UniversalClient { return s.rdb }

// Guard returns the guard on the client: whether Redis answers, and what
// to run when it answers again.
func (s *State) Guard() *redisguard.Guard { return s.guard }

// Prefix is the prefix of every key.
func (s *State) Prefix() string { return s.prefix }

// Key returns the Redis key for the given parts, with the configured prefix.
func (s *State) Key(parts ...string) string {
	n := len(s.prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, s.prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	return string(b)
}
