package ephemeral_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
)

// These tests move the shared unread epoch: they do not run in parallel.

// stallRedis keeps Redis busy for d (a script that spins), as a slow
// disk or a long command would, and returns once the stall has begun.
func stallRedis(t *testing.T, d time.Duration) {
	t.Helper()
	raw := redis.NewClient(&redis.Options{Addr: redisAddr(t), ReadTimeout: -1})
	t.Cleanup(func() { _ = raw.Close() })
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		close(started)
		_ = raw.Eval(context.Background(), `local t0 = redis.call('TIME')
			repeat local t = redis.call('TIME') until (t[1]-t0[1])*1000000 + (t[2]-t0[2]) > tonumber(ARGV[1])`,
			nil, d.Microseconds()).Err()
	}()
	t.Cleanup(func() { <-done })
	<-started
	time.Sleep(10 * time.Millisecond) // the script is running
}

func redisAddr(t *testing.T) string {
	t.Helper()
	o, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	return o.Addr
}

// rebuilt gives user complete counters: one channel, unread n.
func rebuilt(t *testing.T, s *ephemeral.State, user, channel string, n int64) {
	t.Helper()
	ctx := context.Background()
	_, complete, gen, err := s.ReadUnread(ctx, user)
	if err != nil || complete {
		t.Fatalf("%s: first read: complete %v, %v", user, complete, err)
	}
	if err := s.RebuildUnread(ctx, user, gen, []store.UnreadRow{{Channel: channel, LastSeq: n, Read: 0, Members: 2}}, 1000); err != nil {
		t.Fatal(err)
	}
	if _, complete, _, _ := s.ReadUnread(ctx, user); !complete {
		t.Fatalf("%s: counters incomplete after a rebuild", user)
	}
}

// A counter write that times out in a short stall of Redis invalidates
// the counters of the users it concerned, and theirs alone: the other
// users' counters stay complete after the node settles.
func TestUnreadFailedWriteInvalidatesItsUsersOnly(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	rebuilt(t, s, "stall-a", "c", 3)
	rebuilt(t, s, "stall-b", "c", 3)
	rebuilt(t, s, "stall-other", "c", 3)

	stallRedis(t, 200*time.Millisecond) // past the 50 ms budget of a request
	if _, err := s.RecordRead(ctx, &store.ReadPosition{ChannelID: "c", UserID: "stall-a", Seq: 3}); err == nil {
		t.Fatal("a counter write during the stall succeeded")
	}
	if err := s.SettleUnread(ctx); err != nil {
		t.Fatal(err)
	}
	if _, complete, _, _ := s.ReadUnread(ctx, "stall-a"); complete {
		t.Error("the counters the failed write concerned are still complete")
	}
	for _, u := range []string{"stall-b", "stall-other"} {
		if _, complete, _, _ := s.ReadUnread(ctx, u); !complete {
			t.Errorf("%s: counters invalidated by another user's failed write", u)
		}
	}
}

// A client that goes away while its counter write runs does not cut the
// write short: the write follows a committed change.
func TestUnreadWriteOutlivesItsCaller(t *testing.T) {
	s := open(t)
	rebuilt(t, s, "gone", "c", 2)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	totals, err := s.RecordRead(cctx, &store.ReadPosition{ChannelID: "c", UserID: "gone", Seq: 2})
	if err != nil || !totals.Known || totals.Total != 0 {
		t.Fatalf("record read after the caller left: %+v, %v", totals, err)
	}
}

// A rebuild that read PostgreSQL before the epoch moved (a write failed
// meanwhile, and could not even invalidate its users) is not stamped
// complete: the next read rebuilds again.
func TestUnreadRebuildAcrossAnEpochMoveIsRefused(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const user = "straddle"
	rebuilt(t, s, user, "c", 1)
	if err := s.InvalidateUnread(ctx, []string{user}); err != nil {
		t.Fatal(err)
	}
	_, _, gen, err := s.ReadUnread(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	stale := []store.UnreadRow{{Channel: "c", LastSeq: 1, Read: 0, Members: 2}} // read before the change below
	// Another node's write failed and settled: the epoch moves.
	other := open(t)
	other.MarkUnreadWriteFailed()
	if err := other.SettleUnread(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildUnread(ctx, user, gen, stale, 1000); err != nil {
		t.Fatal(err)
	}
	if counts, complete, _, _ := s.ReadUnread(ctx, user); complete {
		t.Fatalf("a rebuild from before the epoch moved is served: %+v", counts)
	}
}
