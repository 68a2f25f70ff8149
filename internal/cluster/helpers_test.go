package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// seed writes the users and the follow graph with raw SQL, as the
// benchmarks seed theirs (the same rows the API writes, far faster): a
// host, msgSubs subscribers s0.., and the actor star with followers
// f1..f<followers> (timeline:fN follows user:star).
func seed(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, name) VALUES ('host', 'host'), ('star', 'star')`, nil},
		{`INSERT INTO users (id, name) SELECT 's' || g, 's' || g FROM generate_series(0, $1::int - 1) g`, []any{msgSubs}},
		{`INSERT INTO users (id, name) SELECT 'f' || g, 'f' || g FROM generate_series(1, $1::int) g`, []any{followers}},
		{`INSERT INTO follows (source, target, pull_from)
			SELECT 'timeline:f' || g, 'user:star', '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $1::int) g`, []any{followers}},
		{`INSERT INTO feeds (id, follower_count) VALUES ('user:star', $1::int)`, []any{followers}},
		{`ANALYZE follows`, nil},
		// pgrowlocks shows which backend holds which row lock: how the test
		// sees the jobs a node has claimed (FOR UPDATE SKIP LOCKED).
		{`CREATE EXTENSION IF NOT EXISTS pgrowlocks`, nil},
	} {
		if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("seed: %s: %v", q.sql, err)
		}
	}
}

// claimedJobs are the jobs a node held claimed when it was killed.
type claimedJobs struct {
	ids    []string
	runAts []time.Time
	kinds  map[string]int
}

// catchHoldingJobs freezes n (SIGSTOP) at a moment it holds claimed jobs
// and returns them; n stays frozen, for the caller to kill. A frozen node
// cannot commit, so what it held then is what it held when killed. Each
// attempt freezes it for one query (milliseconds): too short for HAProxy's
// health check to notice.
func catchHoldingJobs(t *testing.T, db *pgxpool.Pool, n *Node) claimedJobs {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		if err := n.Freeze(); err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(ctx, `SELECT j.id::text, j.kind, j.run_at FROM pgrowlocks('jobs') l
			JOIN jobs j ON j.ctid = l.locked_row
			WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = ANY(l.pids) AND a.application_name = $1)`,
			"brook-"+n.Name)
		if err != nil {
			_ = n.Thaw()
			t.Fatal(err)
		}
		c := claimedJobs{kinds: map[string]int{}}
		for rows.Next() {
			var id, kind string
			var runAt time.Time
			_ = rows.Scan(&id, &kind, &runAt)
			c.ids, c.runAts = append(c.ids, id), append(c.runAts, runAt)
			c.kinds[kind]++
		}
		rows.Close()
		if len(c.ids) > 0 {
			return c
		}
		if err := n.Thaw(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s held no claimed job in %d looks over 90 s", n.Name, attempt)
		}
		time.Sleep(time.Duration(10+attempt%7*5) * time.Millisecond)
	}
}

// eventually polls cond until it holds, failing the test after timeout:
// a liveness bound far above what the conditions take, not a timing
// assertion. state, if given, describes the last state seen.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool, state ...*string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			last := ""
			if len(state) > 0 {
				last = fmt.Sprintf(" (last: %s)", *state[0])
			}
			t.Fatalf("%s: not true within %s%s", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
