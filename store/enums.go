package store

import (
	"slices"
	"strings"
)

// UnmarshalEnum reads the GraphQL enum value v into dst when it is one of
// allowed (an UnmarshalGQL of a string enum type calls it); otherwise it is an Invalid error on field that names what was
// expected (what: "join policy") and lists the values.
func UnmarshalEnum[T ~string](dst *T, v any, field, what string, allowed ...T) error {
	if s, ok := v.(string); ok && slices.Contains(allowed, T(s)) {
		*dst = T(s)
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	list := names[0]
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " or " + names[n-1]
	}
	return Invalid(field, "%v is not a %s: use %s", v, what, list)
}
