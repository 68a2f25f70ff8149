package main

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, roots, floor uint64
		want               int
	}{
		{36 * mb, 0, 256 * mb, 612},       // 36 MB live collects at 256 MB, not 72
		{36 * mb, 16 * mb, 256 * mb, 424}, // stacks and globals grow the heap too
		{128 * mb, 0, 256 * mb, 100},      // half the floor: the default already reaches it
		{120 * mb, 16 * mb, 256 * mb, 100},
		{600 * mb, 0, 256 * mb, 100}, // large heaps: as GOGC=100
		{1 * mb, 0, 256 * mb, 10000}, // capped
		{0, 0, 256 * mb, 100},        // nothing measured yet
		{100 * mb, 0, 0, 100},        // no floor
		{64 * mb, 0, 256 * mb, 300},  // exactly four times
		{40 * mb, 0, 100 * mb, 150},  // 40 MB live, next at 100 MB
		{10 * mb, 0, 100 * mb, 900},  // 10 MB live, next at 100 MB
	} {
		if got := gcPercentFor(c.live, c.roots, c.floor); got != c.want {
			t.Errorf("gcPercentFor(%d MB, %d MB, %d MB) = %d, want %d", c.live/mb, c.roots/mb, c.floor/mb, got, c.want)
		}
	}
}

// The floor raises GOGC for this test binary's small heap, and the setting
// found is restored when the context ends.
func TestKeepHeapFloor(t *testing.T) {
	gogc := func() int {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return int(s[0].Value.Uint64())
	}
	before := gogc()
	runtime.GC() // the live heap is unknown until a cycle has run
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepHeapFloor(ctx, 4<<30, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := gogc()
		if p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC stayed %d with a 4 GB floor", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := gogc(); p != before {
		t.Fatalf("GOGC after the floor stopped: %d, want %d", p, before)
	}
}

// gcCycles reports each collection, and stops reporting when ctx ends.
func TestGCCyclesFollowCollections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cycles := gcCycles(ctx)
	for i := 0; i < 3; i++ {
		runtime.GC()
		select {
		case <-cycles:
		case <-time.After(5 * time.Second):
			t.Fatalf("collection %d not reported", i+1)
		}
	}
	cancel()
	runtime.GC()
	runtime.GC() // the sentinel armed before cancel may still report once
	select {
	case <-cycles:
	default:
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-cycles:
		t.Fatal("a collection reported after the context ended")
	default:
	}
}
