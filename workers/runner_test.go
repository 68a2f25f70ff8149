package workers_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// A test job kind writes one row per job into a table of its own, so the
// tests can count exactly what ran and what committed.
func setupTable(t *testing.T, s *store.Store, name string) {
	t.Helper()
	_, err := s.DB().Exec(context.Background(), `CREATE TABLE IF NOT EXISTS `+name+` (job uuid PRIMARY KEY, worker int)`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.DB().Exec(context.Background(), `DROP TABLE `+name) })
}

func enqueue(t *testing.T, s *store.Store, kind string, n int) {
	t.Helper()
	err := s.InTx(context.Background(), func(tx *store.Store) error {
		for i := 0; i < n; i++ {
			if _, err := tx.EnqueueJob(context.Background(), kind, map[string]int{"i": i}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, s *store.Store, sql string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func startRunner(t *testing.T, r *workers.Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = r.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// Several runners on the queue at once run every job exactly once.
func TestRunnersShareTheQueue(t *testing.T) {
	s := env.OpenStore(t)
	setupTable(t, s, "shared_runs")
	const jobs = 500
	enqueue(t, s, "test.shared", jobs)
	var ran atomic.Int64
	for w := 0; w < 4; w++ {
		worker := w
		r := workers.New(env.OpenStore(t), nil, workers.Options{Concurrency: 2, BatchSize: 7, PollInterval: 10 * time.Millisecond})
		r.Handle("test.shared", func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
			ran.Add(1)
			// A duplicate run would violate the primary key and fail the batch.
			_, err := tx.SQL().Exec(ctx, `INSERT INTO shared_runs (job, worker) VALUES ($1, $2)`, job.ID, worker)
			return nil, err
		})
		startRunner(t, r)
	}
	brooktest.Eventually(t, "all jobs run", func() bool { return count(t, s, `SELECT count(*) FROM shared_runs`) == jobs })
	if n := count(t, s, `SELECT count(*) FROM jobs WHERE kind = 'test.shared'`); n != 0 {
		t.Fatalf("%d jobs left in the outbox", n)
	}
	if workersUsed := count(t, s, `SELECT count(DISTINCT worker) FROM shared_runs`); workersUsed < 2 {
		t.Fatalf("only %d runner did the work", workersUsed)
	}
	if ran.Load() != jobs {
		t.Fatalf("handlers ran %d times for %d jobs", ran.Load(), jobs)
	}
}

// A failing job is rolled back alone, retried with backoff, and parked
// after MaxAttempts; the other jobs of its batch commit.
func TestFailuresRetryThenPark(t *testing.T) {
	s := env.OpenStore(t)
	setupTable(t, s, "retry_runs")
	enqueue(t, s, "test.flaky", 3)
	enqueue(t, s, "test.broken", 1)
	var flakyCalls atomic.Int64
	r := workers.New(s, nil, workers.Options{Concurrency: 1, PollInterval: 10 * time.Millisecond, MaxAttempts: 2})
	r.Handle("test.flaky", func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		if _, err := tx.SQL().Exec(ctx, `INSERT INTO retry_runs (job) VALUES ($1)`, job.ID); err != nil {
			return nil, err
		}
		if job.Attempts == 0 && flakyCalls.Add(1) == 1 {
			return nil, errors.New("transient failure")
		}
		return nil, nil
	})
	r.Handle("test.broken", func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		if _, err := tx.SQL().Exec(ctx, `INSERT INTO retry_runs (job) VALUES ($1)`, job.ID); err != nil {
			return nil, err
		}
		panic("always broken")
	})
	startRunner(t, r)
	// Two flaky jobs succeed at once; the third fails, is retried after its
	// backoff (about a second), and succeeds.
	brooktest.Eventually(t, "two flaky jobs done", func() bool {
		return count(t, s, `SELECT count(*) FROM jobs WHERE kind = 'test.flaky'`) == 1
	})
	var attempts int
	var lastError string
	_ = s.DB().QueryRow(context.Background(), `SELECT attempts, last_error FROM jobs WHERE kind = 'test.flaky'`).Scan(&attempts, &lastError)
	if attempts != 1 || lastError != "transient failure" {
		t.Fatalf("failed job: attempts %d, last error %q", attempts, lastError)
	}
	deadline := time.Now().Add(15 * time.Second)
	for count(t, s, `SELECT count(*) FROM jobs WHERE kind = 'test.flaky'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("flaky job not retried")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The broken job is parked after two attempts, and visible as parked.
	brooktest.Eventually(t, "broken job parked", func() bool {
		st, err := s.JobStats(context.Background())
		return err == nil && st.Parked == 1
	})
	parked, err := s.ParkedJobs(context.Background(), 10)
	if err != nil || len(parked) != 1 || parked[0].Kind != "test.broken" || parked[0].Attempts != 2 {
		t.Fatalf("parked: %+v %v", parked, err)
	}
	// Rolled-back attempts left no rows; committed ones exactly one each.
	if n := count(t, s, `SELECT count(*) FROM retry_runs`); n != 3 {
		t.Fatalf("%d committed rows, want 3 (one per flaky job, none for failed attempts)", n)
	}
}

// Stopping the runner lets the batch in hand finish rather than abandon it.
func TestStopDrainsTheBatchInHand(t *testing.T) {
	s := env.OpenStore(t)
	setupTable(t, s, "drain_runs")
	enqueue(t, s, "test.slow", 3)
	started := make(chan struct{}, 3)
	// Room in the batch for the product's periodic jobs too (earlier tests
	// scheduled them): when one was due it took a slot, and the third slow
	// job was left for a batch that never came.
	r := workers.New(s, nil, workers.Options{Concurrency: 1, BatchSize: 10, PollInterval: 10 * time.Millisecond})
	r.Handle("test.slow", func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		started <- struct{}{}
		time.Sleep(200 * time.Millisecond)
		_, err := tx.SQL().Exec(ctx, `INSERT INTO drain_runs (job) VALUES ($1)`, job.ID)
		return nil, err
	})
	stop := startRunner(t, r)
	<-started
	stop()
	if n := count(t, s, `SELECT count(*) FROM drain_runs`); n != 3 {
		t.Fatalf("after stop: %d of 3 jobs of the batch committed", n)
	}
	if n := count(t, s, `SELECT count(*) FROM jobs WHERE kind = 'test.slow'`); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
}

// Work after commit runs only for committed jobs.
func TestAfterRunsOnlyAfterCommit(t *testing.T) {
	s := env.OpenStore(t)
	enqueue(t, s, "test.after", 2)
	var afters atomic.Int64
	r := workers.New(s, nil, workers.Options{Concurrency: 1, BatchSize: 2, PollInterval: 10 * time.Millisecond})
	r.Handle("test.after", func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		var i struct{ I int }
		if err := job.Decode(&i); err != nil {
			return nil, err
		}
		if i.I == 1 && job.Attempts == 0 {
			return func(context.Context) { afters.Add(100) }, errors.New("fails first")
		}
		return func(context.Context) { afters.Add(1) }, nil
	})
	startRunner(t, r)
	brooktest.Eventually(t, "first job done", func() bool { return afters.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if afters.Load() != 1 {
		t.Fatalf("after functions ran %d (a failed job's must not run)", afters.Load())
	}
}

// A periodic job runs on one runner at a time across the cluster.
func TestPeriodicJobIsASingleton(t *testing.T) {
	s := env.OpenStore(t)
	var runs atomic.Int64
	start := time.Now()
	for i := 0; i < 3; i++ {
		r := workers.New(env.OpenStore(t), nil, workers.Options{Concurrency: 2, PollInterval: 10 * time.Millisecond})
		r.Every("test.periodic", 300*time.Millisecond, func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
			runs.Add(1)
			return nil, nil
		})
		startRunner(t, r)
	}
	time.Sleep(1600 * time.Millisecond)
	got := runs.Load()
	elapsed := time.Since(start) // more than 1.6 s on a busy machine
	if n := count(t, s, `SELECT count(*) FROM jobs WHERE kind = 'test.periodic'`); n != 1 {
		t.Fatalf("%d rows for the periodic job, want 1", n)
	}
	// One run at the start, then one per 300 ms, whatever the number of
	// runners: three runners each running it would make about three times
	// as many.
	if most := int64(elapsed/(300*time.Millisecond)) + 1; got < 3 || got > most {
		t.Fatalf("periodic job ran %d times in %v with a 300ms interval on 3 runners, want 3 to %d", got, elapsed.Round(time.Millisecond), most)
	}
}
