package local

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replica is a streaming replica of a private PostgreSQL server, built
// with pg_basebackup -R: a hot standby that answers reads and replays the
// primary's WAL, until it is promoted.
type Replica struct {
	*Postgres
	// Primary is the server it replicates.
	Primary *Postgres
}

// StartReplica copies primary with pg_basebackup into dir and starts the
// copy as a hot standby that streams from it. With synchronous set, the
// primary waits for the replica to have each commit's WAL on disk before
// the commit returns (synchronous_standby_names), so a transaction
// acknowledged by the primary survives the primary's loss once the replica
// is promoted. The primary's defaults (initdb's) already allow it:
// wal_level replica, max_wal_senders 10 and a trusted replication line
// for loopback in pg_hba.conf.
func StartReplica(ctx context.Context, primary *Postgres, dir string, synchronous bool) (*Replica, error) {
	basebackup, err := findBinary("pg_basebackup")
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if err := primary.account.prepareDir(dir); err != nil {
		return nil, err
	}
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", superuser, "-D", dir,
		"-R", "-X", "stream", "-c", "fast", "-w"}
	if !primary.durable {
		args = append(args, "--no-sync")
	}
	cmd := primary.account.command(syscall.SIGKILL, basebackup, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("local: pg_basebackup %s: %w\n%s", dir, err, out)
	}
	// The copy's postmaster.pid is not copied, but a stale log would be
	// confusing: start the replica's own.
	_ = os.Remove(dir + ".log")
	r := &Replica{Postgres: &Postgres{Dir: dir, durable: primary.durable, account: primary.account, bin: primary.bin}, Primary: primary}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	if synchronous {
		if err := r.makeSynchronous(ctx); err != nil {
			_ = r.Kill()
			return nil, err
		}
	}
	return r, nil
}

// makeSynchronous turns synchronous replication on at the primary and
// waits until the replica is its synchronous standby.
func (r *Replica) makeSynchronous(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, r.Primary.URL("postgres"))
	if err != nil {
		return fmt.Errorf("local: connect to primary: %w", err)
	}
	defer conn.Close(ctx)
	// ALTER SYSTEM writes the primary's own postgresql.auto.conf, which the
	// replica (already copied) does not get: once promoted, it does not
	// wait for a standby it does not have. The role setting overrides a
	// test server's synchronous_commit=off (a command-line default), so
	// commits wait for the standby even there.
	for _, stmt := range []string{
		"ALTER SYSTEM SET synchronous_standby_names = '*'",
		"ALTER ROLE " + superuser + " SET synchronous_commit = 'on'",
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("local: %s: %w", stmt, err)
		}
	}
	return poll(ctx, 30*time.Second, "the replica to become the synchronous standby", func(ctx context.Context) (bool, error) {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&n)
		return n > 0, err
	})
}

// PauseReplay stops the replica applying WAL (it keeps receiving it), so
// its data stays as it is now and its lag grows: tests make lag this way.
func (r *Replica) PauseReplay(ctx context.Context) error {
	return r.exec(ctx, "SELECT pg_wal_replay_pause()")
}

// ResumeReplay undoes PauseReplay.
func (r *Replica) ResumeReplay(ctx context.Context) error {
	return r.exec(ctx, "SELECT pg_wal_replay_resume()")
}

// Promote makes the replica a primary (pg_promote, the SQL form of
// pg_ctl promote) and waits until it accepts writes.
func (r *Replica) Promote(ctx context.Context) error {
	if err := r.exec(ctx, "SELECT pg_promote(true, 60)"); err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, "the promoted replica to accept writes", func(ctx context.Context) (bool, error) {
		conn, err := pgx.Connect(ctx, r.URL("postgres"))
		if err != nil {
			return false, err
		}
		defer conn.Close(ctx)
		var recovering bool
		err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering)
		return !recovering, err
	})
}

// WaitCaughtUp waits until the replica has replayed all the WAL the
// primary had inserted when it was called: its insert position, since a
// test server (synchronous_commit off) may hold commits in its WAL buffers
// for a moment before writing them.
func (r *Replica) WaitCaughtUp(ctx context.Context) error {
	p, err := pgx.Connect(ctx, r.Primary.URL("postgres"))
	if err != nil {
		return fmt.Errorf("local: connect to primary: %w", err)
	}
	defer p.Close(ctx)
	var target string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("local: primary WAL position: %w", err)
	}
	c, err := pgx.Connect(ctx, r.URL("postgres"))
	if err != nil {
		return fmt.Errorf("local: connect to replica: %w", err)
	}
	defer c.Close(ctx)
	return poll(ctx, 30*time.Second, "the replica to replay "+target, func(ctx context.Context) (bool, error) {
		var done bool
		err := c.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target).Scan(&done)
		return done, err
	})
}

func (r *Replica) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, r.URL("postgres"))
	if err != nil {
		return fmt.Errorf("local: connect to replica: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("local: %s: %w", sql, err)
	}
	return nil
}

// MultiHostURL returns a URL for database db that names both servers,
// primary first, and connects to whichever accepts writes
// (target_session_attrs=read-write): after a promotion, the replica.
func (r *Replica) MultiHostURL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		superuser, r.Primary.Port, r.Port, db)
}

// poll runs check until it reports true, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, what string, check func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := check(attempt)
		cancel()
		if ok && err == nil {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			if lastErr == nil {
				lastErr = errors.New("timed out")
			}
			return fmt.Errorf("local: waiting for %s: %w", what, lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// testReplica is the BROOK_TEST_PG=replica switch of Test: the test
// binary's private PostgreSQL gets a streaming replica, whose URL the
// nodes take as DATABASE_REPLICA_URLS.
func (e *Env) testReplica(ctx context.Context, dir string) error {
	if os.Getenv("BROOK_TEST_PG") != "replica" {
		return nil
	}
	if e.Postgres == nil {
		return errors.New("local: BROOK_TEST_PG=replica needs the private PostgreSQL (unset DATABASE_URL)")
	}
	r, err := StartReplica(ctx, e.Postgres, filepath.Join(dir, "replica"), false)
	if err != nil {
		return err
	}
	e.cleanup = append(e.cleanup, func() { _ = r.Kill() })
	e.Replica = r
	return nil
}

// ReplicaURLsFor returns the replica URLs (DATABASE_REPLICA_URLS) of a
// database on the environment's server: the same database on the replica.
// It returns none without a replica or for a database elsewhere.
func (e *Env) ReplicaURLsFor(databaseURL string) []string {
	if e.Replica == nil {
		return nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil || u.Port() != strconv.Itoa(e.Replica.Primary.Port) {
		return nil
	}
	ru, err := url.Parse(e.Replica.URL("x"))
	if err != nil {
		return nil
	}
	ru.Path = u.Path
	return []string{ru.String()}
}
