package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/internal/client"
)

// bareSubscribe opens a graphql-transport-ws connection, starts one
// subscription on it and hands every message the server sends to on, as
// read off the socket (the raw frame and when it was read), from the
// connection's one reader goroutine. The latency benchmarks' subscribers
// use it rather than the Go client, which decodes each message and hands
// it to another goroutine: a thousand of them on the cores the server
// runs on are load the figure should not carry.
func bareSubscribe(ctx context.Context, url string, initPayload any, query string, vars map[string]any,
	on func(data []byte, at time.Time)) (io.Closer, error) {
	return bareSubscribeUntil(ctx, url, initPayload, query, vars, on, nil)
}

// bareSubscribeUntil is bareSubscribe that also calls closed, from the
// reader goroutine, with the error that ended the connection (the
// server's close, a reset, or the caller's own Close).
func bareSubscribeUntil(ctx context.Context, url string, initPayload any, query string, vars map[string]any,
	on func(data []byte, at time.Time), closed func(error)) (io.Closer, error) {
	d := websocket.Dialer{Subprotocols: []string{client.TransportWS}, HandshakeTimeout: 10 * time.Second}
	return subscribeWS(ctx, d, url, initPayload, []map[string]any{{"query": query, "variables": vars}}, on, closed)
}

// subscribeWS opens a graphql-transport-ws connection with d, starts one
// subscription per payload (ids 1, 2, ...), and hands every message it
// reads to on, from one goroutine, until the connection closes; then it
// calls closed (when not nil) with the read's error.
func subscribeWS(ctx context.Context, d websocket.Dialer, url string, initPayload any, payloads []map[string]any,
	on func(data []byte, at time.Time), closed func(error)) (io.Closer, error) {
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (io.Closer, error) {
		ws.Close()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	if err := ws.WriteJSON(map[string]any{"type": "connection_init", "payload": initPayload}); err != nil {
		return fail(err)
	}
	_, ack, err := ws.ReadMessage()
	if err != nil {
		return fail(err)
	}
	if !bytes.Contains(ack, []byte(`"connection_ack"`)) {
		return fail(fmt.Errorf("expected connection_ack, got %s", ack))
	}
	_ = ws.SetReadDeadline(time.Time{})
	for i, p := range payloads {
		if err := ws.WriteJSON(map[string]any{"id": strconv.Itoa(i + 1), "type": "subscribe", "payload": p}); err != nil {
			return fail(err)
		}
	}
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				if closed != nil {
					closed(err)
				}
				return
			}
			at := time.Now()
			if bytes.Contains(data, []byte(`"type":"ping"`)) {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
				continue
			}
			if bytes.Contains(data, []byte(`"type":"error"`)) {
				fmt.Fprintf(os.Stderr, "bench: subscription error: %s\n", data)
			}
			on(data, at)
		}
	}()
	return ws.NetConn(), nil
}
