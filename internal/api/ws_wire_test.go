package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The hand-written protocol messages are JSON that decodes to what
// encoding/json would have written, ids that need escaping included.
func TestWireMessageEncoding(t *testing.T) {
	type msg struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
	}
	for _, m := range []msg{
		{Payload: json.RawMessage(`{"data":{"messageAdded":{"id":"x","text":"a\u003cb"}}}`), ID: "1", Type: "next"},
		{Type: "ping"},
		{Payload: json.RawMessage(`{}`), Type: "connection_ack"},
		{ID: "op-7", Type: "complete"},
		{ID: "a\"b\\c\né<", Type: "complete"},
	} {
		var parts [][]byte
		if m.Payload != nil {
			k := len(m.Payload) / 2
			parts = [][]byte{m.Payload[:k], nil, m.Payload[k:]}
		}
		var b bytes.Buffer
		if err := writeEnvelope(&b, m.ID, m.Type, parts); err != nil {
			t.Fatal(err)
		}
		var got, want any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%s is not JSON: %v", b.Bytes(), err)
		}
		enc, _ := json.Marshal(m)
		_ = json.Unmarshal(enc, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %s, want %s", b.Bytes(), enc)
		}
	}
}
