// Package store is Brook's storage layer: every SQL statement and every Redis
// command lives here, one file per entity, next to the method that runs it.
//
// PostgreSQL (or CockroachDB) holds everything a user could lose; Redis holds
// only what can be rebuilt exactly from PostgreSQL (counters, presence,
// caches). Methods that must be atomic take a pgx.Tx explicitly.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/redisguard"
)

// Options says where the data lives.
type Options struct {
	// DatabaseURL is a PostgreSQL or CockroachDB connection URL.
	DatabaseURL string
	// RedisURL is a Redis connection URL.
	RedisURL string
	// RedisPrefix is prepended to every Redis key Brook uses.
	RedisPrefix string
	// MaxConns caps the PostgreSQL pool (0: pgx's default, 4 per CPU, at least 20 here).
	MaxConns int32
	// Logger receives storage warnings; nil means slog.Default().
	Logger *slog.Logger
	// FeedPullThreshold is FEED_PULL_THRESHOLD: actors with more followers
	// are merged into timelines at read time instead of fanned out on write
	// (0: DefaultPullThreshold).
	FeedPullThreshold int
	// ChatPushMemberLimit is CHAT_PUSH_MEMBER_LIMIT: channels with more
	// members get unread counts computed at read time rather than pushed to
	// each member's counters (0: DefaultChatPushMemberLimit).
	ChatPushMemberLimit int
	// RedisTimeout bounds one Redis command on the request path (0: 50 ms);
	// see package redisguard.
	RedisTimeout time.Duration
	// Registerer receives the Redis guard's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Store is the handle on PostgreSQL and Redis that every layer above uses.
type Store struct {
	pool       *pgxpool.Pool
	rdb        *redis.Client
	prefix     string
	log        *slog.Logger
	statements *atomic.Int64

	guard *redisguard.Guard
	// unreadDirty counts failed writes to the unread counters not yet
	// settled (see settleUnread).
	unreadDirty atomic.Int64

	pullThreshold int
	pushLimit     int
}

// Querier runs SQL: a pool, a connection, or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// Open connects to PostgreSQL and Redis and checks that both answer.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: parse database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if cfg.MaxConns < 20 {
		cfg.MaxConns = 20
	}
	statements := new(atomic.Int64)
	cfg.ConnConfig.Tracer = statementCounter{n: statements}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	ropts, err := redis.ParseURL(opts.RedisURL)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: parse redis URL: %w", err)
	}
	// Fail fast while Redis is down: callers fall back to PostgreSQL.
	ropts.MaxRetries = 1
	// One dial per attempt: go-redis otherwise retries a refused dial 5
	// times, 100 ms apart, which made every Redis call of a request take
	// about a second while Redis was down (fault test 2).
	ropts.DialerRetries = 1
	ropts.DialTimeout = 2 * time.Second
	ropts.ReadTimeout = 2 * time.Second
	ropts.WriteTimeout = 2 * time.Second
	ropts.PoolSize = 50
	// Brook's commands and replies are small (the largest, a user's unread
	// counts in 1,000 channels, is about 20 KB and is read in a few fills);
	// go-redis's 32 KiB buffers each way held 10 MB on a node whose pool
	// and subscriptions had grown while 10,000 clients connected. Pipelines
	// keep their pool's larger buffers.
	ropts.ReadBufferSize = 8 << 10
	ropts.WriteBufferSize = 8 << 10
	// Commands take their deadline from the context, which the guard
	// below sets short on the request path: a Redis that hangs (stopped,
	// swapped out) costs a request tens of milliseconds, not seconds.
	ropts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(ropts)
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	guard := redisguard.New(redisguard.Options{Timeout: opts.RedisTimeout, Logger: logger, Registerer: opts.Registerer})
	guard.Attach(rdb)
	s := &Store{pool: pool, rdb: rdb, guard: guard, prefix: opts.RedisPrefix, log: logger, statements: statements,
		pullThreshold: opts.FeedPullThreshold, pushLimit: opts.ChatPushMemberLimit}
	guard.OnRecover(s.settleUnread)
	if s.pullThreshold <= 0 {
		s.pullThreshold = DefaultPullThreshold
	}
	if s.pushLimit <= 0 {
		s.pushLimit = DefaultChatPushMemberLimit
	}
	// The first contact may be slow (a server just started): not a
	// request's deadline.
	if err := s.Ping(redisguard.Background(ctx)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases all connections.
func (s *Store) Close() {
	s.guard.Close()
	s.pool.Close()
	_ = s.rdb.Close()
}

// Ping checks that PostgreSQL and Redis both answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: postgres: %w", err)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}

// PullThreshold is the follower count above which an actor's activities
// are pulled at read time rather than pushed on write.
func (s *Store) PullThreshold() int { return s.pullThreshold }

// DB returns the PostgreSQL pool, for reads outside a transaction.
func (s *Store) DB() *pgxpool.Pool { return s.pool }

// Redis returns the Redis client.
func (s *Store) Redis() *redis.Client { return s.rdb }

// RedisGuard returns the guard on the Redis client: whether Redis answers,
// and what to run when it answers again.
func (s *Store) RedisGuard() *redisguard.Guard { return s.guard }

// Key returns the Redis key for the given parts, with the configured prefix.
func (s *Store) Key(parts ...string) string {
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

// InTx runs fn in a transaction and commits it if fn returns nil. A
// serialization failure (which CockroachDB reports under contention) reruns
// fn from the start, so fn must not have effects outside the transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// isRetryable reports a serialization failure or deadlock, after which the
// whole transaction can simply run again.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
