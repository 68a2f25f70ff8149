package api

// The WebSocket transport: the gqlgen transport that takes upgrades and the
// upgrader with its buffers. A connection is in ws_conn.go, its operations
// in ws_operation.go, the wire protocol in ws_protocol.go and keep-alive in
// ws_keepalive.go.

import (
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
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
// where they can be (shared.go); between events a subscription holds a
// plan shared by its document and variables, not gqlgen's running
// operation (ws_replay.go); and each response is written once, straight
// into the frame.

// wsReadBuffer is a connection's read buffer, held for the connection's
// life: gorilla's smallest (a control frame's payload must fit). Clients
// send few messages, and small ones (a subscribe is a few hundred bytes);
// bufio reads those larger than the buffer straight into the message's
// own, so a smaller buffer costs no more reads, and saves every idle
// connection 128 bytes of live heap.
const wsReadBuffer = 128

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
