package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand-written encoding of gqlgen's messages is byte for byte what
// encoding/json writes.
func TestWireMessageEncoding(t *testing.T) {
	type kind string
	type msg struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    kind            `json:"type"`
		noOp    bool
	}
	for _, m := range []*msg{
		{Payload: json.RawMessage(`{"data":{"messageAdded":{"id":"x","text":"a\u003cb"}}}`), ID: "1", Type: "next"},
		{Type: "ping"},
		{Payload: json.RawMessage(`{}`), Type: "connection_ack"},
		{ID: "op-7", Type: "complete"},
	} {
		w, ok := wireMessageOf(m)
		if !ok {
			t.Fatalf("%+v not recognised", m)
		}
		want, _ := json.Marshal(m)
		var b bytes.Buffer
		if err := writeWire(&b, w); err != nil {
			t.Fatal(err)
		}
		got := b.Bytes()
		if !bytes.Equal(got, want) {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	if _, ok := wireMessageOf(&struct{ Payload string }{}); ok {
		t.Error("a different struct was taken for a message")
	}
	if _, ok := wireMessageOf(map[string]any{}); ok {
		t.Error("a map was taken for a message")
	}
	for s, plain := range map[string]bool{"abc-1": true, `a"b`: false, "é": false, "a<b": false, "\n": false} {
		if plainJSONString(s) != plain {
			t.Errorf("plainJSONString(%q) = %v", s, !plain)
		}
	}
}
