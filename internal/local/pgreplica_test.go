package local

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A replica built with pg_basebackup replays the primary's writes, stops
// when its replay is paused, and once promoted (the primary killed) takes
// writes through the multi-host URL.
func TestPostgresReplicaClusterFailover(t *testing.T) {
	ClusterTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pg, err := StartPostgres(ctx, filepath.Join(dir, "primary"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Kill()
	if err := pg.CreateDatabase(ctx, "brook"); err != nil {
		t.Fatal(err)
	}
	r, err := StartReplica(ctx, pg, filepath.Join(dir, "replica"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	primary := connect(t, ctx, pg.URL("brook"))
	replica := connect(t, ctx, r.URL("brook"))
	execSQL(t, ctx, primary, "CREATE TABLE t (n int)")
	execSQL(t, ctx, primary, "INSERT INTO t VALUES (1)")
	if err := r.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, ctx, replica); n != 1 {
		t.Fatalf("replica has %d rows, want 1", n)
	}
	if err := r.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, ctx, primary, "INSERT INTO t VALUES (2)")
	if n := count(t, ctx, replica); n != 1 {
		t.Fatalf("paused replica has %d rows, want 1", n)
	}
	if err := r.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	// Synchronous: the commit returned only once the replica had it.
	execSQL(t, ctx, primary, "INSERT INTO t VALUES (3)")
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	after := connect(t, ctx, r.MultiHostURL("brook"))
	execSQL(t, ctx, after, "INSERT INTO t VALUES (4)")
	if n := count(t, ctx, after); n != 4 {
		t.Fatalf("promoted replica has %d rows, want 4", n)
	}
}

func connect(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func execSQL(t *testing.T, ctx context.Context, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, ctx context.Context, c *pgx.Conn) int {
	t.Helper()
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
