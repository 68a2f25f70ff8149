package workers

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/brookhq/brook/internal/tracing"
	"github.com/brookhq/brook/store"
)

// startSpan starts the span of one job run: a child of the span that
// enqueued the job, on whatever node that ran, so a request's trace shows
// the jobs it caused, and the jobs they caused, to the end. A job without
// a trace context (a periodic job, or one written untraced) starts a
// trace of its own. The job's SQL and Redis spans, and the jobs it
// enqueues, hang under it.
func (r *Runner) startSpan(ctx context.Context, job store.Job) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("brook.job.kind", job.Kind),
		attribute.String("brook.job.id", job.ID.String()),
		attribute.Int("brook.job.attempt", job.Attempts+1))}
	if job.TraceParent != "" {
		ctx = tracing.Remote(ctx, job.TraceParent, job.TraceState)
	} else {
		// The claim may run inside a traced caller (RunOnce in a test):
		// a job nobody traced is still a trace of its own.
		opts = append(opts, trace.WithNewRoot())
	}
	return r.tracer.Start(ctx, "job "+job.Kind, opts...)
}

// endSpan records how the run ended.
func endSpan(span trace.Span, err error) {
	if err != nil && err != errKeepJob {
		span.RecordError(err)
		span.SetStatus(codes.Error, "attempt failed")
	}
}

// traceAfter runs a job's after-commit effects (events it publishes,
// Redis bookkeeping) in a span of its own under the job's, so they show
// in the trace and carry it into the events.
func traceAfter(ctx context.Context, after func(context.Context)) func(context.Context) {
	if after == nil {
		return nil
	}
	parent := trace.SpanFromContext(ctx)
	return func(c context.Context) {
		c, span := parent.TracerProvider().Tracer(tracing.Name).Start(trace.ContextWithSpan(c, parent), "after commit")
		defer span.End()
		after(c)
	}
}
