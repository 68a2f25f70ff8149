package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the PostgreSQL database and Redis server one Brook process (or one
// test binary) uses: private servers started here, or ones given by URL.
type Env struct {
	// DatabaseURL is the database to use.
	DatabaseURL string
	// RedisURL is the Redis server to use.
	RedisURL string
	// RedisPrefix namespaces every Redis key and channel, so several test
	// binaries can share one Redis server given by REDIS_URL.
	RedisPrefix string
	// Postgres is the private server, or nil when DATABASE_URL was given.
	Postgres *Postgres
	// Redis is the private server, or nil when REDIS_URL was given.
	Redis *Redis
	// PgBouncer is the pooler DatabaseURL goes through (BROOK_TEST_PG=pgbouncer), or nil.
	PgBouncer *PgBouncer
	// RedisCluster is the private cluster BROOK_TEST_REDIS=cluster starts
	// in place of Redis (testcluster.go).
	RedisCluster *RedisCluster
	// Replica is the private PostgreSQL's streaming replica, started when
	// BROOK_TEST_PG=replica (nil otherwise); see ReplicaURLsFor.
	Replica *Replica

	cleanup []func()
}

// Close stops private servers and drops throwaway databases.
func (e *Env) Close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
}

// Dev returns the environment for a server started with zero configuration:
// the given URLs where set, private servers under dir (./.data) otherwise.
// The private PostgreSQL cluster persists across runs; Redis starts empty.
func Dev(ctx context.Context, dir, databaseURL, redisURL string) (*Env, error) {
	e := &Env{DatabaseURL: databaseURL, RedisURL: redisURL}
	if databaseURL == "" {
		pg, err := StartPostgres(ctx, filepath.Join(dir, "postgres"), true)
		var running *AlreadyRunningError
		if errors.As(err, &running) {
			// Name the directory the user chose, not the cluster inside it.
			if abs, absErr := filepath.Abs(dir); absErr == nil {
				running.Dir = abs
			}
		}
		if err != nil {
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { _ = pg.Stop() })
		if err := pg.CreateDatabase(ctx, "brook"); err != nil {
			e.Close()
			return nil, err
		}
		e.Postgres, e.DatabaseURL = pg, pg.URL("brook")
	}
	if redisURL == "" {
		r, err := StartRedis(ctx, filepath.Join(dir, "redis"))
		if err != nil {
			e.Close()
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { _ = r.Stop() })
		e.Redis, e.RedisURL = r, r.URL()
	}
	return e, nil
}

// Test returns a fresh environment for one test binary: a new empty
// database (in the server DATABASE_URL names, or a private server) and a
// Redis server (REDIS_URL's with a unique key prefix, or a private one).
func Test(ctx context.Context) (*Env, error) {
	e := &Env{}
	tag := randomTag()
	dir, err := os.MkdirTemp("", "brook-test-")
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	e.cleanup = append(e.cleanup, func() { removeAll(dir) })
	if admin := os.Getenv("DATABASE_URL"); admin != "" {
		name := "brook_test_" + tag
		u, err := url.Parse(admin)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("local: parse DATABASE_URL: %w", err)
		}
		if err := createDatabase(ctx, admin, name); err != nil {
			e.Close()
			return nil, err
		}
		u.Path = "/" + name
		e.DatabaseURL = u.String()
		e.cleanup = append(e.cleanup, func() { dropDatabase(admin, name) })
	} else {
		pg, err := StartPostgres(ctx, filepath.Join(dir, "postgres"), false)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { _ = pg.Kill() })
		if err := pg.CreateDatabase(ctx, "brook"); err != nil {
			e.Close()
			return nil, err
		}
		e.Postgres, e.DatabaseURL = pg, pg.URL("brook")
	}
	if err := routeTestPostgres(ctx, e, dir); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.testReplica(ctx, dir); err != nil {
		e.Close()
		return nil, err
	}
	if cluster, err := testRedisCluster(ctx, e, dir); err != nil || cluster {
		if err != nil {
			e.Close()
			return nil, err
		}
	} else if given := os.Getenv("REDIS_URL"); given != "" {
		e.RedisURL, e.RedisPrefix = given, "test:"+tag+":"
	} else {
		r, err := StartRedis(ctx, filepath.Join(dir, "redis"))
		if err != nil {
			e.Close()
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { _ = r.Kill() })
		e.Redis, e.RedisURL = r, r.URL()
	}
	return e, nil
}

// NewDatabase creates another empty database on the environment's
// PostgreSQL server, dropped by Close, and returns its URL and a Redis key
// prefix of its own: a fresh world for one test that needs one.
func (e *Env) NewDatabase(ctx context.Context) (databaseURL, redisPrefix string, err error) {
	tag := randomTag()
	name := "brook_extra_" + tag
	if err := createDatabase(ctx, e.DatabaseURL, name); err != nil {
		return "", "", err
	}
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		return "", "", fmt.Errorf("local: parse database URL: %w", err)
	}
	admin := e.DatabaseURL
	e.cleanup = append(e.cleanup, func() { dropDatabase(admin, name) })
	u.Path = "/" + name
	return u.String(), e.RedisPrefix + "extra:" + tag + ":", nil
}

// TestMain gives a test binary its environment: it starts one with Test,
// calls setup with it, runs the tests, and cleans up. Use it from a
// package's TestMain: os.Exit(local.TestMain(m, func(e *local.Env) error {...})).
func TestMain(m *testing.M, setup func(*Env) error) int {
	// A fuzzing run (and each of its worker processes) runs only a fuzz
	// target, which needs no servers: skip them rather than start a
	// PostgreSQL per worker.
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	env, err := Test(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test environment:", err)
		return 1
	}
	defer env.Close()
	if setup != nil {
		if err := setup(env); err != nil {
			fmt.Fprintln(os.Stderr, "test setup:", err)
			return 1
		}
	}
	return m.Run()
}

func dropDatabase(adminURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func randomTag() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
