package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// gorillaWebsocket is gqlgen's WebsocketImplementation over gorilla/websocket
// (gqlgen itself ships one only for coder/websocket).
//
// Idle connections stay small: reads and writes go through the two 4 KB
// buffers net/http already holds for the connection, and keep-alive pings
// come from one goroutine for all connections.
type gorillaWebsocket struct {
	upgrader     websocket.Upgrader
	writeTimeout time.Duration
	shuttingDown *atomic.Bool
	pinger       *pinger
}

func newGorillaWebsocket(origins *originPolicy, writeTimeout time.Duration, shuttingDown *atomic.Bool, p *pinger) gorillaWebsocket {
	return gorillaWebsocket{
		pinger: p,
		upgrader: websocket.Upgrader{
			// 0: read through the 4 KB buffer net/http has already
			// allocated for the connection (it stays referenced by the
			// server's connection while the handler runs) rather than
			// allocating another.
			ReadBufferSize: 0,
			// Likewise for writes: net/http's 4 KB write buffer for the
			// connection stays referenced by its server connection while the
			// handler runs, so gorilla writing through it costs no memory,
			// where a buffer from a shared pool would come on top of it.
			WriteBufferSize:   0,
			WriteBufferPool:   nil,
			HandshakeTimeout:  10 * time.Second,
			CheckOrigin:       origins.allowWebsocket,
			EnableCompression: false,
		},
		writeTimeout: writeTimeout,
		shuttingDown: shuttingDown,
	}
}

// Accept upgrades the request, offering the GraphQL subprotocols gqlgen speaks.
func (g gorillaWebsocket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	up := g.upgrader
	up.Subprotocols = opts.Subprotocols
	conn, err := up.Upgrade(w, r, opts.ResponseHeader)
	if err != nil {
		return nil, err
	}
	c := &gorillaConn{conn: conn, writeTimeout: g.writeTimeout, shuttingDown: g.shuttingDown, state: wsStateFrom(r.Context())}
	if c.state != nil {
		c.state.conn = c
	}
	if g.pinger != nil {
		g.pinger.add(c)
	}
	return c, nil
}

// gorillaConn adapts a gorilla connection to gqlgen's WebsocketConn, with
// the optional read limit and read deadline so payload limits and missing
// pongs are enforced.
type gorillaConn struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	shuttingDown *atomic.Bool
	state        *wsState

	// writeMu serializes writes: gqlgen's (under its own lock) and the
	// shared pinger's.
	writeMu sync.Mutex
	// ops are the operation ids the client started whose operations have
	// not ended.
	opsMu sync.Mutex
	ops   map[string]struct{}
	// Keep-alive state, owned by the pinger (see pinger.run).
	nextPing     time.Time
	receivedPong atomic.Bool
	pinger       *pinger
}

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
)

func (c *gorillaConn) Close() error {
	if c.pinger != nil {
		c.pinger.remove(c)
	}
	return c.conn.Close()
}

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.conn.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived, websocket.CloseGoingAway) {
		return t, nil, transport.ErrWebsocketClosed
	}
	if err != nil || t != websocket.TextMessage {
		return t, r, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return t, nil, err
	}
	if id, dup := c.track(data); dup {
		// graphql-transport-ws: a subscribe under an id still running
		// closes the connection with 4409. (gqlgen would start a second
		// stream under the id, and the first could never be completed.)
		c.writeMu.Lock()
		_ = c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeDuplicateOperation, "Subscriber for "+truncateRaw(id)+" already exists"),
			time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.conn.Close()
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, bytes.NewReader(data), nil
}

// closeDuplicateOperation is graphql-transport-ws's close code for a
// subscribe whose id is already in use.
const closeDuplicateOperation = 4409

// track follows the operation ids the client starts, and reports a start
// under an id still in use: from the client's subscribe until the server's
// complete or error for it (which gqlgen sends when the operation has
// ended, also after the client's own complete).
func (c *gorillaConn) track(data []byte) (id string, dup bool) {
	var m struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if json.Unmarshal(data, &m) != nil || m.ID == "" {
		return "", false
	}
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	switch m.Type {
	case "subscribe", "start":
		if _, running := c.ops[m.ID]; running {
			return m.ID, true
		}
		if c.ops == nil {
			c.ops = map[string]struct{}{}
		}
		c.ops[m.ID] = struct{}{}
	}
	return "", false
}

// ended forgets an operation id the server completed or failed.
func (c *gorillaConn) ended(msg wireMessage) {
	if msg.typ != "complete" && msg.typ != "error" {
		return
	}
	c.opsMu.Lock()
	delete(c.ops, msg.id)
	c.opsMu.Unlock()
}

// WriteJSON writes one message. The write deadline means a client that has
// stopped reading cannot hold a writer forever: the write fails and the
// connection closes. gqlgen only reports a failed write and carries on, so
// the connection is closed here: that ends gqlgen's read loop, which tears
// the connection and its subscriptions down. (Without it, a client that
// stops reading stayed connected, its writes failing, until the missed
// pongs ended it, twice the ping interval (40 s) later; found while
// writing fault test 5.)
func (c *gorillaConn) WriteJSON(v any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	var err error
	if msg, ok := wireMessageOf(v); ok {
		c.ended(msg)
		err = c.writeWireMessage(msg)
	} else {
		err = c.conn.WriteJSON(v)
	}
	if err != nil {
		_ = c.conn.Close()
	}
	return err
}

// wireMessage is a graphql-transport-ws or graphql-ws message as gqlgen
// hands it to WriteJSON.
type wireMessage struct {
	payload []byte
	id, typ string
}

// wireLayout is where gqlgen's (unexported) message structs keep their
// fields, found once per type by name; types that do not look like one
// are encoded with encoding/json.
var wireLayout sync.Map // reflect.Type -> *[3]int (payload, id, type), or nil

func wireMessageOf(v any) (wireMessage, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return wireMessage{}, false
	}
	rv = rv.Elem()
	l, ok := wireLayout.Load(rv.Type())
	if !ok {
		l = layoutOf(rv.Type())
		wireLayout.Store(rv.Type(), l)
	}
	idx, _ := l.(*[3]int)
	if idx == nil {
		return wireMessage{}, false
	}
	return wireMessage{payload: rv.Field(idx[0]).Bytes(), id: rv.Field(idx[1]).String(), typ: rv.Field(idx[2]).String()}, true
}

// layoutOf accepts exactly the shape of gqlgen's message structs:
// Payload json.RawMessage "payload,omitempty", ID string "id,omitempty",
// Type (a string) "type", and nothing else that JSON would encode.
func layoutOf(t reflect.Type) *[3]int {
	want := map[string]string{"Payload": "payload,omitempty", "ID": "id,omitempty", "Type": "type"}
	var idx [3]int
	found := 0
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, ok := want[f.Name]
		if !ok || f.Tag.Get("json") != tag {
			return nil
		}
		switch f.Name {
		case "Payload":
			if f.Type != reflect.TypeOf(json.RawMessage(nil)) {
				return nil
			}
			idx[0] = i
		case "ID":
			if f.Type.Kind() != reflect.String {
				return nil
			}
			idx[1] = i
		case "Type":
			if f.Type.Kind() != reflect.String {
				return nil
			}
			idx[2] = i
		}
		found++
	}
	if found != 3 {
		return nil
	}
	return &idx
}

// writeWireMessage writes msg as encoding/json would, straight into the
// connection's (pooled) write buffer: gqlgen has already encoded the
// payload (an operation's response, once per delivery), so it is not
// re-encoded and re-validated a second time here.
func (c *gorillaConn) writeWireMessage(msg wireMessage) error {
	if !plainJSONString(msg.id) || !plainJSONString(msg.typ) {
		return c.conn.WriteJSON(map[string]any{"payload": json.RawMessage(msg.payload), "id": msg.id, "type": msg.typ})
	}
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if err := writeWire(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// writeWire writes msg's JSON to w; msg's strings need no escaping.
func writeWire(w io.Writer, msg wireMessage) error {
	var arr [96]byte
	buf := append(arr[:0], '{')
	if len(msg.payload) > 0 {
		buf = append(buf, `"payload":`...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if _, err := w.Write(msg.payload); err != nil {
			return err
		}
		buf = append(buf[:0], ',')
	}
	if msg.id != "" {
		buf = append(buf, `"id":"`...)
		buf = append(buf, msg.id...)
		buf = append(buf, `",`...)
	}
	buf = append(buf, `"type":"`...)
	buf = append(buf, msg.typ...)
	buf = append(buf, `"}`...)
	_, err := w.Write(buf)
	return err
}

// plainJSONString: s needs no escaping in a JSON string (encoding/json
// would also escape <, > and &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// WriteClose sends a close frame. gqlgen closes with 1000 whenever the
// connection's context ends; the code says why instead: 1001 (going away)
// when the server is shutting down, so clients reconnect, and 4403 when the
// token has expired, so clients sign in again.
func (c *gorillaConn) WriteClose(code int, message string) error {
	if code == websocket.CloseNormalClosure {
		switch {
		case c.shuttingDown.Load():
			code, message = websocket.CloseGoingAway, "server shutting down"
		case c.state != nil && !c.state.expires.IsZero() && !time.Now().Before(c.state.expires):
			code, message = closeForbidden, "Forbidden: the token has expired; reconnect with a new one"
		}
	}
	if len(message) > 120 {
		message = message[:120]
	}
	// WriteControl may be called alongside other writes.
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

// SetReadDeadline is called by gqlgen with the zero time when a pong
// arrives (its own ping loops are off: PingPongInterval is 0).
func (c *gorillaConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.receivedPong.Store(true)
	}
	return c.conn.SetReadDeadline(t)
}

// pinger keeps every WebSocket connection of a node alive from one
// goroutine, where gqlgen would start one (with its own ticker) per
// connection. It does what gqlgen's loops do: graphql-transport-ws
// connections get a ping every interval and must answer within two (the
// read deadline closes them otherwise); graphql-ws connections get a
// keep-alive ("ka") message every keepAlive.
type pinger struct {
	interval, keepAlive time.Duration

	mu    sync.Mutex
	conns map[*gorillaConn]struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newPinger(interval, keepAlive time.Duration) *pinger {
	p := &pinger{interval: interval, keepAlive: keepAlive, conns: map[*gorillaConn]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *pinger) period(c *gorillaConn) time.Duration {
	if c.conn.Subprotocol() == transportWS {
		return p.interval
	}
	return p.keepAlive
}

func (p *pinger) add(c *gorillaConn) {
	c.pinger = p
	now := time.Now()
	c.nextPing = now.Add(p.period(c))
	if c.conn.Subprotocol() == transportWS {
		// The first pong is due within two intervals, as with gqlgen.
		_ = c.conn.SetReadDeadline(now.Add(2 * p.interval))
	}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *pinger) remove(c *gorillaConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Close stops the pinger.
func (p *pinger) Close() {
	close(p.stop)
	<-p.done
}

// transportWS is the graphql-transport-ws subprotocol.
const transportWS = "graphql-transport-ws"

// pingTick is how often the pinger looks for connections due a ping;
// connections are pinged at their own phase, so pings spread out.
const pingTick = time.Second

func (p *pinger) run() {
	defer close(p.done)
	t := time.NewTicker(pingTick)
	defer t.Stop()
	var due []*gorillaConn
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			due = due[:0]
			p.mu.Lock()
			for c := range p.conns {
				if !now.Before(c.nextPing) {
					c.nextPing = now.Add(p.period(c))
					due = append(due, c)
				}
			}
			p.mu.Unlock()
			for _, c := range due {
				c.ping(now)
			}
			clear(due)
		}
	}
}

// ping sends one keep-alive message. A connection busy writing is alive
// enough and is skipped this time; a write that cannot finish within a
// second (a client that stopped reading) fails, and the missing pong then
// closes the connection.
func (c *gorillaConn) ping(now time.Time) {
	if !c.writeMu.TryLock() {
		return
	}
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(now.Add(time.Second))
	if c.conn.Subprotocol() != transportWS {
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ka"}`))
		return
	}
	_ = c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
	// As gqlgen: a pong since the last ping extends the deadline by two
	// intervals; without one, the deadline set earlier stands.
	if c.receivedPong.Swap(false) {
		_ = c.conn.SetReadDeadline(now.Add(2 * c.pinger.interval))
	}
}

// originPolicy decides which browser origins may call Brook. Requests
// without an Origin header (servers, mobile apps, CLI tools) are not
// browser cross-site requests and are allowed.
type originPolicy struct {
	any       bool
	allowed   map[string]bool
	localhost bool
}

// newOriginPolicy parses a comma-separated list of origins; "*" allows any.
// Dev mode also allows any http://localhost or 127.0.0.1 origin.
func newOriginPolicy(list string, dev bool) *originPolicy {
	p := &originPolicy{allowed: map[string]bool{}, localhost: dev}
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			p.any = true
		default:
			p.allowed[strings.ToLower(o)] = true
		}
	}
	return p
}

// allows reports whether a browser page at origin may call Brook at host.
func (p *originPolicy) allows(origin, host string) bool {
	if origin == "" || p.any || p.allowed[strings.ToLower(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	if p.localhost {
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

// allowWebsocket is the upgrader's CheckOrigin: it refuses cross-site
// WebSocket hijacking from pages on origins not allowed.
func (p *originPolicy) allowWebsocket(r *http.Request) bool {
	return p.allows(r.Header.Get("Origin"), r.Host)
}
