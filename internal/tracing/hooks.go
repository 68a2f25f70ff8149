package tracing

// The hooks each library offers, bound to one node's provider: pgx's
// tracer, go-redis' hook, and the HTTP handler. (The GraphQL extension is
// in graphql.go.)

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
)

// PGX returns the pgx tracer that makes a span of every statement run
// under a traced context, or nil when p is nil. Statements are recorded
// without their arguments (message texts, tokens).
func (p *Provider) PGX() pgx.QueryTracer {
	if p == nil {
		return nil
	}
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(p.tp), otelpgx.WithTrimSQLInSpanName(),
		otelpgx.WithDisableConnectionDetailsInAttributes())
}

// InstrumentRedis adds go-redis' tracing hook to rdb (nothing when p is
// nil): a span per command or pipeline, named by the command, without its
// arguments and without the caller's file and line (which costs a stack
// walk per command).
func (p *Provider) InstrumentRedis(rdb redis.UniversalClient) error {
	if p == nil {
		return nil
	}
	err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(p.tp), redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false), redisotel.WithDialFilter(true))
	if err != nil {
		return fmt.Errorf("tracing: redis hook: %w", err)
	}
	return nil
}

// connectionKey holds the span of the WebSocket connection an operation
// arrived on.
type connectionKey struct{}

// HTTP wraps h (returns it as is when p is nil) so that every request is
// a server span. Brook is a public endpoint: a client's traceparent is
// linked, not adopted, so clients cannot pick trace ids or force
// sampling. A WebSocket connection is one span too, but not the parent of
// its operations: a connection lives for hours, and each operation starts
// a trace of its own linked to it. /healthz and /metrics are not traced.
func (p *Provider) HTTP(h http.Handler) http.Handler {
	if p == nil {
		return h
	}
	traced := otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(p.tp), otelhttp.WithPropagators(Propagator),
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
	tracer := p.Tracer()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/metrics":
			h.ServeHTTP(w, r)
		case isUpgrade(r):
			_, span := tracer.Start(r.Context(), "WebSocket "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithNewRoot())
			defer span.End()
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), connectionKey{}, span.SpanContext())))
		default:
			traced.ServeHTTP(w, r)
		}
	})
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
