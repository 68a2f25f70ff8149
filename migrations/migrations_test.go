package migrations_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
)

var env *local.Env

func TestMain(m *testing.M) {
	os.Exit(local.TestMain(m, func(e *local.Env) error { env = e; return nil }))
}

// Nodes that start at the same moment all migrate without error, and the
// schema ends up applied exactly once.
func TestConcurrentApply(t *testing.T) {
	ctx := context.Background()
	latest, err := migrations.Latest()
	if err != nil || latest == 0 {
		t.Fatalf("latest migration: %d %v", latest, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- migrations.Apply(ctx, env.DatabaseURL)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	v, err := migrations.Version(ctx, env.DatabaseURL)
	if err != nil || int(v) != latest {
		t.Fatalf("version %d (%v), want %d", v, err, latest)
	}
	// Applying again is a no-op.
	if err := migrations.Apply(ctx, env.DatabaseURL); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'jobs')`).Scan(&tables); err != nil || tables != 2 {
		t.Fatalf("core tables: %d %v", tables, err)
	}
	// No lock outlives Apply: behind a transaction pooler a session lock
	// would stay with whichever server connection took it.
	var held int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&held); err != nil || held != 0 {
		t.Fatalf("%d advisory locks held after Apply (%v)", held, err)
	}
}
