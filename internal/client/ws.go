package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Protocols a Conn can speak.
const (
	// TransportWS is graphql-transport-ws, the protocol of the graphql-ws library.
	TransportWS = "graphql-transport-ws"
	// LegacyWS is the older subscriptions-transport-ws protocol, named graphql-ws.
	LegacyWS = "graphql-ws"
)

// CloseError is how the server ended a connection.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket closed: %d %s", e.Code, e.Text) }

// ErrComplete is returned by Next after the server completed the operation.
var ErrComplete = errors.New("client: operation complete")

// Message is one server message for an operation.
type Message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Received is when the message was read off the socket.
	Received time.Time `json:"-"`
}

// DialOptions tunes a connection.
type DialOptions struct {
	// Payload is the connection_init payload, e.g. {"authToken": token}.
	Payload any
	// Header is sent with the upgrade request (an Origin, say).
	Header http.Header
	// Buffer is the number of messages buffered per operation (default 256).
	// A full buffer stops the reader, as a slow client would.
	Buffer int
}

// Conn is a graphql-transport-ws connection.
type Conn struct {
	ws     *websocket.Conn
	buffer int

	wmu sync.Mutex

	mu     sync.Mutex
	ops    map[string]chan Message
	nextID int
	closed *CloseError

	done chan struct{}
}

// AuthPayload is the connection_init payload that carries a token.
func AuthPayload(token string) map[string]any { return map[string]any{"authToken": token} }

// Dial opens a connection to wsURL, sends connection_init and waits for the
// server's ack. A refused connection returns a *CloseError.
func Dial(ctx context.Context, wsURL string, opts DialOptions) (*Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{TransportWS}, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 1024, WriteBufferSize: 1024}
	ws, resp, err := d.DialContext(ctx, wsURL, opts.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %d)", wsURL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("client: dial %s: %w", wsURL, err)
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	acks := make(chan Message, 4)
	c := &Conn{ws: ws, buffer: opts.Buffer, ops: map[string]chan Message{"": acks}, done: make(chan struct{})}
	init, _ := json.Marshal(opts.Payload)
	if err := c.write(Message{Type: "connection_init", Payload: init}); err != nil {
		ws.Close()
		return nil, err
	}
	go c.read()
	select {
	case m, ok := <-acks:
		if ok && m.Type == "connection_ack" {
			return c, nil
		}
		<-c.done
		if ce := c.CloseError(); ce != nil {
			return nil, ce
		}
		return nil, fmt.Errorf("client: expected connection_ack, got %q", m.Type)
	case <-ctx.Done():
		ws.Close()
		return nil, ctx.Err()
	}
}

func (c *Conn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		now := time.Now()
		if err != nil {
			ce := &CloseError{Code: websocket.CloseAbnormalClosure, Text: err.Error()}
			var wce *websocket.CloseError
			if errors.As(err, &wce) {
				ce = &CloseError{Code: wce.Code, Text: wce.Text}
			}
			c.mu.Lock()
			c.closed = ce
			for id, ch := range c.ops {
				close(ch)
				delete(c.ops, id)
			}
			c.mu.Unlock()
			return
		}
		var m Message
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		m.Received = now
		switch m.Type {
		case "ping":
			_ = c.write(Message{Type: "pong"})
			continue
		case "pong":
			continue
		}
		c.mu.Lock()
		ch := c.ops[m.ID]
		if m.Type == "complete" || m.Type == "error" {
			delete(c.ops, m.ID)
		}
		c.mu.Unlock()
		if ch == nil {
			continue
		}
		ch <- m
		if m.Type == "complete" || m.Type == "error" {
			close(ch)
		}
	}
}

func (c *Conn) write(m Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteJSON(m); err != nil {
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// CloseError says how the server closed the connection, or nil while it is open.
func (c *Conn) CloseError() *CloseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection from the client side with 1000.
func (c *Conn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

// Drop cuts the TCP connection without a close frame, as a network failure would.
func (c *Conn) Drop() error { return c.ws.NetConn().Close() }

// Subscription is one operation running on a connection.
type Subscription struct {
	// ID is the operation id on the connection.
	ID string
	// C delivers the operation's messages: next, then error or complete.
	// It is closed after error or complete, or when the connection ends.
	C    <-chan Message
	conn *Conn
}

// Subscribe starts an operation (usually a subscription).
func (c *Conn) Subscribe(query string, vars Vars) (*Subscription, error) {
	return c.start(query, vars, c.buffer)
}

// Run runs a query or mutation (not a subscription) on the connection,
// waits for its result and decodes its data into out (when not nil).
func (c *Conn) Run(ctx context.Context, query string, vars Vars, out any) error {
	op, err := c.start(query, vars, 2) // next, then complete
	if err != nil {
		return err
	}
	var result error
	for {
		r, err := op.Next(ctx)
		switch {
		case errors.Is(err, ErrComplete):
			return result
		case ctx.Err() != nil:
			_ = op.Complete()
			return err
		case err != nil:
			return err
		case r.Err() != nil:
			result = r.Err()
		case out != nil:
			result = r.Decode(out)
		}
	}
}

func (c *Conn) start(query string, vars Vars, buffer int) (*Subscription, error) {
	ch := make(chan Message, buffer)
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return nil, c.closed
	}
	c.nextID++
	id := strconv.Itoa(c.nextID)
	c.ops[id] = ch
	c.mu.Unlock()
	payload, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, fmt.Errorf("client: encode: %w", err)
	}
	if err := c.write(Message{Type: "subscribe", ID: id, Payload: payload}); err != nil {
		return nil, err
	}
	return &Subscription{ID: id, C: ch, conn: c}, nil
}

// Next waits for the operation's next result. It returns ErrComplete after
// the server completed the operation, the operation's errors as a
// *Response error, or the connection's *CloseError.
func (s *Subscription) Next(ctx context.Context) (*Response, error) {
	select {
	case m, ok := <-s.C:
		if !ok {
			if ce := s.conn.CloseError(); ce != nil {
				return nil, ce
			}
			return nil, ErrComplete
		}
		switch m.Type {
		case "next":
			var r Response
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				return nil, fmt.Errorf("client: decode next: %w", err)
			}
			return &r, nil
		case "error":
			var errs []Error
			_ = json.Unmarshal(m.Payload, &errs)
			return &Response{Errors: errs}, nil
		case "complete":
			return nil, ErrComplete
		}
		return nil, fmt.Errorf("client: unexpected message %q", m.Type)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Complete stops the operation from the client side.
func (s *Subscription) Complete() error {
	s.conn.mu.Lock()
	delete(s.conn.ops, s.ID)
	s.conn.mu.Unlock()
	return s.conn.write(Message{Type: "complete", ID: s.ID})
}
