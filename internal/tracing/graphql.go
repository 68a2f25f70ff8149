package tracing

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL returns the gqlgen extension that makes a span of every
// operation, or nil when p is nil. Add it before the extensions whose
// work the span should cover.
func (p *Provider) GraphQL() graphql.HandlerExtension {
	if p == nil {
		return nil
	}
	return operations{tracer: p.Tracer()}
}

// operations is the span-per-operation gqlgen extension. A query or
// mutation's span covers its execution; a subscription's covers its start
// (its events belong to the traces of the writes that published them).
type operations struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = operations{}

func (operations) ExtensionName() string                          { return "BrookTracing" }
func (operations) Validate(schema graphql.ExecutableSchema) error { return nil }

func (o operations) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil {
		return next(ctx)
	}
	op := oc.Operation
	field := rootField(op)
	name := string(op.Operation) + " " + field
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("graphql.operation.type", string(op.Operation)),
		attribute.String("graphql.operation.name", oc.OperationName),
		attribute.String("brook.graphql.field", field))}
	if conn, ok := ctx.Value(connectionKey{}).(trace.SpanContext); ok {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: conn}))
	}
	ctx, span := o.tracer.Start(ctx, name, opts...)
	h := next(ctx)
	if op.Operation == ast.Subscription {
		span.End()
		return h
	}
	ended := false
	return func(rctx context.Context) *graphql.Response {
		// The transport's context need not be the one above: run under
		// the span either way.
		resp := h(trace.ContextWithSpan(rctx, span))
		if !ended {
			ended = true
			if resp != nil && len(resp.Errors) > 0 {
				span.SetStatus(codes.Error, resp.Errors[0].Message)
			}
			span.End()
		}
		return resp
	}
}

// rootField is an operation's first root field ("addActivity"), the name
// its span goes by: an operation name is the client's choice.
func rootField(op *ast.OperationDefinition) string {
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			return f.Name
		}
	}
	return "fragment"
}
