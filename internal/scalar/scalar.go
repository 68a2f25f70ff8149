// Package scalar marshals Brook's custom GraphQL scalars. It is separate
// from graph/ and resolvers/ so generated code can import it without cycles.
package scalar

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/99designs/gqlgen/graphql"

	"github.com/brookhq/brook/store"
)

// MarshalJSON writes stored JSON as is: it was validated on the way in.
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		if len(v) == 0 {
			_, _ = io.WriteString(w, "null")
			return
		}
		_, _ = w.Write(v)
	})
}

// UnmarshalJSON accepts a JSON object (from a literal or a variable) and
// returns it encoded, ready to store.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, store.Invalid("data", "must be a JSON object, got %s", kindOf(v))
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, store.Invalid("data", "is not valid JSON")
	}
	if err := store.CheckData("data", b); err != nil {
		return nil, err
	}
	return b, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case json.Number, int, int64, float64:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
