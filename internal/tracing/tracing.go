// Package tracing is Brook's OpenTelemetry tracing: a per-node tracer
// provider exporting over OTLP, and the hooks that put a request's SQL
// statements (pgx), Redis commands (go-redis), GraphQL operation and HTTP
// request into one trace. Outbox jobs and bus events carry the trace on
// (store, workers and bus read the span from the context), so one trace
// shows a post, its fan-out pages on any node and the deliveries.
//
// It is off unless OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: FromEnv then returns a nil
// *Provider, whose methods return nil hooks, so nothing is installed and
// nothing runs on the hot path.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of Brook's own spans.
const Name = "github.com/brookhq/brook"

// Options name the process in its spans.
type Options struct {
	// ServiceName is service.name (default "brook"; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it).
	ServiceName string
	// InstanceID is service.instance.id, what tells the nodes of one
	// deployment apart (default: host name and process id).
	InstanceID string
}

// Provider is one node's tracer provider. A nil *Provider is tracing
// switched off: every method is safe on it and returns "no hook".
type Provider struct {
	tp *sdktrace.TracerProvider
}

// Propagator is the W3C trace context format Brook reads and writes: in
// HTTP headers, outbox rows and bus events.
var Propagator = propagation.TraceContext{}

// Enabled reports whether the standard variables ask for traces to be
// exported: an OTLP endpoint is set and the SDK is not disabled.
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// FromEnv returns a provider exporting over OTLP as the standard
// OTEL_EXPORTER_OTLP_* variables say (the exporters read them: endpoint,
// headers, timeout, compression, certificates), with the protocol of
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf, the default, or grpc). It returns nil, nil when Enabled
// is false.
func FromEnv(ctx context.Context, opts Options) (*Provider, error) {
	if !Enabled() {
		return nil, nil
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return New(ctx, exp, opts)
}

// New returns a provider that batches spans to exp (OTEL_BSP_* tune the
// batching). Shut it down to flush what it holds.
func New(ctx context.Context, exp sdktrace.SpanExporter, opts Options) (*Provider, error) {
	if opts.ServiceName == "" {
		opts.ServiceName = "brook"
	}
	if opts.InstanceID == "" {
		host, _ := os.Hostname()
		opts.InstanceID = host + "-" + strconv.Itoa(os.Getpid())
	}
	// Defaults first: the variables, read after them, win.
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", opts.ServiceName),
			attribute.String("service.instance.id", opts.InstanceID)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(rootSampler{})))
	return &Provider{tp: tp}, nil
}

// rootSampler keeps every trace a request, a job or an event starts, and
// drops those a bare SQL statement or Redis command would start: a
// worker's polling claim or a presence heartbeat outside any request is
// not worth a trace of its own, and go-redis' hook starts a span for every
// command whatever its context holds.
type rootSampler struct{}

func (rootSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind == trace.SpanKindClient {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (rootSampler) Description() string { return "BrookRoots" }

// TracerProvider returns the provider for instrumentation libraries, or
// a nil interface when p is nil.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Tracer returns Brook's own tracer, or nil when p is nil.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tp.Tracer(Name)
}

// ForceFlush exports every span ended so far.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.tp.ForceFlush(ctx); err != nil {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}

// Shutdown flushes and stops the provider; call it after the node stopped.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
