package faults

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/workers"
	"github.com/google/uuid"
)

// mutationLoad runs writers in parallel, each doing one mutation after
// another, and records every acknowledged id and every failure.
type mutationLoad struct {
	mu        sync.Mutex
	acked     map[string][]string // kind -> ids whose mutation succeeded
	errs      map[string]int      // kind: code -> count
	successes []time.Time
	failures  atomic.Int64
	total     atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup
}

// writer runs op until the load stops. op returns the id of what it wrote.
func (l *mutationLoad) writer(kind string, op func(ctx context.Context, i int) (string, *client.Response, error)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			// A request that hangs is a failure of its own: no request may
			// take anywhere near this long.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			id, r, err := op(ctx, i)
			cancel()
			l.mu.Lock()
			if code := codeOf(r, err); code != "" {
				l.errs[kind+": "+code]++
				l.failures.Add(1)
			} else {
				l.acked[kind] = append(l.acked[kind], id)
				l.successes = append(l.successes, time.Now())
				l.total.Add(1)
			}
			l.mu.Unlock()
			if err != nil || len(r.Errors) > 0 {
				time.Sleep(20 * time.Millisecond) // a client's pause before retrying
			}
		}
	}()
}

func (l *mutationLoad) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.total.Load() + n
	eventually(t, 60*time.Second, fmt.Sprintf("%d mutations acknowledged", target), func() bool { return l.total.Load() >= target })
}

// Fault 3: PostgreSQL crashes (SIGKILL of the server and its backends) and
// restarts while messages and activities are being written. Requests in
// flight fail with a GraphQL error that has a code (no hang, no panic, no
// dropped connection), the Brook process keeps running, service resumes
// within seconds of PostgreSQL being back, and every mutation that returned
// success is in PostgreSQL afterwards.
func TestPostgresRestartedUnderLoad(t *testing.T) {
	postgresRestartedUnderLoad(t, newCluster(t, true), "fault 3")
}

// postgresRestartedUnderLoad is fault 3 on c, whose Brook may reach
// PostgreSQL directly or through a pooler; name heads its figures.
func postgresRestartedUnderLoad(t *testing.T, c *cluster, name string) {
	p := c.startBrook(t, nil, map[string]string{"BROOK_WORKERS": "2"})
	pid := p.Pid()
	ctx := context.Background()
	users := []string{"w0", "w1", "w2", "w3", "w4", "w5"}
	c.users(t, p, users...)
	var ch struct{ CreateChannel struct{ ID string } }
	if err := p.Client(c.token(t, "w0", false)).Run(ctx, `mutation($m: [ID!]) {
		createChannel(input: {type: "messaging", id: "f3", members: $m}) { id } }`, client.Vars{"m": users[1:]}, &ch); err != nil {
		t.Fatal(err)
	}
	l := &mutationLoad{acked: map[string][]string{}, errs: map[string]int{}, stop: make(chan struct{})}
	for i, u := range users {
		cl := p.Client(c.token(t, u, false))
		if i%2 == 0 {
			l.writer("sendMessage", func(ctx context.Context, i int) (string, *client.Response, error) {
				r, err := cl.Do(ctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
					client.Vars{"c": ch.CreateChannel.ID, "t": fmt.Sprintf("%s %d", u, i)})
				var out struct{ SendMessage struct{ ID string } }
				if err == nil && len(r.Errors) == 0 {
					err = r.Decode(&out)
				}
				return out.SendMessage.ID, r, err
			})
		} else {
			l.writer("addActivity", func(ctx context.Context, i int) (string, *client.Response, error) {
				r, err := cl.Do(ctx, `mutation($f: ID!, $o: String!) { addActivity(feed: $f, input: {verb: "post", object: $o}) { id } }`,
					client.Vars{"f": "user:" + u, "o": fmt.Sprintf("%s %d", u, i)})
				var out struct{ AddActivity struct{ ID string } }
				if err == nil && len(r.Errors) == 0 {
					err = r.Decode(&out)
				}
				return out.AddActivity.ID, r, err
			})
		}
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(l.stop)
			l.wg.Wait()
		}
	}
	defer stop()
	l.waitFor(t, 60)

	// Crash PostgreSQL under load; writers keep going.
	if err := c.pg.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "requests fail while PostgreSQL is down", func() bool { return l.failures.Load() >= 20 })
	ackedBefore := l.total.Load()
	if err := c.pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// Resumed: a mutation started after PostgreSQL was back succeeded.
	var resumed time.Duration
	eventually(t, 30*time.Second, "service resumes after PostgreSQL is back", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, at := range l.successes {
			if at.After(back) {
				resumed = at.Sub(back)
				return true
			}
		}
		return false
	})
	l.waitFor(t, 60)
	stop()

	errs := func() map[string]int { l.mu.Lock(); defer l.mu.Unlock(); return maps.Clone(l.errs) }()
	for k := range errs {
		if strings.Contains(k, "transport:") || strings.Contains(k, "without a code") {
			t.Errorf("a request failed without a GraphQL error code: %s (%d times)", k, errs[k])
		}
		// The database being away is not a bug to report: clients are told
		// to retry.
		if strings.HasSuffix(k, ": INTERNAL") {
			t.Errorf("a request failed as INTERNAL while PostgreSQL was down, not UNAVAILABLE: %s (%d times)", k, errs[k])
		}
	}
	if !p.Alive() || p.Pid() != pid {
		t.Fatal("the Brook process did not survive")
	}
	if log := p.Log(); strings.Contains(log, "panic") {
		t.Fatalf("the Brook process logged a panic:\n%s", tailString(log, 4000))
	}
	// Nothing acknowledged is lost.
	lost := 0
	for kind, table := range map[string]string{"sendMessage": "messages", "addActivity": "activities"} {
		ids := l.acked[kind]
		var found int
		if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE id = ANY($1::uuid[])`, ids).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found != len(ids) {
			t.Errorf("%s: %d acknowledged, %d in PostgreSQL", kind, len(ids), found)
		}
		lost += len(ids) - found
	}
	// The outbox work of the failed period is retried and done.
	var state string
	eventually(t, 90*time.Second, "the outbox drains with nothing parked", func() bool {
		var ready, parked int
		// Periodic jobs (repair passes, sweeps, retention) always wait
		// for their next run: their rows are the ones with the fixed id.
		rows, err := c.DB.Query(ctx, `SELECT id, kind, parked_at IS NOT NULL FROM jobs`)
		if err != nil {
			return false
		}
		for rows.Next() {
			var id uuid.UUID
			var kind string
			var isParked bool
			if rows.Scan(&id, &kind, &isParked) != nil {
				continue
			}
			switch {
			case isParked:
				parked++
			case id != workers.PeriodicJobID(kind):
				ready++
			}
		}
		rows.Close()
		state = fmt.Sprintf("%d waiting, %d parked", ready, parked)
		return ready == 0 && parked == 0
	}, &state)
	failed := int64(0)
	for _, n := range errs {
		failed += int64(n)
	}
	t.Logf("%s: PostgreSQL SIGKILLed and restarted under 6 writers: %d mutations acknowledged (%d before the crash), %d failed with a code %v, "+
		"0 hangs, 0 dropped connections, the Brook process kept running (pid %d); first success %s after PostgreSQL was back; lost %d",
		name, l.total.Load(), ackedBefore, failed, errs, pid, resumed.Round(time.Millisecond), lost)
}
