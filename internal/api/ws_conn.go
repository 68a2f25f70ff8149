package api

// A WebSocket connection (wsConn): the upgrade, the read loop, sign-in
// (connection_init), the handling of each message, writes and the close.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// wsInitTimeout is how long a new connection has to send connection_init.
const wsInitTimeout = 10 * time.Second

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
	ctx, cancel := context.WithCancel(connContext{Context: s.wsCtx, info: c.info})
	c.ctx, c.cancel = context.WithValue(ctx, wsStateKey{}, c.state), cancel
	c.state.end = cancel
	if c.info != nil {
		c.info.detach()
	}
	go c.serve()
}

// connContext is the parent of a connection's context: it ends with the
// server's WebSocket context and carries the upgrade request's info (all a
// connection's operations read of the request). Deriving the connection's
// context from it puts the connection straight among the server context's
// children, where watching that context with AfterFunc cost every
// connection a context more; and it holds no more of the request: keeping
// the request's whole context (net/http's, the middlewares') cost every
// idle connection about 0.5 KB.
type connContext struct {
	context.Context
	info *requestInfo
}

func (c connContext) Value(key any) any {
	if _, ok := key.(requestKey); ok && c.info != nil {
		return c.info
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
			op.end()
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
		op.end()
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
