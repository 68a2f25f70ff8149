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
//
// Apply keeps no session state, so it works through a transaction pooler
// such as PgBouncer: tern only loads and orders the files here, because its
// Migrate takes a session-level advisory lock, which a pooler would leave
// held on whichever server connection took it (and the unlock would run
// on another). Each migration runs in a transaction of its own with the
// version update, as tern would run it.
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
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versionTable+` (version int4 NOT NULL);
		INSERT INTO `+versionTable+` (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM `+versionTable+`)`); err != nil {
		return fmt.Errorf("migrations: create version table: %w", err)
	}
	all, err := load()
	if err != nil {
		return err
	}
	current, err := version(ctx, conn)
	if err != nil {
		return err
	}
	if current < 0 || int(current) > len(all) {
		return fmt.Errorf("migrations: database is at migration %d, this binary has 1 to %d", current, len(all))
	}
	for _, m := range all[current:] {
		err := pgx.BeginFunc(ctx, conn, func(mtx pgx.Tx) error {
			if _, err := mtx.Exec(ctx, m.UpSQL); err != nil {
				return err
			}
			_, err := mtx.Exec(ctx, "UPDATE "+versionTable+" SET version = $1", m.Sequence)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrations: migrate %s: %w", m.Name, err)
		}
	}
	return tx.Commit(ctx)
}

// load returns the embedded migrations in order (tern checks that their
// numbers run 1, 2, 3, ... without gaps).
func load() ([]*migrate.Migration, error) {
	m, err := migrate.NewMigratorEx(context.Background(), nil, versionTable, &migrate.MigratorOptions{})
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return nil, fmt.Errorf("migrations: load: %w", err)
	}
	return m.Migrations, nil
}

func version(ctx context.Context, conn *pgx.Conn) (int32, error) {
	var v int32
	if err := conn.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("migrations: read version: %w", err)
	}
	return v, nil
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
	return version(ctx, conn)
}

// Latest returns the number of the newest migration in the binary.
func Latest() (int, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	return len(names), nil
}
