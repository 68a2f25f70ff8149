package scalar

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/brookhq/brook/store"
)

func TestJSONAcceptsOnlyObjects(t *testing.T) {
	for _, v := range []any{nil, "s", 1.5, true, []any{1}} {
		if _, err := UnmarshalJSON(v); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("UnmarshalJSON(%v) = %v, want an input error", v, err)
		}
	}
	got, err := UnmarshalJSON(map[string]any{"a": []any{1.0, "x"}})
	if err != nil || string(got) != `{"a":[1,"x"]}` {
		t.Fatalf("object: %s %v", got, err)
	}
	var buf bytes.Buffer
	MarshalJSON(got).MarshalGQL(&buf)
	if buf.String() != `{"a":[1,"x"]}` {
		t.Fatalf("marshal: %s", buf.String())
	}
	buf.Reset()
	MarshalJSON(nil).MarshalGQL(&buf)
	if buf.String() != "null" {
		t.Fatalf("marshal nil: %s", buf.String())
	}
}

// Whatever a client sends as JSON data (decoded the way the transport
// decodes it), the scalar accepts a valid object or refuses with an input
// error; it never panics.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":{"b":[1,2,{"c":null}]}}`, `[]`, `"x"`, `1e400`, `{"\ud800":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if d.Decode(&v) != nil {
			return
		}
		out, err := UnmarshalJSON(v)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("UnmarshalJSON: %v is not an input error", err)
			}
			return
		}
		if store.CheckData("data", out) != nil {
			t.Fatalf("accepted %s, which CheckData refuses", out)
		}
	})
}
