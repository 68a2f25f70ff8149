package store

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Statements returns how many SQL statements this store has run. Tests and
// benchmarks read it before and after an operation to check that the
// operation costs a constant number of statements whatever its page size.
func (s *Store) Statements() int64 { return s.statements.Load() }

// RoundTrips returns how many times this store has sent PostgreSQL work and
// waited for it: a statement alone, a batch of statements, a COPY. Tests
// read it as they read Statements, for pages whose statements go together.
func (s *Store) RoundTrips() int64 { return s.roundTrips.Load() }

// uncountedKey marks the statements of Brook's own upkeep (the replica
// checker), which are no operation's cost.
type uncountedKey struct{}

// statementCounter is the pgx tracer behind Statements and RoundTrips.
// Each statement of a batch counts as a statement, the batch as one round
// trip; a COPY counts as one of each.
type statementCounter struct{ n, trips *atomic.Int64 }

func (c statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if ctx.Value(uncountedKey{}) == nil {
		c.n.Add(1)
		c.trips.Add(1)
	}
	return ctx
}

func (statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.trips.Add(1)
	return ctx
}

func (c statementCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.n.Add(1)
}

func (statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c statementCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.n.Add(1)
	c.trips.Add(1)
	return ctx
}

func (statementCounter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
