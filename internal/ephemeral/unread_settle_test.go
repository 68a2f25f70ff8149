package ephemeral_test

import (
	"context"
	"testing"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/store"
)

// Totals that a write to the counters returns are trusted only once a
// failed write has been settled (the epoch moved). Redis out of memory
// under noeviction refuses the settling INCR, but runs a script that
// writes nothing, such as a retried job's bump: its totals come from a
// hash that missed the failed write, and must not be reported known
// (the caller then reads PostgreSQL). This matters more since the guard
// closes its circuit while the settling step is still refused.
func TestTotalsUnknownUntilAFailedWriteIsSettled(t *testing.T) {
	ctx := context.Background()
	r, err := local.StartRedis(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	s, err := ephemeral.Open(ctx, ephemeral.Options{RedisURL: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// alice's counters, complete: one unread message in c1.
	_, _, gen, err := s.ReadUnread(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildUnread(ctx, "alice", gen, []store.UnreadRow{{Channel: "c1", LastSeq: 1, Members: 2}}, 1000); err != nil {
		t.Fatal(err)
	}
	if _, complete, _, err := s.ReadUnread(ctx, "alice"); err != nil || !complete {
		t.Fatalf("counters after the rebuild: complete %v, %v", complete, err)
	}
	rdb := s.Redis()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	// The second message's bump is refused: the counters miss it.
	if _, err := s.BumpUnread(ctx, "c1", 2, []string{"alice"}, nil); err == nil {
		t.Fatal("bump out of memory succeeded")
	}
	// The first message's job, retried, bumps nothing new: no write.
	totals, err := s.BumpUnread(ctx, "c1", 1, []string{"alice"}, nil)
	if err != nil {
		t.Fatalf("a bump that writes nothing, out of memory: %v", err)
	}
	if totals[0].Known {
		t.Fatalf("totals %+v while the failed write is unsettled; want unknown (the truth is 2)", totals[0])
	}
	p := &store.ReadPosition{ChannelID: "c1", UserID: "alice", Seq: 0}
	if got, err := s.RecordRead(ctx, p); err != nil || got.Known {
		t.Fatalf("read position that writes nothing: %+v, %v; want unknown", got, err)
	}

	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleUnread(ctx); err != nil {
		t.Fatal(err)
	}
	if _, complete, _, err := s.ReadUnread(ctx, "alice"); err != nil || complete {
		t.Fatalf("counters after the epoch moved: complete %v, %v; want a rebuild", complete, err)
	}
}
