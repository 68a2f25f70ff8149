package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckUserID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"alice", true},
		{"a.b-c_d@e", true},
		{"42", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"user:alice", false},
		{"with space", false},
		{"ünï", false},
		{"semi;colon", false},
	}
	for _, tc := range tests {
		err := CheckUserID("id", tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckUserID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckUserID(%q) error does not match ErrInvalid", tc.id)
		}
	}
}

func TestCheckData(t *testing.T) {
	tests := []struct {
		data string
		ok   bool
	}{
		{`{}`, true},
		{`{"a": [1, 2, {"b": null}]}`, true},
		{` {"padded": true} `, true},
		{`[]`, false},
		{`"string"`, false},
		{`12`, false},
		{`null`, false},
		{`{"a": }`, false},
		{`{"big": "` + strings.Repeat("x", MaxDataBytes) + `"}`, false},
		{`{"nul": "a\u0000b"}`, false},
		{`{"a\u0000": 1}`, false},
		{`{"escaped backslash": "\\u0000"}`, true},
		{`{"a": 1e1000000}`, false},
		{`{"a": [1, -1e309]}`, false},
		{`{"a": 1e-1000000}`, false},
		{`{"a": 1.5e308, "b": -0.5e-300, "c": [5e-324, 1E+2, -0], "d": 1e-1000}`, true},
		{`{"in a string": "1e1000000", "k\"1e999": 1}`, true},
	}
	for _, tc := range tests {
		if err := CheckData("data", json.RawMessage(tc.data)); (err == nil) != tc.ok {
			t.Errorf("CheckData(%.40q) = %v, want ok=%v", tc.data, err, tc.ok)
		}
	}
	if err := CheckData("data", nil); err != nil {
		t.Errorf("no data must be fine: %v", err)
	}
}

func TestCursorsRoundTripAndRejectTampering(t *testing.T) {
	for _, pos := range []string{"0198f1a2-0000-7000-8000-000000000000", "42", "a|b|c"} {
		got, err := DecodeCursor("after", EncodeCursor(pos))
		if err != nil || got != pos {
			t.Errorf("round trip %q: %q %v", pos, got, err)
		}
	}
	for _, bad := range []string{"", "!!!", "%%%", strings.Repeat("A", 600), EncodeCursor(string([]byte{0xff, 0xfe})), EncodeCursor("1|\x00"), "MXwA"} {
		if _, err := DecodeCursor("after", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeCursor(%.20q) = %v, want an input error", bad, err)
		}
	}
}

func TestParseID(t *testing.T) {
	id := NewID()
	got, err := ParseID("id", id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "nope", "{" + id.String() + "}", "urn:uuid:" + id.String(), id.String()[:35]} {
		if _, err := ParseID("id", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q) = %v, want an input error", bad, err)
		}
	}
	if NewID().String() <= id.String() {
		t.Error("ids must sort by creation time")
	}
}

func TestPageSize(t *testing.T) {
	for n, ok := range map[int]bool{0: true, 1: true, MaxPage: true, MaxPage + 1: false, -1: false} {
		if _, err := PageSize("first", n); (err == nil) != ok {
			t.Errorf("PageSize(%d) = %v, want ok=%v", n, err, ok)
		}
	}
}

func TestCheckText(t *testing.T) {
	if err := CheckText("name", "héllo", 5); err != nil {
		t.Errorf("5 runes within 5: %v", err)
	}
	if err := CheckText("name", "héllo!", 5); err == nil {
		t.Error("6 runes over 5 must fail")
	}
	if err := CheckText("name", "a\x00b", 5); err == nil {
		t.Error("NUL must fail")
	}
	if err := CheckText("name", string([]byte{0xff}), 5); err == nil {
		t.Error("invalid UTF-8 must fail")
	}
}
