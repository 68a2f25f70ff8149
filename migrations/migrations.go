// Package migrations holds Brook's database schema as plain SQL files,
// embedded in the binary and applied in order with tern.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var files embed.FS

// versionTable records which migrations have been applied.
const versionTable = "schema_version"

// Apply brings the database at url up to the newest migration. It is safe
// when several nodes start at once: they serialize on a row lock (which,
// unlike an advisory lock, also holds on CockroachDB), and the first one
// migrates while the others wait and then find nothing to do.
func Apply(ctx context.Context, url string) error {
	lockConn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("migrations: connect: %w", err)
	}
	defer lockConn.Close(ctx)
	if err := ensureLockTable(ctx, lockConn); err != nil {
		return err
	}
	tx, err := lockConn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrations: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT id FROM schema_lock WHERE id = 1 FOR UPDATE"); err != nil {
		return fmt.Errorf("migrations: take lock: %w", err)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("migrations: connect: %w", err)
	}
	defer conn.Close(ctx)
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("migrations: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrations: migrate: %w", err)
	}
	return tx.Commit(ctx)
}

// ensureLockTable creates the one-row lock table. Two nodes creating it at
// the same moment can collide in the catalog, so a failure is retried.
func ensureLockTable(ctx context.Context, conn *pgx.Conn) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_lock (id int PRIMARY KEY);
			INSERT INTO schema_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING`)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	return fmt.Errorf("migrations: create lock table: %w", err)
}

// Version returns the number of the newest migration applied to the database.
func Version(ctx context.Context, url string) (int32, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("migrations: connect: %w", err)
	}
	defer conn.Close(ctx)
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	return m.GetCurrentVersion(ctx)
}

// Latest returns the number of the newest migration in the binary.
func Latest() (int, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	return len(names), nil
}
