package bus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/internal/redisguard"
)

// guardedNode returns a bus on a private Redis, behind a guard, as a Brook
// node has (the guard's timings shortened).
func guardedNode(t *testing.T) (*local.Redis, *redis.Client, *redisguard.Guard, *bus.Bus) {
	t.Helper()
	r, err := local.StartRedis(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	opts, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	g := redisguard.New(redisguard.Options{Timeout: 40 * time.Millisecond, VerifyTimeout: 300 * time.Millisecond, ProbeInterval: 20 * time.Millisecond})
	g.Attach(rdb)
	t.Cleanup(g.Close)
	b := bus.New(rdb, bus.Options{Buffer: 16, Health: g})
	t.Cleanup(func() { _ = b.Close() })
	return r, rdb, g, b
}

// When Redis answers again after an outage but refuses a recovery step's
// write (chat's SettleUnread INCR, out of memory under noeviction), each
// subscriber gets one gap, once the circuit has closed, so that what it
// does about the gap may use Redis; and publishes pass while the step is
// retried. Before, the gap came as a step before the circuit closed, and
// again at every probe (20 ms here) for as long as the later step failed,
// with the circuit open all along.
func TestOneGapPerOutageWhileARecoveryStepFails(t *testing.T) {
	r, rdb, g, b := guardedNode(t)
	ctx := context.Background()
	var refused, done atomic.Int32
	// Registered after the bus, as chat's is; a round trip that takes its
	// time (100 ms), so that a gap sent before the step would arrive while
	// the circuit is still open.
	g.OnRecover(func(ctx context.Context) error {
		time.Sleep(100 * time.Millisecond)
		if err := rdb.Incr(ctx, "epoch").Err(); err != nil {
			refused.Add(1)
			return err
		}
		done.Add(1)
		return nil
	})
	s, err := b.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Incr(ctx, "epoch").Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("INCR out of memory: %v, want OOM", err)
	}

	if err := r.Freeze(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_ = rdb.Get(ctx, "k").Err()
	}
	select {
	case <-g.Opened():
	case <-time.After(5 * time.Second):
		_ = r.Thaw()
		t.Fatal("circuit still closed 5 s after three timeouts")
	}
	if err := r.Thaw(); err != nil {
		t.Fatal(err)
	}

	if ev := receive(t, s); !ev.Gap {
		t.Fatalf("first event after the outage: %+v, want a gap", ev)
	}
	// A subscriber reads Redis about a gap (calls take their held
	// signals).
	healthy := g.Healthy()
	if err := rdb.Get(ctx, "k").Err(); !healthy || !errors.Is(err, redis.Nil) {
		t.Fatalf("at the gap: circuit closed %v, Redis read %v; want closed and served", healthy, err)
	}
	// The step is retried (and refused) meanwhile.
	waitFor(t, func() bool { return refused.Load() >= 3 })
	if err := b.Publish(ctx, "room", "during"); err != nil {
		t.Fatalf("publish while the step fails: %v", err)
	}
	if ev := receive(t, s); ev.Gap || string(ev.Data) != `"during"` {
		t.Fatalf("after %d refused attempts of the step: %+v, want the message and no other gap", refused.Load(), ev)
	}

	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return done.Load() == 1 })
	if err := b.Publish(ctx, "room", "repaired"); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, s); ev.Gap || string(ev.Data) != `"repaired"` {
		t.Fatalf("after the step succeeded: %+v, want the message and no gap", ev)
	}
}
