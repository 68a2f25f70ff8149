package redisguard_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/redisguard"
)

func startRedis(t *testing.T) (*local.Redis, *redis.Client, *redisguard.Guard) {
	t.Helper()
	return startRedisWith(t, nil)
}

// startRedisWith is startRedis with the guard's metrics registered on reg.
func startRedisWith(t *testing.T, reg prometheus.Registerer) (*local.Redis, *redis.Client, *redisguard.Guard) {
	t.Helper()
	r, err := local.StartRedis(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	opts, _ := redis.ParseURL(r.URL())
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	g := redisguard.New(redisguard.Options{Timeout: 40 * time.Millisecond, VerifyTimeout: 300 * time.Millisecond, ProbeInterval: 20 * time.Millisecond,
		Registerer: reg})
	g.Attach(rdb)
	t.Cleanup(g.Close)
	return r, rdb, g
}

// A frozen Redis (SIGSTOP) costs a few short timeouts, then commands fail
// at once; the circuit closes when it answers again, after the recovery
// hooks, and commands work.
func TestFrozenRedisOpensTheCircuit(t *testing.T) {
	r, rdb, g := startRedis(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var recovered atomic.Int32
	g.OnRecover(func(ctx context.Context) error {
		recovered.Add(1)
		return rdb.Incr(ctx, "epoch").Err() // the hook's commands pass the open circuit
	})
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			_ = r.Thaw()
		}
	}()
	start := time.Now()
	for i := 0; i < 3; i++ {
		err := rdb.Get(ctx, "k").Err()
		if !errors.Is(err, redisguard.ErrUnavailable) {
			t.Fatalf("command %d on a frozen redis: %v, want ErrUnavailable", i, err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("three commands on a frozen redis took %v", took)
	}
	// The guard checks with a longer PING (300 ms) before it opens.
	select {
	case <-g.Opened():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit still closed 5 s after three timeouts")
	}
	select {
	case <-g.Opened():
	default:
		t.Fatal("Opened() not closed while open")
	}
	start = time.Now()
	for i := 0; i < 100; i++ {
		if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redisguard.ErrUnavailable) {
			t.Fatalf("open circuit: %v", err)
		}
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("100 refused commands took %v", took)
	}
	if err := r.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	deadline := time.Now().Add(5 * time.Second)
	for !g.Healthy() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !g.Healthy() {
		t.Fatal("circuit did not close after Redis came back")
	}
	if recovered.Load() != 1 {
		t.Fatalf("recovery hook ran %d times, want 1", recovered.Load())
	}
	if v, err := rdb.Get(ctx, "epoch").Result(); err != nil || v != "1" {
		t.Fatalf("epoch after recovery: %q %v", v, err)
	}
}

// A Redis that is slow, not hung, keeps the circuit closed: commands
// past their deadline fail one by one, but the check's longer PING is
// answered.
func TestSlowRedisKeepsTheCircuitClosed(t *testing.T) {
	r, rdb, g := startRedis(t)
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(150*time.Millisecond, func() { _ = r.Thaw() })
	for i := 0; i < 3; i++ {
		if err := rdb.Get(context.Background(), "k").Err(); !errors.Is(err, redisguard.ErrUnavailable) {
			t.Fatalf("command %d past its deadline: %v", i, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the check's PING is answered at 150 ms
	if !g.Healthy() {
		t.Fatal("a slow Redis opened the circuit")
	}
	if err := rdb.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// Error replies and missing keys are answers: they never open the circuit.
func TestRepliesKeepTheCircuitClosed(t *testing.T) {
	_, rdb, g := startRedis(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := rdb.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("get missing: %v", err)
		}
		if err := rdb.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil || errors.Is(err, redisguard.ErrUnavailable) {
			t.Fatalf("unknown command: %v", err)
		}
	}
	if !g.Healthy() {
		t.Fatal("replies opened the circuit")
	}
}

// A caller that gives up (its context ends) says nothing about Redis.
func TestCallerCancellationIsNotAFailure(t *testing.T) {
	r, rdb, g := startRedis(t)
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Thaw() }()
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_ = rdb.Get(ctx, "k").Err()
		cancel()
	}
	if !g.Healthy() {
		t.Fatal("callers' own deadlines opened the circuit")
	}
}

// Background work gets the longer timeout.
func TestBackgroundTimeout(t *testing.T) {
	r, rdb, _ := startRedis(t)
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = r.Thaw()
	}()
	// Frozen for 150 ms: a request-path command (40 ms) would fail, a
	// background one (1 s) waits for the answer.
	if err := rdb.Set(redisguard.Background(context.Background()), "k", "v", 0).Err(); err != nil {
		t.Fatalf("background command across a short freeze: %v", err)
	}
}

// outage freezes Redis until the guard has opened the circuit, then thaws
// it.
func outage(t *testing.T, r *local.Redis, rdb *redis.Client, g *redisguard.Guard) {
	t.Helper()
	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Thaw() }()
	for i := 0; i < 3; i++ {
		_ = rdb.Get(context.Background(), "k").Err()
	}
	select {
	case <-g.Opened():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit still closed 5 s after three timeouts")
	}
}

// waitUntil reports whether cond held within d.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// metric returns the value of the gauge or counter name in reg.
func metric(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A recovery step that keeps failing while Redis answers (an INCR refused
// out of memory under noeviction, or read-only after a failover) neither
// holds the circuit open nor makes the steps that succeeded run again; it
// is retried alone, less and less often. Announcements (the bus's gap)
// run once, after the circuit closed. Before, every probe (20 ms here)
// ran every step again, the bus's gap among them, and the circuit stayed
// open until the failing one succeeded.
func TestFailingStepNeitherHoldsTheCircuitNorRepeatsOthers(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, rdb, g := startRedisWith(t, reg)
	var earlier, later, announced atomic.Int32
	var announcedOpen atomic.Bool
	var refusing atomic.Bool
	refusing.Store(true)
	var mu sync.Mutex
	var attempts []time.Time
	g.OnRecover(func(context.Context) error {
		earlier.Add(1)
		return nil
	})
	g.OnRecover(func(context.Context) error {
		later.Add(1)
		mu.Lock()
		attempts = append(attempts, time.Now())
		mu.Unlock()
		if refusing.Load() {
			return errors.New("OOM command not allowed when used memory > 'maxmemory'")
		}
		return nil
	})
	g.AfterRecover(func() {
		announced.Add(1)
		if !g.Healthy() || earlier.Load() != announced.Load() {
			announcedOpen.Store(true)
		}
	})
	outage(t, r, rdb, g)
	if !waitUntil(5*time.Second, g.Healthy) {
		t.Fatalf("circuit still open 5 s after Redis answered, with one step failing: the step that succeeded ran %d times, the failing one %d",
			earlier.Load(), later.Load())
	}
	// Background: its longer timeout keeps a loaded machine from failing it.
	if err := rdb.Set(redisguard.Background(context.Background()), "k", "v", 0).Err(); err != nil {
		t.Fatalf("a command after the circuit closed: %v", err)
	}
	// Five attempts take at least 20+40+80+160 ms of backoff.
	if !waitUntil(5*time.Second, func() bool { return later.Load() >= 5 }) {
		t.Fatalf("the failing step was tried %d times in 5 s, want it retried", later.Load())
	}
	if n := earlier.Load(); n != 1 {
		t.Fatalf("the step that succeeded ran %d times while another failed, want 1", n)
	}
	mu.Lock()
	for i := 1; i < 5; i++ {
		// Timers fire late, never early: the waits are lower bounds.
		if gap, want := attempts[i].Sub(attempts[i-1]), 20*time.Millisecond<<(i-1); gap < want {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, want)
		}
	}
	mu.Unlock()
	if v := metric(t, reg, "brook_redis_recovery_steps_pending"); v != 1 {
		t.Fatalf("brook_redis_recovery_steps_pending = %v while a step fails, want 1", v)
	}
	if v := metric(t, reg, "brook_redis_recovery_step_failures_total"); v < 5-1 {
		t.Fatalf("brook_redis_recovery_step_failures_total = %v after %d failed attempts", v, later.Load())
	}

	refusing.Store(false)
	if !waitUntil(10*time.Second, func() bool { return metric(t, reg, "brook_redis_recovery_steps_pending") == 0 }) {
		t.Fatal("the step still pending 10 s after it stopped failing")
	}
	done := later.Load()
	// Nothing is owed now: no step runs again (ten probe intervals).
	time.Sleep(200 * time.Millisecond)
	if n, m := earlier.Load(), later.Load(); n != 1 || m != done {
		t.Fatalf("after the repair: steps ran %d and %d times, want 1 and %d", n, m, done)
	}

	// The next outage owes every step again, each once.
	outage(t, r, rdb, g)
	if !waitUntil(5*time.Second, g.Healthy) {
		t.Fatal("circuit still open 5 s after the second outage")
	}
	if n, m := earlier.Load(), later.Load(); n != 2 || m != done+1 {
		t.Fatalf("after the second outage: steps ran %d and %d times, want 2 and %d", n, m, done+1)
	}
	// The announcement runs just after the circuit closed.
	waitUntil(time.Second, func() bool { return announced.Load() >= 2 })
	if n := announced.Load(); n != 2 || announcedOpen.Load() {
		t.Fatalf("announcement ran %d times over two outages (want 2); before the circuit closed or the steps ran: %v", n, announcedOpen.Load())
	}
}
