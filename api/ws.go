package api

import (
	"io"
	"net/http"
	"net/url"
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
// Idle connections stay small: reads use a 1 KB buffer and writes borrow a
// buffer from a shared pool only while a message is being written.
type gorillaWebsocket struct {
	upgrader     websocket.Upgrader
	writeTimeout time.Duration
	shuttingDown *atomic.Bool
}

// writeBuffers is shared by every connection's writes.
var writeBuffers = &sync.Pool{}

func newGorillaWebsocket(origins *originPolicy, writeTimeout time.Duration, shuttingDown *atomic.Bool) gorillaWebsocket {
	return gorillaWebsocket{
		upgrader: websocket.Upgrader{
			ReadBufferSize:    1024,
			WriteBufferSize:   4096,
			WriteBufferPool:   writeBuffers,
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
	return &gorillaConn{conn: conn, writeTimeout: g.writeTimeout, shuttingDown: g.shuttingDown, state: wsStateFrom(r.Context())}, nil
}

// gorillaConn adapts a gorilla connection to gqlgen's WebsocketConn, with
// the optional read limit and read deadline so payload limits and missing
// pongs are enforced.
type gorillaConn struct {
	conn         *websocket.Conn
	writeTimeout time.Duration
	shuttingDown *atomic.Bool
	state        *wsState
}

var (
	_ transport.WebsocketConn          = (*gorillaConn)(nil)
	_ transport.WebsocketReadLimiter   = (*gorillaConn)(nil)
	_ transport.WebsocketReadDeadliner = (*gorillaConn)(nil)
)

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.conn.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseNoStatusReceived, websocket.CloseGoingAway) {
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, r, err
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
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	err := c.conn.WriteJSON(v)
	if err != nil {
		_ = c.conn.Close()
	}
	return err
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
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *gorillaConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

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
