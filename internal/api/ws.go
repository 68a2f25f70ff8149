package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/stream"
)

// Brook's WebSocket transport speaks graphql-transport-ws (the protocol of
// the graphql-ws library, Apollo Client and urql) and the legacy graphql-ws
// protocol of subscriptions-transport-ws, over gorilla/websocket.
//
// It takes the place of gqlgen's transport.Websocket, which a connection
// cost four goroutines (the HTTP handler reading, one waiting for the
// connection to end, one per operation, and the operation's stream) and
// net/http's two 4 KB buffers. Here the HTTP handler returns once the
// connection is upgraded; one goroutine reads the connection, running no
// GraphQL code itself, so its stack stays small; an idle connection holds a
// 1 KB read buffer and borrows a write buffer only while it writes;
// keep-alive pings come from one goroutine for all connections; a
// subscription's events are executed and written from its resolver's
// stream goroutine (resolvers.Delivery), and shared between subscribers
// where they can be (shared.go); and each response is written once,
// straight into the frame.

// wsInitTimeout is how long a new connection has to send connection_init.
const wsInitTimeout = 10 * time.Second

// wsReadBuffer is a connection's read buffer, held for the connection's
// life. Clients send few messages, and small ones (a subscribe is a few
// hundred bytes); larger ones are read through it, in a few more reads.
const wsReadBuffer = 256

// wsWriteBuffers lends connections a frame buffer while they write.
var wsWriteBuffers = &sync.Pool{}

func (s *Server) newUpgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:   wsReadBuffer,
		WriteBufferPool:  wsWriteBuffers,
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.origins.allowWebsocket,
		Subprotocols:     []string{transportWS, legacyWS},
	}
}

// wsTransport is the gqlgen transport of WebSocket upgrades. Going through
// gqlgen's handler hands the connection the executor with every extension
// the HTTP transports have.
type wsTransport struct{ s *Server }

var _ graphql.Transport = wsTransport{}

func (wsTransport) Supports(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

func (t wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.s.acceptWebsocket(w, r, exec)
}

// wsAccept tells serveWebsocket whether the transport took the connection
// over (and with it the connection's place in Server.wsConns).
type wsAccept struct{ accepted bool }

type wsAcceptKey struct{}

// acceptWebsocket upgrades the request and leaves the connection to a
// goroutine of its own.
func (s *Server) acceptWebsocket(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	acc, _ := r.Context().Value(wsAcceptKey{}).(*wsAccept)
	if acc == nil {
		http.Error(w, "WebSocket upgrades are served at /query", http.StatusBadRequest)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	acc.accepted = true
	c := &wsConn{s: s, ws: ws, exec: exec, legacy: ws.Subprotocol() != transportWS,
		state: &wsState{connID: uuid.Must(uuid.NewV7()).String()}, info: requestFrom(r.Context())}
	// The request's context ends when the handler returns; the
	// connection's ends when the connection or the server does, or its
	// token expires (wsInit).
	ctx, cancel := context.WithCancel(connContext{Context: s.wsCtx, values: context.WithoutCancel(r.Context())})
	c.ctx, c.cancel = context.WithValue(ctx, wsStateKey{}, c.state), cancel
	c.state.end = cancel
	if c.info != nil {
		c.info.detach()
	}
	go c.serve()
}

// connContext is the parent of a connection's context: it ends with the
// server's WebSocket context and carries the upgrade request's values.
// Deriving the connection's context from it puts the connection straight
// among the server context's children, where watching that context with
// AfterFunc cost every connection a context more (values must come from
// a context without cancellation, which Value makes them).
type connContext struct {
	context.Context
	values context.Context
}

func (c connContext) Value(key any) any {
	if v := c.values.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// wsConn is one WebSocket connection.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	exec   graphql.GraphExecutor
	legacy bool
	state  *wsState
	info   *requestInfo
	// ctx is the connection's context, the signed-in caller's after
	// connection_init; cancel ends it. Only the reading goroutine sets ctx.
	ctx      context.Context
	cancel   context.CancelFunc
	signedIn bool

	// writeMu serializes writes: the operations' and the pinger's.
	writeMu sync.Mutex
	// preparing holds the connection's reader while an operation it
	// started is parsed, validated and started: one at a time per
	// connection, so a client cannot put every core to validating.
	preparing chan struct{}

	mu sync.Mutex
	// ops are the running operations, looked up by id: a slice, as a
	// connection runs few (at most MaxSubscriptionsPerConnection) and a
	// map of even one entry costs an idle connection a few hundred bytes.
	ops    []*wsOperation
	closed bool

	// Keep-alive state, owned by the pinger (see pinger.run).
	nextPing     time.Time
	receivedPong atomic.Bool
}

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
	// dmu serializes deliveries. Until responses is set, Ready only
	// counts (pending) what the start then delivers.
	dmu       sync.Mutex
	conn      *wsConn
	ctx       context.Context
	responses graphql.ResponseHandler
	pending   int
	done      bool
	// shareKey and shareDoc say with which operations its responses may
	// be shared.
	shareKey string
	shareDoc *ast.QueryDocument
	// filling is the shared response this operation makes next.
	filling *sharedResponse

	mu sync.Mutex
	// errs end the operation with an error message rather than complete.
	errs gqlerror.List
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
	op.fail(op.conn.s.presentResolverError(ctx, err))
}

var _ stream.Transport = (*wsOperation)(nil)

// Ready delivers the event the stream has just put in its channel, or the
// end of the stream.
func (op *wsOperation) Ready() {
	op.dmu.Lock()
	defer op.dmu.Unlock()
	if op.responses == nil {
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
	if op.responses == nil || op.shareKey == "" || op.done || op.completed.Load() || op.ctx.Err() != nil {
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

// next runs the operation's response handler: ok is false at the end of
// the stream, or after a panic (the operation's error).
func (op *wsOperation) next() (resp *graphql.Response, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			resp, ok = nil, false
			op.fail(op.recovered(r))
		}
	}()
	resp = op.responses(op.ctx)
	return resp, resp != nil
}

func (op *wsOperation) fail(errs ...*gqlerror.Error) {
	op.mu.Lock()
	op.errs = append(op.errs, errs...)
	op.mu.Unlock()
}

// serve signs the connection in, then hands it to a reader of its own.
func (c *wsConn) serve() {
	reading := false
	defer func() {
		if !reading {
			c.end()
		}
	}()
	defer c.recoverConn()
	if c.init() {
		// Signing in (a token to verify, Redis to ask) grew this
		// goroutine's stack; the reader that waits on the connection for
		// hours starts with a small one.
		reading = true
		go c.readAll()
	}
}

// readAll reads the connection until it ends, then cleans up after it.
// Each message is handled on a goroutine of its own while the reader
// waits: decoding it and starting an operation grow a stack to 8 KB, which
// the reader, waiting on the connection for hours, would keep (the
// runtime shrinks only stacks three quarters unused). Clients send few
// messages: a goroutine each costs less than the stack.
func (c *wsConn) readAll() {
	defer c.end()
	defer c.recoverConn()
	for {
		data, start, err := c.readFrame()
		handled := make(chan bool, 1)
		go c.handle(data, start, err, handled)
		if !<-handled {
			return
		}
	}
}

// handle decodes and handles one message read by readAll, and sends on
// handled whether the connection goes on.
func (c *wsConn) handle(data []byte, start time.Time, err error, handled chan<- bool) {
	goOn := false
	defer func() { handled <- goOn }()
	defer c.recoverConn()
	var m wsMessage
	if err == nil {
		m, err = decodeMessage(data)
	}
	goOn = c.next(m, start, err)
}

// recoverConn turns a panic while serving the connection into its end
// (1011, internal error), logged, where it would stop the whole node.
func (c *wsConn) recoverConn() {
	if r := recover(); r != nil {
		c.s.log.Error("websocket: panic", "panic", r, "stack", string(debug.Stack()))
		c.close(websocket.CloseInternalServerErr, "internal error")
	}
}

// end cleans up after the connection.
func (c *wsConn) end() {
	s := c.s
	c.close(websocket.CloseNormalClosure, "")
	c.cancel()
	s.wsClose(c.ctx)
	s.metrics.connections.Dec()
	if c.info != nil {
		c.info.release()
	}
	s.wsConns.Done()
}

// read returns the next message and when it started arriving.
func (c *wsConn) read() (wsMessage, time.Time, error) {
	data, start, err := c.readFrame()
	if err != nil {
		return wsMessage{}, start, err
	}
	m, err := decodeMessage(data)
	return m, start, err
}

// readFrame returns the next message's bytes and when they started
// arriving.
func (c *wsConn) readFrame() ([]byte, time.Time, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, time.Time{}, err
	}
	start := graphql.Now()
	data, err := io.ReadAll(r)
	return data, start, err
}

// readFailed ends the connection after a failed read.
func (c *wsConn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errBadMessage):
		c.protocolError(err.Error())
	case errors.As(err, &ne) && ne.Timeout() && !c.signedIn:
		if c.legacy {
			c.protocolError("connection initialisation timeout")
		} else {
			c.close(closeInitTimeout, "Connection initialisation timeout")
		}
	default:
		// The client left, a pong is overdue, or a message was over the
		// limit (gorilla has sent 1009).
		c.close(websocket.CloseNormalClosure, "")
	}
}

// init waits for connection_init and signs the connection in.
func (c *wsConn) init() bool {
	c.s.metrics.connections.Inc()
	// The connection closes when its context ends: at shutdown (before
	// connection_init too) and when its token expires.
	context.AfterFunc(c.ctx, func() { c.close(websocket.CloseNormalClosure, "") })
	c.ws.SetReadLimit(c.s.opts.MaxWebsocketMessage)
	_ = c.ws.SetReadDeadline(time.Now().Add(wsInitTimeout))
	for {
		m, _, err := c.read()
		if err != nil {
			c.readFailed(err)
			return false
		}
		switch {
		case m.Type == "connection_init":
			return c.signIn(m)
		case !c.legacy && m.Type == "ping":
			c.send("", "pong", m.Payload)
		case !c.legacy && m.Type == "pong":
		case !c.legacy && m.Type == "subscribe":
			c.close(closeUnauthorized, "Unauthorized")
			return false
		case c.legacy && m.Type == "connection_terminate":
			c.close(websocket.CloseNormalClosure, "terminated")
			return false
		default:
			c.protocolError("unexpected message " + strconv.Quote(m.Type) + " before connection_init")
			return false
		}
	}
}

// signIn answers connection_init: the connection is acknowledged and runs
// as the payload's token says, or is closed with the reason.
func (c *wsConn) signIn(m wsMessage) bool {
	var payload transport.InitPayload
	if len(m.Payload) > 0 {
		if err := json.Unmarshal(m.Payload, &payload); err != nil {
			c.protocolError("the connection_init payload must be an object")
			return false
		}
	}
	ctx, refusal := c.s.wsInit(c.ctx, payload)
	if refusal != nil {
		if c.legacy {
			c.sendConnectionError(refusal.reason)
		}
		c.close(refusal.code, refusal.reason)
		return false
	}
	c.ctx, c.signedIn = ctx, true
	_ = c.ws.SetReadDeadline(time.Time{})
	c.send("", "connection_ack", nil)
	if c.legacy {
		c.send("", "ka", nil)
	}
	c.s.pinger.add(c)
	return true
}

// next handles one message read (or the failure to read one); false: the
// connection is over.
func (c *wsConn) next(m wsMessage, start time.Time, err error) bool {
	if err != nil {
		c.readFailed(err)
		return false
	}
	switch {
	case m.Type == "subscribe" && !c.legacy, m.Type == "start" && c.legacy:
		return c.start(m, start)
	case m.Type == "complete" && !c.legacy, m.Type == "stop" && c.legacy:
		// The client is done with the operation: nothing more is sent for
		// it, and its id may be used again at once.
		c.mu.Lock()
		op := c.removeOp(m.ID, nil)
		c.mu.Unlock()
		if op != nil {
			op.completed.Store(true)
			op.cancel()
		}
	case m.Type == "ping" && !c.legacy:
		c.send("", "pong", m.Payload)
	case m.Type == "pong" && !c.legacy:
		// The next pong is due within two intervals of this one.
		c.receivedPong.Store(true)
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.s.pinger.interval))
	case m.Type == "connection_init" && !c.legacy:
		c.close(closeTooManyInits, "Too many initialisation requests")
		return false
	case m.Type == "connection_terminate" && c.legacy:
		c.close(websocket.CloseNormalClosure, "terminated")
		return false
	default:
		c.protocolError("unexpected message " + strconv.Quote(m.Type))
		return false
	}
	return true
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
		op.ctx, op.responses = ctx, responses
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
	op.cancel()
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

// send writes one message {"id":id,"type":typ,"payload":<payload parts>}
// (id and payload when not empty). A write that fails (a client that stopped
// reading runs into the write timeout) closes the connection.
func (c *wsConn) send(id, typ string, payload ...[]byte) bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.opts.WebsocketWriteTimeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err == nil {
		err = writeEnvelope(w, id, typ, payload)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = c.ws.Close()
		return false
	}
	return true
}

// close ends the connection with a close frame, once, and its operations
// with it. A normal close says why instead when it has a reason: 1001
// (going away) when the server is shutting down, so clients reconnect, and
// 4403 when the token has expired, so clients sign in again.
func (c *wsConn) close(code int, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	ops := c.ops
	c.ops = nil
	c.mu.Unlock()
	for _, op := range ops {
		op.cancel()
	}
	if code == websocket.CloseNormalClosure {
		switch {
		case c.s.shuttingDown.Load():
			code, reason = websocket.CloseGoingAway, "server shutting down"
		case !c.state.expires.IsZero() && !time.Now().Before(c.state.expires):
			code, reason = closeForbidden, "Forbidden: the token has expired; reconnect with a new one"
		}
	}
	reason = truncateUTF8(reason, 120)
	// WriteControl may be called alongside other writes.
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = c.ws.Close()
	c.s.pinger.remove(c)
}

// truncateUTF8 cuts s to at most n bytes, on a character boundary (a close
// reason must be valid UTF-8).
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
