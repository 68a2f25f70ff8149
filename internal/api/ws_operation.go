package api

// A WebSocket operation (wsOperation): its start, parsing and validation,
// the delivery of its responses and subscription events (stream.Transport),
// and its end.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/stream"
)

// wsOperation is one operation a client started.
type wsOperation struct {
	id     string
	cancel context.CancelFunc
	// rc is the operation's context once it is valid.
	rc *graphql.OperationContext
	// completed: the client completed the operation.
	completed atomic.Bool

	// pushed: the subscription's stream calls Ready after each event (see
	// SubscriptionDelivery). Set while the operation starts.
	pushed bool
	// dmu serializes deliveries. Until responses or plan is set, Ready
	// only counts (pending) what the start then delivers.
	dmu       sync.Mutex
	conn      *wsConn
	ctx       context.Context
	responses graphql.ResponseHandler
	pending   int
	done      bool
	// base is the operation's own context: its cancellation, the
	// connection's values and the transport, none of the executor's
	// state. Its stream keeps it (stream.Context), and each event is
	// executed under it.
	base context.Context
	// plan is the validated operation a pushed subscription executes each
	// event from, in place of responses (see replay), shared with the
	// operations of the same document and variables: an idle
	// subscription holds it, its stream's channel (src, as its resolver
	// returned it) and its root field (root, set under mu), not gqlgen's
	// state of a running operation.
	plan *plan
	src  any
	root graphql.CollectedField
	// shareKey and shareDoc say with which operations its responses may
	// be shared.
	shareKey string
	shareDoc *ast.QueryDocument
	// filling is the shared response this operation makes next.
	filling *sharedResponse

	mu sync.Mutex
	// errs end the operation with an error message rather than complete.
	errs gqlerror.List
	// release runs when the operation ends (onEnd); ended: it has.
	release func()
	ended   bool
	// listed is the plan this operation gives back as it ends.
	listed *plan
}

// onEnd arranges for f to run when the operation ends, and reports true;
// false when it has already ended.
func (op *wsOperation) onEnd(f func()) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.ended || op.release != nil {
		return false
	}
	op.release = f
	return true
}

// end cancels the operation's context and runs what onEnd arranged, once.
// Every operation ends through it: completed by the client, finished, or
// with its connection.
func (op *wsOperation) end() {
	op.cancel()
	op.mu.Lock()
	f, p := op.release, op.listed
	op.release, op.listed, op.ended = nil, nil, true
	op.mu.Unlock()
	op.conn.s.plans.release(p)
	if f != nil {
		f()
	}
}

// Delivery returns how the subscription's stream hands events over (see
// stream.Transport): each is executed and written from the stream's
// goroutine, and no goroutine of the transport waits on the stream's
// channel.
func (op *wsOperation) Delivery() stream.Delivery {
	op.pushed = true
	return op
}

// Fail makes err the reason the subscription ends: its client gets it in
// an error message in place of complete. An error Brook does not
// recognize is INTERNAL and logged, never shown as the client's mistake.
func (op *wsOperation) Fail(ctx context.Context, err error) {
	if graphql.GetFieldContext(ctx) == nil {
		// A stream keeps the operation's context (Context), not its
		// field's: the error has the field's path, as the resolver's
		// context would have given it.
		op.mu.Lock()
		root := op.root
		op.mu.Unlock()
		if root.Field != nil {
			ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Subscription", Field: root})
		}
	}
	op.fail(op.conn.s.presentResolverError(ctx, err))
}

// Context returns the operation's own context (see base).
func (op *wsOperation) Context() context.Context { return op.base }

// started reports whether the start has handed over how events are
// delivered; call it with dmu held.
func (op *wsOperation) started() bool { return op.responses != nil || op.plan != nil }

var _ stream.Transport = (*wsOperation)(nil)

// Ready delivers the event the stream has just put in its channel, or the
// end of the stream.
func (op *wsOperation) Ready() {
	op.dmu.Lock()
	defer op.dmu.Unlock()
	if !op.started() {
		op.pending++
		return
	}
	op.deliverOne()
}

// Take delivers ev with the response another operation made for the same
// event and selection, when the selection can be shared (see shareKey). The
// first operation to deliver an event makes the response; the others wait
// for it.
func (op *wsOperation) Take(ev any) bool {
	if ev == nil {
		return false
	}
	op.dmu.Lock()
	defer op.dmu.Unlock()
	if !op.started() || op.shareKey == "" || op.done || op.completed.Load() || op.ctx.Err() != nil {
		return false
	}
	e, mine := op.conn.s.shared.get(sharedKey{event: ev, doc: op.shareDoc, key: op.shareKey}, op.ctx.Done())
	if mine {
		op.filling = e // resolved by the Ready (or Abandon) that follows
		return false
	}
	// The filler may end before it resolves the entry: then this
	// operation executes the event itself. (Most find it resolved: the
	// first receive, on its own, takes no lock, where the select locks
	// channels a thousand streams share.)
	select {
	case <-e.done:
	default:
		select {
		case <-e.done:
		case <-e.fillerDone:
			return false
		case <-op.ctx.Done():
			return false
		}
	}
	if e.payload == nil || op.completed.Load() {
		return false
	}
	op.conn.send(op.id, op.conn.nextType(), e.payload)
	return true
}

// Abandon gives up the shared response this operation was to make: its
// stream ended before it put the event in its channel.
func (op *wsOperation) Abandon() {
	op.dmu.Lock()
	defer op.dmu.Unlock()
	if op.filling != nil {
		op.filling.resolve(nil)
		op.filling = nil
	}
}

// deliverOne executes the operation for the next event and sends the
// response; called with dmu held. A shared response it makes is handed
// to the operations waiting for it before its own write, which a slow
// client can hold up.
func (op *wsOperation) deliverOne() {
	fill := op.filling
	op.filling = nil
	resolve := func(payload []byte) {
		if fill != nil {
			fill.resolve(payload)
			fill = nil
		}
	}
	defer resolve(nil) // a panic, or the end of the stream
	if op.done {
		return
	}
	resp, ok := op.next()
	if !ok {
		op.done = true
		resolve(nil)
		op.conn.finish(op)
		return
	}
	var payload []byte
	if fill != nil {
		payload = sharedPayload(resp)
		resolve(payload)
	}
	switch {
	case op.completed.Load():
	case payload != nil:
		op.conn.send(op.id, op.conn.nextType(), payload)
	default:
		op.conn.sendResponse(op.id, resp)
	}
}

// next runs the operation's response handler, or executes its plan for
// the event: ok is false at the end of the stream, or after a panic (the
// operation's error).
func (op *wsOperation) next() (resp *graphql.Response, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			resp, ok = nil, false
			op.fail(op.recovered(r))
		}
	}()
	if op.plan != nil {
		resp = op.replay()
	} else {
		resp = op.responses(op.ctx)
	}
	return resp, resp != nil
}

func (op *wsOperation) fail(errs ...*gqlerror.Error) {
	op.mu.Lock()
	op.errs = append(op.errs, errs...)
	op.mu.Unlock()
}

// start begins an operation, in a goroutine of its own.
func (c *wsConn) start(m wsMessage, start time.Time) bool {
	if m.ID == "" {
		c.protocolError(m.Type + " without an id")
		return false
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	if c.findOp(m.ID) >= 0 {
		c.mu.Unlock()
		c.close(closeDuplicateOperation, "Subscriber for "+truncateRaw(m.ID)+" already exists")
		return false
	}
	ctx, cancel := context.WithCancel(c.ctx)
	op := &wsOperation{id: m.ID, cancel: cancel, conn: c, ctx: ctx}
	op.base = stream.WithTransport(ctx, op)
	c.ops = append(c.ops, op)
	c.mu.Unlock()
	if c.preparing == nil {
		c.preparing = make(chan struct{}, 1)
	}
	c.preparing <- struct{}{}
	go c.run(ctx, op, m.Payload, start)
	return true
}

// run parses, validates and executes one operation and sends its
// responses, then complete, or error when it failed.
func (c *wsConn) run(ctx context.Context, op *wsOperation, payload json.RawMessage, start time.Time) {
	responses, ctx, subscription := c.prepare(ctx, op, payload, start)
	<-c.preparing
	switch {
	case responses == nil:
		c.finish(op)
	case subscription && op.pushed:
		// Its stream delivers each event (Ready); what it sent while the
		// operation started is delivered now.
		op.dmu.Lock()
		if op.src != nil {
			// Each event is executed from the plan (replay): the start's
			// execution, and all it holds, is dropped here.
			op.plan = c.s.plans.get(op.rc)
			op.rc, op.ctx = op.plan.rc, op.base
			op.mu.Lock()
			ended := op.ended
			if !ended {
				op.listed = op.plan
			}
			op.mu.Unlock()
			if ended {
				c.s.plans.release(op.plan)
			}
		} else {
			op.ctx, op.responses = ctx, responses
		}
		for ; op.pending > 0 && !op.done; op.pending-- {
			op.deliverOne()
		}
		op.dmu.Unlock()
	case subscription:
		// A subscription waits for its events for hours: in a goroutine
		// whose stack has not grown by parsing, validating and resolving.
		go c.deliver(ctx, op, responses)
	default:
		c.deliver(ctx, op, responses)
	}
}

// prepare parses and validates an operation and starts it; responses is
// nil when it has already failed.
func (c *wsConn) prepare(ctx context.Context, op *wsOperation, payload json.RawMessage, start time.Time) (responses graphql.ResponseHandler, _ context.Context, subscription bool) {
	defer op.recover()
	ctx = graphql.StartOperationTrace(ctx)
	params := &graphql.RawParams{}
	if err := decodeParams(payload, params); err != nil {
		op.fail(c.exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("the %s payload is not a GraphQL request: %v", op.id, err)}).Errors...)
		return nil, ctx, false
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		// Before execution (a parse or validation error): an error message.
		op.fail(c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs).Errors...)
		return nil, ctx, false
	}
	op.rc, op.shareKey, op.shareDoc = rc, shareKey(rc), rc.Doc
	ctx = stream.WithTransport(graphql.WithOperationContext(ctx, rc), op)
	responses, ctx = c.exec.DispatchOperation(ctx, rc)
	return responses, ctx, rc.Operation != nil && rc.Operation.Operation == ast.Subscription
}

// deliver sends an operation's responses until it ends.
func (c *wsConn) deliver(ctx context.Context, op *wsOperation, responses graphql.ResponseHandler) {
	defer c.finish(op)
	defer op.recover()
	for {
		resp := responses(ctx)
		if resp == nil || op.completed.Load() || !c.sendResponse(op.id, resp) {
			return
		}
	}
}

// recover turns a panic of the operation into its error.
func (op *wsOperation) recover() {
	if r := recover(); r != nil {
		op.fail(op.recovered(r))
	}
}

func (op *wsOperation) recovered(r any) *gqlerror.Error {
	var err error = fmt.Errorf("panic: %v", r)
	if op.rc != nil {
		err = op.rc.Recover(op.ctx, r)
	}
	var gqlErr *gqlerror.Error
	if !errors.As(err, &gqlErr) {
		gqlErr = &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": CodeInternal}}
	}
	return gqlErr
}

// findOp returns the index in c.ops of the operation with the id, or -1.
// Call it with c.mu held.
func (c *wsConn) findOp(id string) int {
	return slices.IndexFunc(c.ops, func(op *wsOperation) bool { return op.id == id })
}

// removeOp takes the operation with the id out of c.ops and returns it;
// when only is not nil, only if it is that one. Call it with c.mu held.
func (c *wsConn) removeOp(id string, only *wsOperation) *wsOperation {
	i := c.findOp(id)
	if i < 0 || (only != nil && c.ops[i] != only) {
		return nil
	}
	op := c.ops[i]
	c.ops = slices.Delete(c.ops, i, i+1)
	return op
}

// finish ends an operation: complete, or error with why it failed. Nothing
// is sent when the whole connection is ending.
func (c *wsConn) finish(op *wsOperation) {
	c.mu.Lock()
	c.removeOp(op.id, op)
	closed := c.closed
	c.mu.Unlock()
	op.end()
	if closed || op.completed.Load() || c.ctx.Err() != nil {
		return
	}
	op.mu.Lock()
	errs := op.errs
	op.mu.Unlock()
	if len(errs) == 0 {
		c.send(op.id, "complete", nil)
		return
	}
	b, err := json.Marshal(errs)
	if err != nil {
		b = []byte(`[{"message":"internal error"}]`)
	}
	c.send(op.id, "error", b)
}
