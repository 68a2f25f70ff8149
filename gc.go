package main

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// The garbage collector runs when the heap has grown by GOGC percent over
// what the last cycle found live. A Brook node's live heap is small (tens
// of megabytes for a thousand connections), so under load it collected
// every second or so, and each cycle's marking, competing for two cores
// with the requests, put latency spikes of tens of milliseconds into
// signaling and messages (seen in `make bench-calls` with GODEBUG=gctrace=1).
// A heap floor keeps the collection target at least floor bytes: small
// heaps collect less often, and heaps above floor/2 behave exactly as
// GOGC=100. It is the runtime's GOGC knob, adjusted as the live heap
// changes; GOMEMLIMIT, when set, still caps the heap.

// gcPercentFor returns the GOGC that puts the next collection at floor
// bytes, for a live heap of live bytes and roots bytes of stacks and globals
// (the runtime grows the heap by GOGC percent of both), and never below the
// default 100.
func gcPercentFor(live, roots, floor uint64) int {
	if live == 0 || floor <= 2*live+roots {
		return 100
	}
	p := math.Ceil(float64(floor-live) * 100 / float64(live+roots))
	return int(min(p, 10000))
}

// keepHeapFloor adjusts GOGC to the live heap after every collection
// until ctx ends, then restores the setting it found. Adjusting as each
// cycle ends (rather than on a timer) matters while the heap grows fast,
// as when thousands of connections open at once: a cycle that finds a much
// larger live heap than the last would otherwise set its next target with
// the old, high GOGC, and the heap overshoot the floor by hundreds of
// megabytes before the next tick.
func keepHeapFloor(ctx context.Context, floor uint64, log *slog.Logger) {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	// want is the GOGC last asked for, before any correction: small
	// moves of it are not worth a change.
	want := 100
	adjust := func() {
		metrics.Read(samples)
		var v [3]uint64
		for i, s := range samples {
			if s.Value.Kind() != metrics.KindUint64 {
				return
			}
			v[i] = s.Value.Uint64()
		}
		p := gcPercentFor(v[0], v[1]+v[2], floor)
		if p*20 >= want*19 && p*20 <= want*21 {
			return
		}
		want = p
		debug.SetGCPercent(p)
		// The runtime counts more stack than the last cycle scanned (the
		// stacks of goroutines started since), so a high GOGC can put its
		// target well above the floor: correct p by the target it made.
		if metrics.Read(goal); p > 100 && goal[0].Value.Kind() == metrics.KindUint64 {
			if g := goal[0].Value.Uint64(); g > v[0] && g > floor+floor/20 {
				p = max(100, int(float64(p)*float64(floor-min(v[0], floor))/float64(g-v[0])))
				debug.SetGCPercent(p)
			}
		}
		log.Debug("gc: heap floor", "live_bytes", v[0], "root_bytes", v[1]+v[2], "gogc", p)
	}
	adjust()
	cycles := gcCycles(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-cycles:
			adjust()
		}
	}
}

// gcSentinel is garbage made to learn when a collection has run: its
// finalizer runs after the cycle that found it unreachable.
type gcSentinel struct{ _ *byte }

// gcCycles returns a channel that receives after garbage collections
// (coalesced when the receiver is behind) until ctx ends.
func gcCycles(ctx context.Context) <-chan struct{} {
	c := make(chan struct{}, 1)
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
			if ctx.Err() != nil {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
			arm()
		})
	}
	arm()
	return c
}
