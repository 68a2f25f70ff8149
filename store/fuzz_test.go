package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The parsers of client input never panic, and whatever they accept is what
// they promise.

func FuzzParseID(f *testing.F) {
	f.Add(NewID().String())
	f.Add("")
	f.Add("00000000-0000-0000-0000-000000000000")
	f.Add("{0198f1a2-0000-7000-8000-000000000000}")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID("id", s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseID(%q): %v is not an input error", s, err)
			}
			return
		}
		if id.String() != s && len(s) != 36 {
			t.Fatalf("ParseID(%q) accepted a non-canonical id", s)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor("0198f1a2-0000-7000-8000-000000000000"))
	f.Add("")
	f.Add("====")
	f.Add(EncodeCursor("a|b"))
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := DecodeCursor("after", s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeCursor(%q): %v is not an input error", s, err)
			}
			return
		}
		if pos == "" || !utf8.ValidString(pos) || strings.Contains(pos, "\x00") {
			t.Fatalf("DecodeCursor(%q) = %q", s, pos)
		}
		if back, err := DecodeCursor("after", EncodeCursor(pos)); err != nil || back != pos {
			t.Fatalf("cursor %q does not round-trip", pos)
		}
	})
}

func FuzzCheckUserID(f *testing.F) {
	for _, s := range []string{"alice", "", "a:b", "ü", "a.b-c_d@e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := CheckUserID("id", s); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckUserID(%q): %v is not an input error", s, err)
			}
			return
		}
		if len(s) == 0 || len(s) > MaxUserIDLen {
			t.Fatalf("CheckUserID accepted %q", s)
		}
		for _, c := range []byte(s) {
			if c == ':' || c == ' ' || c >= 0x80 {
				t.Fatalf("CheckUserID accepted %q", s)
			}
		}
	})
}

func FuzzCheckData(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":1}`, `null`, ` {"a": [true, null]} `, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckData("data", json.RawMessage(b))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckData: %v is not an input error", err)
			}
			return
		}
		var obj map[string]any
		if len(b) > 0 && json.Unmarshal(b, &obj) != nil {
			t.Fatalf("CheckData accepted %q, which is not a JSON object", b)
		}
	})
}
