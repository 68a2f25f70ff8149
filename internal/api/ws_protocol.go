package api

// The WebSocket wire protocol: the subprotocols (graphql-transport-ws and
// the legacy graphql-ws) and their close codes, messages and how they are
// decoded and encoded, and the protocol errors of each subprotocol.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
)

// The WebSocket subprotocols Brook speaks.
const (
	transportWS = "graphql-transport-ws"
	legacyWS    = "graphql-ws"
)

// Close codes of graphql-transport-ws.
const (
	closeBadRequest         = 4400
	closeUnauthorized       = 4401
	closeInitTimeout        = 4408
	closeDuplicateOperation = 4409
	closeTooManyInits       = 4429
)

// wsMessage is a message from the client, of either protocol.
type wsMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// errBadMessage is a message that is not a protocol message.
var errBadMessage = errors.New("invalid message received")

// decodeMessage decodes a protocol message.
func decodeMessage(data []byte) (wsMessage, error) {
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
		return m, errBadMessage
	}
	return m, nil
}

// protocolError closes the connection for a message the protocol does not
// allow: 4400 in graphql-transport-ws; in graphql-ws a connection_error
// message, then 1002.
func (c *wsConn) protocolError(reason string) {
	if c.legacy {
		c.sendConnectionError(reason)
		c.close(websocket.CloseProtocolError, reason)
		return
	}
	c.close(closeBadRequest, reason)
}

func (c *wsConn) sendConnectionError(reason string) {
	b, _ := json.Marshal(map[string]string{"message": reason})
	c.send("", "connection_error", b)
}

// decodeParams reads a subscribe payload as a GraphQL request, numbers kept
// as written (as gqlgen's HTTP transports do).
func decodeParams(payload json.RawMessage, params *graphql.RawParams) error {
	if len(payload) == 0 {
		return errors.New("no payload")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	return dec.Decode(params)
}

// nextType is the type of a message with a response.
func (c *wsConn) nextType() string {
	if c.legacy {
		return "data"
	}
	return "next"
}

// sendResponse sends one response of an operation. Its data, already JSON,
// is written as it is (encoding/json would scan and copy it again).
func (c *wsConn) sendResponse(id string, resp *graphql.Response) bool {
	typ := c.nextType()
	if resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		// An incremental (@defer) response: its placement fields too.
		b, err := json.Marshal(resp)
		if err != nil {
			return false
		}
		return c.send(id, typ, b)
	}
	data := []byte(resp.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	var errs, ext []byte
	if len(resp.Errors) > 0 {
		errs, _ = json.Marshal(resp.Errors)
	}
	if len(resp.Extensions) > 0 {
		ext, _ = json.Marshal(resp.Extensions)
	}
	parts := [][]byte{[]byte(`{"data":`), data, nil, nil, nil, nil, []byte(`}`)}
	if errs != nil {
		parts[2], parts[3] = []byte(`,"errors":`), errs
	}
	if ext != nil {
		parts[4], parts[5] = []byte(`,"extensions":`), ext
	}
	return c.send(id, typ, parts...)
}

// writeEnvelope writes a protocol message to w.
func writeEnvelope(w io.Writer, id, typ string, payload [][]byte) error {
	var arr [128]byte
	buf := append(arr[:0], '{')
	if id != "" {
		buf = append(buf, `"id":`...)
		buf = appendJSONString(buf, id)
		buf = append(buf, ',')
	}
	buf = append(buf, `"type":`...)
	buf = appendJSONString(buf, typ)
	size := 0
	for _, p := range payload {
		size += len(p)
	}
	if size == 0 {
		buf = append(buf, '}')
		_, err := w.Write(buf)
		return err
	}
	buf = append(buf, `,"payload":`...)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	for _, p := range payload {
		if len(p) == 0 {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{'}'})
	return err
}

// appendJSONString appends s as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
