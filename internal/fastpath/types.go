package fastpath

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
)

// objectType is a GraphQL object type the fast path writes: the fields it
// knows, each written exactly as gqlgen's generated code would.
type objectType struct {
	name string
	// implements is the type and what it implements, for fragments'
	// type conditions (gqlgen's "implementors").
	implements []string
	fields     map[string]field
}

// accepting returns f taking only the fields accepts accepts.
func (f field) accepting(accepts func(*ast.Field) bool) field {
	f.accepts = accepts
	return f
}

func (t *objectType) satisfies(name string) bool {
	for _, n := range t.implements {
		if n == name {
			return true
		}
	}
	return false
}

// field writes one field of an object (obj, of the type's Go type).
type field struct {
	// child is the object type of the field's value (or its list's
	// elements), empty for a scalar.
	child string
	write func(ctx context.Context, w *writer, f graphql.CollectedField, obj any) error
	// accepts, if set, says from the document alone whether the fast path
	// takes the field: a fallback after its resolver ran would run it
	// twice (a statement more than the page costs).
	accepts func(*ast.Field) bool
}

// objectTypes builds the tables of the types the fast path knows.
func (s *Server) objectTypes() map[string]*objectType {
	ts := map[string]*objectType{}
	add := func(name string, fields map[string]field) {
		t := &objectType{name: name, implements: []string{name}, fields: fields}
		for _, d := range s.schema.GetImplements(s.schema.Types[name]) {
			t.implements = append(t.implements, d.Name)
		}
		ts[name] = t
	}
	add("Query", map[string]field{"channel": s.channelRoot(), "feed": s.feedRoot()})
	for name, fields := range s.chatTypes() {
		add(name, fields)
	}
	for name, fields := range s.feedTypes() {
		add(name, fields)
	}
	return ts
}

// Scalar fields, written with gqlgen's own marshallers. A non-null field
// whose marshaller says null is an error in gqlgen: left to it.

func scalar[T any](get func(T) graphql.Marshaler) field {
	return field{write: func(_ context.Context, w *writer, _ graphql.CollectedField, obj any) error {
		w.value(get(obj.(T)))
		return nil
	}}
}

func optString(v *string) graphql.Marshaler {
	if v == nil {
		return graphql.Null
	}
	return graphql.MarshalString(*v)
}

func optTime(v *time.Time) graphql.Marshaler {
	if v == nil {
		return graphql.Null
	}
	return graphql.MarshalTime(*v)
}

// objectField writes a non-null object that get returns (nil is gqlgen's
// error to report), or a nullable one when nullable.
func objectField[T, C any](child string, nullable bool, get func(ctx context.Context, f graphql.CollectedField, obj T) (*C, error)) field {
	return field{child: child, write: func(ctx context.Context, w *writer, f graphql.CollectedField, obj any) error {
		parent, _ := obj.(T) // the root has no object
		v, err := get(ctx, f, parent)
		if err != nil {
			return errFallback
		}
		if v == nil {
			if nullable {
				w.buf.WriteString("null")
				return nil
			}
			return errFallback
		}
		return w.object(ctx, w.s.types[child], f.Selections, v)
	}}
}

// listField writes a non-null list of non-null objects.
func listField[T, C any](child string, get func(ctx context.Context, f graphql.CollectedField, obj T) ([]*C, error)) field {
	return field{child: child, write: func(ctx context.Context, w *writer, f graphql.CollectedField, obj any) error {
		vs, err := get(ctx, f, obj.(T))
		if err != nil {
			return errFallback
		}
		// A nil slice is an empty list to gqlgen too.
		t := w.s.types[child]
		w.buf.WriteByte('[')
		for i, v := range vs {
			if v == nil {
				return errFallback
			}
			if i > 0 {
				w.buf.WriteByte(',')
			}
			if err := w.object(ctx, t, f.Selections, v); err != nil {
				return err
			}
		}
		w.buf.WriteByte(']')
		return nil
	}}
}

// args returns a field's arguments, defaults applied, as gqlgen passes
// them to its unmarshallers.
func (w *writer) args(f graphql.CollectedField) map[string]any {
	return f.ArgumentMap(w.oc.Variables)
}

func optInt(v any) (*int, error) {
	if v == nil {
		return nil, nil
	}
	n, err := graphql.UnmarshalInt(v)
	return &n, err
}

func optString2(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, err := graphql.UnmarshalString(v)
	return &s, err
}

func optID(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, err := graphql.UnmarshalID(v)
	return &s, err
}

// Times and ids are written straight into the response, as the bytes
// graphql.MarshalTime and graphql.MarshalUUID write (RFC 3339 with
// nanoseconds, quoted; the 36-character form, quoted) but without their
// closures and strings: a history page writes a hundred or more of each.

// requiredTime writes a non-null time; a zero time is null to gqlgen, an
// error in a non-null field: left to it.
func requiredTime[T any](get func(T) time.Time) field {
	return field{write: func(_ context.Context, w *writer, _ graphql.CollectedField, obj any) error {
		t := get(obj.(T))
		if t.IsZero() {
			return errFallback
		}
		w.time(t)
		return nil
	}}
}

// optionalTime writes a nullable time: nil and zero are null.
func optionalTime[T any](get func(T) *time.Time) field {
	return field{write: func(_ context.Context, w *writer, _ graphql.CollectedField, obj any) error {
		if t := get(obj.(T)); t != nil && !t.IsZero() {
			w.time(*t)
		} else {
			w.buf.WriteString("null")
		}
		return nil
	}}
}

// requiredUUID writes a non-null id; uuid.Nil is null to gqlgen: left to it.
func requiredUUID[T any](get func(T) uuid.UUID) field {
	return field{write: func(_ context.Context, w *writer, _ graphql.CollectedField, obj any) error {
		id := get(obj.(T))
		if id == uuid.Nil {
			return errFallback
		}
		w.uuid(id)
		return nil
	}}
}

func (w *writer) time(t time.Time) {
	b := append(w.buf.AvailableBuffer(), '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	w.buf.Write(append(b, '"'))
}

func (w *writer) uuid(id uuid.UUID) {
	const hexDigits = "0123456789abcdef"
	b := append(w.buf.AvailableBuffer(), '"')
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	w.buf.Write(append(b, '"'))
}
