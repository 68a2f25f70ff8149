package store

import (
	"context"

	"github.com/brookhq/brook/internal/tracing"
)

// traceColumns are the trace_parent and trace_state of a job enqueued
// under ctx: the span's W3C trace context, or NULLs when ctx holds no
// sampled span (tracing off costs two NULL arguments, no allocation).
func traceColumns(ctx context.Context) (parent, state any) {
	p, s := tracing.Format(ctx)
	if p == "" {
		return nil, nil
	}
	if s == "" {
		return p, nil
	}
	return p, s
}
