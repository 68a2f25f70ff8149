package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestWriteResponseAsMarshalled: writeResponse writes what gqlgen's
// json.Marshal wrote, byte for byte, whichever way it takes.
func TestWriteResponseAsMarshalled(t *testing.T) {
	yes := true
	fixed := []*graphql.Response{
		{Data: json.RawMessage(`{"a":1}`)},
		{Data: json.RawMessage(`null`)},
		{Data: json.RawMessage(`{"t":"a <b> & c"}`)},
		{Data: json.RawMessage(`{"t":"line\u2028sep \u2029 é ☃"}`)},
		{Data: json.RawMessage("{\"t\":\"raw \u2028 \u2029\"}")},
		{Data: json.RawMessage(`{"a": 1, "b" : [ 1 ,2 ]}`)},
		{Data: json.RawMessage("{\n\t\"a\":1\r\n}")},
		{Data: json.RawMessage(`{"q":"say \"hi\" \\ ok","e":"\\"}`)},
		{Data: json.RawMessage(`{"a":1}`), Errors: gqlerror.List{{Message: "x <y>"}}},
		{Errors: gqlerror.List{{Message: "only errors"}}},
		{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"k": 1}},
		{Data: json.RawMessage(`{"a":1}`), HasNext: &yes},
		{Data: json.RawMessage(`{"a":1}`), Label: "l"},
	}
	for _, resp := range fixed {
		check(t, resp)
	}
	// Random documents of strings, numbers and nesting, with the
	// characters that matter mixed in.
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", " ", "<", ">", "&", "\u2028", "\u2029", "é", "\\\"", "\\\\", "\\n", "\\u003c", "\u00e2", "☃"}
	for range 2000 {
		var b bytes.Buffer
		writeRandom(r, &b, alphabet, 3)
		check(t, &graphql.Response{Data: json.RawMessage(b.Bytes())})
	}
}

func check(t *testing.T, resp *graphql.Response) {
	t.Helper()
	want, err := json.Marshal(resp)
	if err != nil {
		t.Fatalf("json.Marshal(%s): %v", resp.Data, err)
	}
	var got bytes.Buffer
	writeResponse(&got, resp)
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("data %q:\n got %s\nwant %s", resp.Data, got.Bytes(), want)
	}
}

func writeRandom(r *rand.Rand, b *bytes.Buffer, alphabet []string, depth int) {
	ws := func() {
		if r.IntN(8) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n"}[r.IntN(4)])
		}
	}
	switch k := r.IntN(4); {
	case depth == 0 || k == 0:
		b.WriteByte('"')
		for range r.IntN(6) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		b.WriteByte('"')
	case k == 1:
		b.WriteString([]string{"1", "-2.5e3", "true", "null"}[r.IntN(4)])
	case k == 2:
		b.WriteByte('[')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			writeRandom(r, b, alphabet, depth-1)
		}
		b.WriteByte(']')
	default:
		b.WriteByte('{')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			b.WriteString(`"k"`)
			ws()
			b.WriteByte(':')
			writeRandom(r, b, alphabet, depth-1)
		}
		b.WriteByte('}')
	}
}

// TestWriteResponseLength: a data-only response says its length, so
// net/http does not chunk it; any other leaves the length to net/http
// (an error response may be rewritten on its way out).
func TestWriteResponseLength(t *testing.T) {
	rec := httptest.NewRecorder()
	writeResponse(rec, &graphql.Response{Data: json.RawMessage(`{"a":[1,2,3]}`)})
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Fatalf("Content-Length %q for a body of %s bytes", got, want)
	}
	rec = httptest.NewRecorder()
	writeResponse(rec, &graphql.Response{Errors: gqlerror.List{gqlerror.Errorf("no")}})
	if got := rec.Header().Get("Content-Length"); got != "" {
		t.Fatalf("Content-Length %q on an error response", got)
	}
}
