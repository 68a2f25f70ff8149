package main

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
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

// keepHeapFloor adjusts GOGC to the live heap every 100 ms until ctx ends,
// then restores the setting it found. (A collection that finds a much
// larger live heap than the last sets its next target with the old GOGC;
// the next adjustment corrects it, so the heap overshoots by at most what
// is allocated meanwhile.)
func keepHeapFloor(ctx context.Context, floor uint64, log *slog.Logger) {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	set := 100
	adjust := func() {
		metrics.Read(samples)
		var v [3]uint64
		for i, s := range samples {
			if s.Value.Kind() != metrics.KindUint64 {
				return
			}
			v[i] = s.Value.Uint64()
		}
		// Small moves are not worth a change.
		if p := gcPercentFor(v[0], v[1]+v[2], floor); p*20 < set*19 || p*20 > set*21 {
			set = p
			debug.SetGCPercent(p)
			log.Debug("gc: heap floor", "live_bytes", v[0], "root_bytes", v[1]+v[2], "gogc", p)
		}
	}
	adjust()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			adjust()
		}
	}
}
