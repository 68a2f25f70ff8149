package api

// A pushed subscription's events are executed from its plan: an idle
// subscription keeps only what executing its next event needs.
//
// gqlgen runs a subscription as one operation for its whole life: its
// response handler holds the OperationContext with its collected fields,
// the root field's context with its arguments and result, the response
// context and the executor's closures, about 2 KB per subscription, idle
// for hours. Here the start executes the operation once, as any other
// (limits, metrics, the resolver that starts the stream), and keeps only
// the validated operation (plan) and the stream's channel. At each event
// the operation is dispatched again from a fresh copy of the plan, with
// the resolver standing in by that channel (subscriptionSource), which
// holds the event already: the same execution, so the same bytes, and
// what it allocates is the event's garbage.

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/internal/stream"
)

// replayKey marks the context of an event's execution (replay): its value
// is the operation.
type replayKey struct{}

// replaying reports whether ctx is an event's execution from a plan: the
// operation's start has already run the operation interceptors' work
// (limits, counts, spans), which must not run again per event.
func replaying(ctx context.Context) bool {
	op, _ := ctx.Value(replayKey{}).(*wsOperation)
	return op != nil
}

// replay executes the operation's plan for the event its stream has just
// put in its channel, and returns the response (nil at the end of the
// stream). Called with dmu held.
func (op *wsOperation) replay() *graphql.Response {
	ctx := context.WithValue(op.base, replayKey{}, op)
	responses, ctx := op.conn.exec.DispatchOperation(ctx, planOf(op.plan.rc))
	return responses(ctx)
}

// planOf returns a fresh OperationContext of the validated operation rc,
// sharing its document and variables: what an execution fills in (the
// collected fields) is that execution's. Listed field by field, as the
// struct holds a lock. The start's timings (Stats) are the first
// subscriber's once plans are shared: nothing reads them after the start.
func planOf(rc *graphql.OperationContext) *graphql.OperationContext {
	return &graphql.OperationContext{
		RawQuery: rc.RawQuery, Variables: rc.Variables, OperationName: rc.OperationName, Doc: rc.Doc,
		Extensions: rc.Extensions, Headers: rc.Headers, Operation: rc.Operation,
		DisableIntrospection: rc.DisableIntrospection, RecoverFunc: rc.RecoverFunc,
		ResolverMiddleware: rc.ResolverMiddleware, RootResolverMiddleware: rc.RootResolverMiddleware,
		Stats: rc.Stats,
	}
}

// plan is a validated subscription operation that the subscriptions of
// the same document, operation and variables execute their events from.
type plan struct {
	rc   *graphql.OperationContext
	key  planKey
	refs int // under plans.mu
}

// planKey is a document (its address: gqlgen's query cache gives every
// subscription of the same query the same one), an operation name and
// the variables, encoded.
type planKey struct {
	doc  *ast.QueryDocument
	vars string
}

// plans are the plans in use, shared by (document, operation, variables):
// what an event's execution reads of the operation depends on nothing
// else (the caller is in the execution's context), so 10,000 subscribers
// of one channel hold one plan.
type plans struct {
	mu sync.Mutex
	m  map[planKey]*plan
}

// get returns the plan of the validated operation rc, made from rc when
// no operation of the same key has one; release it when done.
func (ps *plans) get(rc *graphql.OperationContext) *plan {
	vars, err := json.Marshal(rc.Variables)
	if err != nil {
		return &plan{rc: planOf(rc)} // not shared: never listed
	}
	k := planKey{doc: rc.Doc, vars: rc.OperationName + "\x00" + string(vars)}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.m[k]; p != nil {
		p.refs++
		return p
	}
	if ps.m == nil {
		ps.m = map[planKey]*plan{}
	}
	p := &plan{rc: planOf(rc), key: k, refs: 1}
	ps.m[k] = p
	return p
}

// release gives p back (nil: none).
func (ps *plans) release(p *plan) {
	if p == nil || p.key.doc == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p.refs--; p.refs == 0 {
		delete(ps.m, p.key)
	}
}

// subscriptionSource is the field middleware of a subscription's root
// field on a WebSocket operation: at the start it records the field and
// the channel the resolver returns; executing an event (replay) it
// returns that channel in place of the resolver.
func subscriptionSource(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Object != "Subscription" {
		return next(ctx)
	}
	if op, _ := ctx.Value(replayKey{}).(*wsOperation); op != nil {
		return op.src, nil
	}
	op, ok := stream.TransportFrom(ctx).(*wsOperation)
	if !ok {
		return next(ctx)
	}
	// The field first: the stream may end with an error (Fail) as soon
	// as the resolver has started it.
	op.mu.Lock()
	op.root = fc.Field
	op.mu.Unlock()
	res, err := next(ctx)
	if err == nil && res != nil {
		op.src = res // read under dmu once run has set plan
	}
	return res, err
}

// untracedEvents runs an operation interceptor (the tracing extension's
// span per operation) for operations, not for a subscription's events
// executed from its plan: their spans were never the operation's. It
// wraps only OperationInterceptor, all the tracing extension is.
type untracedEvents struct {
	graphql.HandlerExtension
	op graphql.OperationInterceptor
}

func (u untracedEvents) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if replaying(ctx) {
		return next(ctx)
	}
	return u.op.InterceptOperation(ctx, next)
}
