package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on client input, enforced before anything is written.
const (
	// MaxPage is the largest page any list returns.
	MaxPage = 100
	// MaxDataBytes caps a custom data object, encoded as JSON.
	MaxDataBytes = 32 << 10
	// MaxUserIDLen caps user ids.
	MaxUserIDLen = 64
	// MaxBatch caps how many items one mutation may touch (users, ids).
	MaxBatch = 100
)

// NewID returns a new time-ordered id. UUIDv7 ids sort by creation time, so
// they double as pagination keys, and their random tail spreads writes.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// ParseID parses a client-supplied UUID id.
func ParseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, Invalid(field, "%q is not a valid id", truncate(s, 80))
	}
	return id, nil
}

// CheckUserID checks a user id: 1 to 64 letters, digits, or any of "_-@.".
// Feed and channel ids embed user ids after a colon, so a colon is not allowed.
func CheckUserID(field, id string) error {
	if id == "" || len(id) > MaxUserIDLen {
		return Invalid(field, "a user id must be 1 to %d characters", MaxUserIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-@.", r)) {
			return Invalid(field, "%q is not a valid user id: use letters, digits and _-@. only", truncate(id, 80))
		}
	}
	return nil
}

// CheckText checks that s is valid UTF-8 of at most max characters,
// without NUL characters (PostgreSQL text cannot hold them).
func CheckText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must not contain NUL characters")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid(field, "is %d characters long; the limit is %d", n, max)
	}
	return nil
}

// CheckData checks a custom data value: a JSON object of at most MaxDataBytes.
// Nil (no data) is fine.
func CheckData(field string, data json.RawMessage) error {
	if data == nil {
		return nil
	}
	if len(data) > MaxDataBytes {
		return Invalid(field, "is %d bytes of JSON; the limit is %d", len(data), MaxDataBytes)
	}
	// JSON's whitespace only: bytes.TrimSpace would also drop \v and \f,
	// which PostgreSQL's jsonb parser refuses.
	trimmed := bytes.Trim(data, " \t\n\r")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return Invalid(field, "must be a JSON object")
	}
	if num, ok := outOfRangeNumber(trimmed); ok {
		return Invalid(field, "holds the number %s, out of range: numbers must fit in 64 bits", truncate(num, 40))
	}
	// PostgreSQL's jsonb cannot hold a NUL character (\u0000) in a key or
	// a string; only decoding tells an escaped NUL from an escaped backslash.
	if bytes.Contains(trimmed, []byte(`u0000`)) {
		var v any
		if err := json.Unmarshal(trimmed, &v); err != nil || hasNUL(v) {
			return Invalid(field, "must not contain NUL characters (\\u0000)")
		}
	}
	return nil
}

// outOfRangeNumber returns the first number of valid JSON data that no
// float64 holds (PostgreSQL's jsonb would refuse the largest and smallest
// of them with an internal error), scanning without decoding.
func outOfRangeNumber(data []byte) (string, bool) {
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(data) && strings.IndexByte("+-.0123456789eE", data[j]) >= 0 {
				j++
			}
			if num := string(data[i:j]); !numberInRange(num) {
				return num, true
			}
			i = j - 1
		}
	}
	return "", false
}

// numberInRange reports whether a JSON number fits a float64 and is not so
// small that PostgreSQL's numeric cannot hold it.
func numberInRange(num string) bool {
	if _, err := strconv.ParseFloat(num, 64); err != nil {
		return false
	}
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		exp, err := strconv.Atoi(num[i+1:])
		return err == nil && exp >= -1000
	}
	return true
}

// hasNUL reports whether a decoded JSON value has a NUL in a key or string.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// PageSize checks a first/last argument.
func PageSize(field string, n int) (int, error) {
	if n < 0 || n > MaxPage {
		return 0, Invalid(field, "must be between 0 and %d, got %d", MaxPage, n)
	}
	return n, nil
}

// EncodeCursor turns a list position into an opaque cursor.
func EncodeCursor(pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pos))
}

// DecodeCursor turns a cursor from EncodeCursor back into a list position.
// A cursor that was not made by EncodeCursor is an InputError.
func DecodeCursor(field, cursor string) (string, error) {
	if len(cursor) > 512 {
		return "", Invalid(field, "is not a valid cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	// PostgreSQL text holds no NUL: a position with one would reach it and
	// fail there, as an internal error.
	if err != nil || len(b) == 0 || !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "", Invalid(field, "is not a valid cursor; pass an endCursor from a previous page")
	}
	return string(b), nil
}

// truncate shortens s for quoting in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Page is one page of a list: at most the number of items asked for, and
// whether more follow.
type Page[T any] struct {
	Items   []T
	HasNext bool
	// HasPrev, for lists that page both ways, says items come before.
	HasPrev bool
}

// PageOf makes a Page from up to first+1 rows read for a page of first: the
// extra row only says that more follow.
func PageOf[T any](rows []T, first int) Page[T] {
	if len(rows) > first {
		return Page[T]{Items: rows[:first], HasNext: true}
	}
	return Page[T]{Items: rows}
}

// PageArgs checks a connection's first/after arguments and returns the
// page size (def when first is left out) and the decoded position to
// continue after ("" for the first page).
func PageArgs(first *int, after *string, def int) (int, string, error) {
	n := def
	if first != nil {
		var err error
		if n, err = PageSize("first", *first); err != nil {
			return 0, "", err
		}
	}
	if after == nil || *after == "" {
		return n, "", nil
	}
	pos, err := DecodeCursor("after", *after)
	if err != nil {
		return 0, "", err
	}
	return n, pos, nil
}
