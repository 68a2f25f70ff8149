package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// startPooledPostgres starts a private PostgreSQL with database "brook"
// and a PgBouncer of poolSize server connections in front of it.
func startPooledPostgres(t *testing.T, ctx context.Context, poolSize int) *PgBouncer {
	t.Helper()
	dir := t.TempDir()
	pg, err := StartPostgres(ctx, dir+"/postgres", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Kill() })
	if err := pg.CreateDatabase(ctx, "brook"); err != nil {
		t.Fatal(err)
	}
	b, err := StartPgBouncer(ctx, dir+"/pgbouncer", fmt.Sprintf("127.0.0.1:%d", pg.Port), superuser, poolSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b
}

// Why Brook needs its own exec mode behind PgBouncer 1.18: pgx's default
// names a prepared statement after its SQL on each client connection, and
// two client connections that take turns on one server connection collide
// on that name (or miss it, on another server connection).
func TestClusterPgBouncerBreaksNamedStatements(t *testing.T) {
	ClusterTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startPooledPostgres(t, ctx, 1)
	named := strings.Replace(b.URL("brook"), "default_query_exec_mode="+PoolerExecMode, "default_query_exec_mode=cache_statement", 1)
	var errs []error
	for i := 0; i < 2; i++ {
		conn, err := pgx.Connect(ctx, named)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		errs = append(errs, conn.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n))
	}
	var pgErr *pgconn.PgError
	if errs[0] != nil || !errors.As(errs[1], &pgErr) || pgErr.Code != "42P05" {
		t.Fatalf("cache_statement through a one-connection PgBouncer: errors %v, want the second to be 42P05 (prepared statement exists)", errs)
	}
}

// With PoolerExecMode, what Brook's store does (queries with arguments on
// many client connections, transactions with row locks, batches, COPY into
// a temporary table of a transaction) works through PgBouncer in
// transaction mode, with fewer server connections than clients.
func TestClusterPgBouncerTransactionPooling(t *testing.T) {
	ClusterTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := startPooledPostgres(t, ctx, 2)
	cfg, err := pgxpool.ParseConfig(b.URL("brook"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheDescribe {
		t.Fatalf("exec mode %v from the URL, want cache_describe", cfg.ConnConfig.DefaultQueryExecMode)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO counters VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 25
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < rounds; i++ {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					var n int
					if err := tx.QueryRow(ctx, `SELECT n FROM counters WHERE id = $1 FOR UPDATE`, 1).Scan(&n); err != nil {
						return err
					}
					batch := &pgx.Batch{}
					batch.Queue(`UPDATE counters SET n = $2 WHERE id = $1`, 1, n+1)
					batch.Queue(`SELECT $1::text`, "x")
					return tx.SendBatch(ctx, batch).Close()
				})
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT n FROM counters WHERE id = $1`, 1).Scan(&n); err != nil || n != workers*rounds {
		t.Fatalf("counter %d (%v), want %d", n, err, workers*rounds)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE staged (id int) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staged"}, []string{"id"}, pgx.CopyFromRows([][]any{{1}, {2}, {3}})); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM staged WHERE id > $1`, 0).Scan(&n)
	})
	if err != nil || n != 3 {
		t.Fatalf("COPY into a temporary table of a transaction: %d rows (%v), want 3", n, err)
	}
	// A database created through the pooler (as Env.NewDatabase does) is
	// reachable through it by name at once: the wildcard entry.
	if err := createDatabase(ctx, b.URL("brook"), "another"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, b.URL("another"))
	if err != nil {
		t.Fatal(err)
	}
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != "another" {
		t.Fatalf("connected to %q (%v), want another", db, err)
	}
	conn.Close(ctx)
	dropDatabase(b.URL("brook"), "another")
}
