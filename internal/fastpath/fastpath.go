// Package fastpath answers the hottest read operations without gqlgen's
// per-field execution, byte for byte as gqlgen would.
//
// gqlgen resolves a response field by field: a field context and a
// resolver call per scalar, a goroutine per list element and per resolver
// field, whose stacks then grow. For a page of 50 messages with their
// authors and reaction counts that is most of the server's CPU (the
// profile in docs/benchmarks.md). Here an operation whose every selected
// field is one this package knows is answered in one pass: the root and
// connection fields call the same resolvers gqlgen calls (so authorization,
// validation and prefetching are the products', written once), and the
// page's objects are written straight into the response with gqlgen's own
// scalar marshallers, in the order and shape gqlgen writes them.
//
// Whatever it cannot answer exactly, it leaves to gqlgen: a document with a
// field it does not know (decided once per parsed document), a resolver
// error, an error added on the side, a value a field would have to load
// (an author not on the message), a null in a non-null field. Then gqlgen
// runs the operation as it always does; the reads done so far are wasted,
// nothing else. The differential test runs both paths on the same data and
// requires identical bytes.
package fastpath

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/graph"
)

// errFallback stops the fast path: gqlgen answers the operation instead.
var errFallback = errors.New("fastpath: left to gqlgen")

// Server holds the resolvers and what it learned about each document.
type Server struct {
	root   graph.ResolverRoot
	schema *ast.Schema
	types  map[string]*objectType

	mu sync.Mutex
	// plans remembers, per parsed operation (gqlgen caches parsed
	// documents, so a repeated or persisted operation is the same
	// pointer), whether this package can answer it.
	plans map[*ast.OperationDefinition]*plan

	ops *prometheus.CounterVec
}

// plan is what the fast path knows of one operation.
type plan struct {
	ok bool
	// fallbacks counts operations that had to be left to gqlgen after
	// all (data the page did not carry); past a limit the plan is off, so
	// a document that always falls back stops paying for the attempt.
	fallbacks atomic.Int64
	served    atomic.Int64
}

// New returns a fast path over root's resolvers for schema; reg, if not
// nil, receives brook_fastpath_operations_total.
func New(root graph.ResolverRoot, schema *ast.Schema, reg prometheus.Registerer) *Server {
	s := &Server{root: root, schema: schema, plans: map[*ast.OperationDefinition]*plan{}}
	s.types = s.objectTypes()
	s.ops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brook_fastpath_operations_total",
		Help: "Queries the fast path answered (served) and those it tried and left to gqlgen (fallback).",
	}, []string{"result"})
	if reg != nil {
		reg.MustRegister(s.ops)
	}
	return s
}

// AroundResponses is a gqlgen response interceptor: register it after the
// one that installs the dataloaders, so that resolvers it calls find them.
func (s *Server) AroundResponses(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	// gqlgen answers a request it could not decode through the response
	// interceptors too, with no operation: GetOperationContext panics then.
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return next(ctx)
	}
	p := s.plan(oc.Operation)
	if !p.ok || p.fallbacks.Load() > p.served.Load()+100 {
		return next(ctx)
	}
	data, err := s.answer(ctx, oc)
	if err != nil || len(graphql.GetErrors(ctx)) > 0 {
		p.fallbacks.Add(1)
		s.ops.WithLabelValues("fallback").Inc()
		return next(ctx)
	}
	p.served.Add(1)
	s.ops.WithLabelValues("served").Inc()
	return &graphql.Response{Data: data}
}

func (s *Server) plan(op *ast.OperationDefinition) *plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plans[op]
	if p == nil {
		if len(s.plans) > 10000 {
			// gqlgen's document cache is bounded; this follows it roughly.
			clear(s.plans)
		}
		p = &plan{ok: s.understands(s.types["Query"], op.SelectionSet)}
		s.plans[op] = p
	}
	return p
}

// understands reports whether every field that sel may select on t, at any
// depth and through any fragment, is one the fast path writes.
func (s *Server) understands(t *objectType, sel ast.SelectionSet) bool {
	if t == nil {
		return false
	}
	for _, x := range sel {
		switch x := x.(type) {
		case *ast.Field:
			if x.Name == "__typename" {
				continue
			}
			f, ok := t.fields[x.Name]
			if !ok || len(x.Directives) > 0 && !onlySkipInclude(x.Directives) || f.accepts != nil && !f.accepts(x) {
				return false
			}
			if f.child != "" && !s.understands(s.types[f.child], x.SelectionSet) {
				return false
			}
		case *ast.InlineFragment:
			if !onlySkipInclude(x.Directives) || x.TypeCondition != "" && !t.satisfies(x.TypeCondition) || !s.understands(t, x.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if x.Definition == nil || !onlySkipInclude(x.Directives) || !t.satisfies(x.Definition.TypeCondition) || !s.understands(t, x.Definition.SelectionSet) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// onlySkipInclude: @defer and unknown directives are gqlgen's.
func onlySkipInclude(ds ast.DirectiveList) bool {
	for _, d := range ds {
		if d.Name != "skip" && d.Name != "include" {
			return false
		}
	}
	return true
}

// answer writes the operation's data, or fails with errFallback.
func (s *Server) answer(ctx context.Context, oc *graphql.OperationContext) (json []byte, err error) {
	defer func() {
		// A panic in a resolver is gqlgen's to report, with its path.
		if r := recover(); r != nil {
			err = errFallback
		}
	}()
	w := &writer{s: s, oc: oc}
	w.buf.Grow(16 << 10)
	if err := w.object(ctx, s.types["Query"], oc.Operation.SelectionSet, nil); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

// writer writes one response.
type writer struct {
	s   *Server
	oc  *graphql.OperationContext
	buf bytes.Buffer
	// selections are the fields collected for each selection set and
	// type, with their keys as written: a page writes the same selection
	// for each of its 50 messages, authors and counts.
	selections map[selectionKey]*selection
}

type selectionKey struct {
	sel *ast.Selection
	n   int
	t   *objectType
}

// selection is the fields sel selects on a type, and before each field
// its key as the response writes it (a comma first but for the first).
type selection struct {
	fields []graphql.CollectedField
	keys   [][]byte
}

// collect is graphql.CollectFields of sel on t, once per response: the
// variables, which @skip and @include may read, are the response's.
func (w *writer) collect(t *objectType, sel ast.SelectionSet) *selection {
	var k selectionKey
	if len(sel) > 0 {
		k = selectionKey{sel: &sel[0], n: len(sel), t: t}
		if c := w.selections[k]; c != nil {
			return c
		}
	}
	c := &selection{fields: graphql.CollectFields(w.oc, sel, t.implements)}
	var b bytes.Buffer
	for i, f := range c.fields {
		b.Reset()
		if i > 0 {
			b.WriteByte(',')
		}
		graphql.MarshalString(f.Alias).MarshalGQL(&b)
		b.WriteByte(':')
		c.keys = append(c.keys, bytes.Clone(b.Bytes()))
	}
	if len(sel) > 0 {
		if w.selections == nil {
			w.selections = map[selectionKey]*selection{}
		}
		w.selections[k] = c
	}
	return c
}

// object writes obj, of type t, with the fields sel selects on it, as
// gqlgen's generated object marshallers do: collected fields in order,
// each under its alias.
func (w *writer) object(ctx context.Context, t *objectType, sel ast.SelectionSet, obj any) error {
	c := w.collect(t, sel)
	w.buf.WriteByte('{')
	for i, f := range c.fields {
		w.buf.Write(c.keys[i])
		if f.Name == "__typename" {
			graphql.MarshalString(t.name).MarshalGQL(&w.buf)
			continue
		}
		fd, ok := t.fields[f.Name]
		if !ok {
			return errFallback
		}
		if err := fd.write(ctx, w, f, obj); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

// value writes a scalar's marshaller.
func (w *writer) value(m graphql.Marshaler) { m.MarshalGQL(&w.buf) }

// resolverContext is the field context gqlgen gives a resolver field, for
// resolvers that look at their selection (to prefetch what it needs).
func resolverContext(ctx context.Context, object string, f graphql.CollectedField, args map[string]any) context.Context {
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{
		Object: object, Field: f, Args: args, IsMethod: true, IsResolver: true,
	})
}
