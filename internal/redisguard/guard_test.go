package redisguard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/redisguard"
)

func startRedis(t *testing.T) (*local.Redis, *redis.Client, *redisguard.Guard) {
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
	g := redisguard.New(redisguard.Options{Timeout: 40 * time.Millisecond, VerifyTimeout: 300 * time.Millisecond, ProbeInterval: 20 * time.Millisecond})
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
