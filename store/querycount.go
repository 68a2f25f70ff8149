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

// uncountedKey marks the statements of Brook's own upkeep (the replica
// checker), which are no operation's cost.
type uncountedKey struct{}

// statementCounter is the pgx tracer behind Statements. Each statement of
// a batch counts; a COPY counts as one.
type statementCounter struct{ n *atomic.Int64 }

func (c statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if ctx.Value(uncountedKey{}) == nil {
		c.n.Add(1)
	}
	return ctx
}

func (statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c statementCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.n.Add(1)
}

func (statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c statementCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (statementCounter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
