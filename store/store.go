// Package store is Brook's SQL: every statement lives here, one file per
// table group, next to the method that runs it. PostgreSQL holds
// everything a user could lose. Every method is on *Store, which is bound
// to the pool or, inside InTx, to a transaction.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options says where the data lives.
type Options struct {
	// DatabaseURL is a PostgreSQL connection URL.
	DatabaseURL string
	// MaxConns caps the PostgreSQL pool (0: pgx's default, 4 per CPU, at least 20 here).
	MaxConns int32
	// Logger receives storage warnings; nil means slog.Default().
	Logger *slog.Logger
	// Tracer, if set, also traces every statement (tracing.Provider.PGX).
	Tracer pgx.QueryTracer
	// ReplicaURLs are read replicas (DATABASE_REPLICA_URLS) for reads
	// that may lag; see replicas.go.
	ReplicaURLs []string
	// ReplicaMaxLag takes a replica out of rotation (BROOK_REPLICA_MAX_LAG;
	// 0: DefaultReplicaMaxLag).
	ReplicaMaxLag time.Duration
}

// Store runs Brook's SQL. A Store is bound to the pool, or, inside InTx, to
// one transaction: every method runs on whichever it is bound to, so a
// product composes one transaction from several methods.
type Store struct {
	pool       *pgxpool.Pool
	db         Querier
	log        *slog.Logger
	statements *atomic.Int64
	roundTrips *atomic.Int64
	replicas   *replicaSet
}

// Querier runs SQL: a pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Open connects to PostgreSQL and checks that it answers.
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
	statements, roundTrips := new(atomic.Int64), new(atomic.Int64)
	cfg.ConnConfig.Tracer = statementCounter{n: statements, trips: roundTrips}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = multitracer.New(cfg.ConnConfig.Tracer, opts.Tracer)
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Store{pool: pool, db: pool, log: logger, statements: statements, roundTrips: roundTrips}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.openReplicas(ctx, cfg, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases all connections.
func (s *Store) Close() {
	s.replicas.close()
	s.pool.Close()
}

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: postgres: %w", err)
	}
	return nil
}

// SQL returns what s runs SQL on: the pool, or the transaction s is bound
// to (for tests and tools that write their own statements in one).
func (s *Store) SQL() Querier { return s.db }

// DB returns the PostgreSQL pool, for reads outside a transaction.
func (s *Store) DB() *pgxpool.Pool { return s.pool }

// InTx runs fn with a Store bound to a transaction and commits it if fn
// returns nil; on a Store already bound to one, fn runs in a savepoint of
// it. A serialization failure or deadlock of a top-level transaction
// reruns fn from the start, so fn must not have effects outside the
// transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	run := func(tx pgx.Tx) error { return fn(s.WithTx(tx)) }
	if s.db != Querier(s.pool) {
		return pgx.BeginFunc(ctx, s.db, run)
	}
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = pgx.BeginFunc(ctx, s.pool, run)
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

// ConnClosed reports whether the connection of the transaction s is bound
// to has closed (the transaction is lost with it).
func (s *Store) ConnClosed() bool {
	tx, ok := s.db.(pgx.Tx)
	return ok && tx.Conn().IsClosed()
}

// WithTx returns a Store bound to tx, an open transaction.
func (s *Store) WithTx(tx pgx.Tx) *Store {
	c := *s
	c.db = tx
	return &c
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
