package tracing

import (
	"bytes"
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestStampRoundTrip(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5},
		TraceFlags: trace.FlagsSampled})
	ts, err := trace.ParseTraceState("brook=1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(ts))
	payload := []byte(`{"a":1}`)
	stamped := Stamp(ctx, payload)
	parent, state, got := Unstamp(stamped)
	if !bytes.Equal(got, payload) || state != "brook=1" || parent != "00-01020300000000000000000000000000-0405000000000000-01" {
		t.Fatalf("Unstamp(Stamp) = %q %q %q", parent, state, got)
	}
	back := trace.SpanContextFromContext(Remote(context.Background(), parent, state))
	if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || !back.IsRemote() || back.TraceState().Get("brook") != "1" {
		t.Fatalf("Remote: %+v", back)
	}
	// No span, or an empty signal: nothing added.
	if out := Stamp(context.Background(), payload); &out[0] != &payload[0] {
		t.Fatal("Stamp without a span copied the payload")
	}
	if out := Stamp(ctx, nil); out != nil {
		t.Fatalf("Stamp of an empty signal: %q", out)
	}
}

// Tracing off must cost nothing where every job and event passes.
func TestUntracedPathsAllocateNothing(t *testing.T) {
	ctx := context.Background()
	payload := []byte(`{"a":1}`)
	allocs := testing.AllocsPerRun(1000, func() {
		if p, s := Format(ctx); p != "" || s != "" {
			t.Fatal("Format without a span")
		}
		if _, _, out := Unstamp(payload); len(out) != len(payload) {
			t.Fatal("Unstamp changed an unstamped payload")
		}
		_ = Stamp(ctx, payload)
	})
	if allocs != 0 {
		t.Fatalf("untraced Format, Stamp and Unstamp allocate %v times", allocs)
	}
	var p *Provider
	if p.PGX() != nil || p.TracerProvider() != nil || p.GraphQL() != nil || p.InstrumentRedis(nil) != nil {
		t.Fatal("a nil provider returned a hook")
	}
}
