package tracing

// The W3C trace context in the forms Brook stores it: two strings, as in
// an outbox row, and a header line before a bus event's payload.

import (
	"bytes"
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Format returns the traceparent and tracestate of the span in ctx, or two
// empty strings when ctx holds no sampled span. It allocates nothing then.
func Format(ctx context.Context) (parent, state string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return "", ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String(), sc.TraceState().String()
}

// Remote returns ctx with the remote span context of parent and state as
// the parent of the spans started under it; ctx as is when parent is empty
// or malformed.
func Remote(ctx context.Context, parent, state string) context.Context {
	if parent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": parent}
	if state != "" {
		c["tracestate"] = state
	}
	return Propagator.Extract(ctx, c)
}

// stampMark starts a bus payload that carries a trace context: JSON never
// starts with a NUL byte, and neither does an empty wake-up.
const stampMark = 0

// Stamp returns data preceded by the trace context of ctx, or data as is
// when ctx holds no sampled span or data is empty (a bare signal).
func Stamp(ctx context.Context, data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	parent, state := Format(ctx)
	if parent == "" {
		return data
	}
	out := make([]byte, 0, 2+len(parent)+1+len(state)+len(data))
	out = append(out, stampMark)
	out = append(out, parent...)
	if state != "" {
		out = append(out, ' ')
		out = append(out, state...)
	}
	out = append(out, '\n')
	return append(out, data...)
}

// Unstamp splits what Stamp made into its trace context and payload (a
// subslice of data, not a copy). Data without a stamp comes back as is.
// It allocates nothing for unstamped data, so every node strips stamps
// whether or not it traces.
func Unstamp(data []byte) (parent, state string, payload []byte) {
	if len(data) == 0 || data[0] != stampMark {
		return "", "", data
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return "", "", data
	}
	head := string(data[1:i])
	parent, state, _ = strings.Cut(head, " ")
	return parent, state, data[i+1:]
}
