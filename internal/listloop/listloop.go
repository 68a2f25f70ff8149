// Package listloop marshals a GraphQL list in a plain loop when nothing
// under its elements can wait.
//
// gqlgen marshals every list of two or more objects with a goroutine per
// element and a WaitGroup (graphql.MarshalSliceConcurrently), because an
// element's resolver fields may wait on a dataloader whose batch fills only
// when its siblings have asked too: run one element after another and the
// loader would see one key at a time, or never fill at all. When no field
// selected under the elements, at any depth, is one gqlgen runs concurrently
// (a resolver, or a method taking a context), marshalling an element is
// plain CPU work that never waits on a sibling, and the goroutines only add
// cost. The generator in ./gen rewrites gqlgen's calls to go through
// MarshalSlice, with a table of which fields may wait.
package listloop

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// WaitsFunc reports whether the named field of the named object or
// interface type may wait (on a loader, on I/O) when gqlgen resolves it.
// It must answer true for a type or field it does not know.
type WaitsFunc func(typeName, field string) bool

// MarshalSlice marshals length elements of a list whose elements are
// selected by sel: in a plain loop when nothing selected under them may
// wait, and else as gqlgen does (graphql.MarshalSliceConcurrently, with the
// same worker limit and panic handling). Either way each element gets its
// own field context with its index, and a panic in one element becomes an
// error on its path and a null, as in gqlgen.
func MarshalSlice(ctx context.Context, waits WaitsFunc, sel ast.SelectionSet, length int, workerLimit int64, omitPanicHandler bool, marshalElement func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	if length < 2 || MayWait(waits, sel) {
		// One element runs in line in gqlgen already.
		return graphql.MarshalSliceConcurrently(ctx, length, workerLimit, omitPanicHandler, marshalElement)
	}
	ret := make(graphql.Array, length)
	// One allocation for every element's field context and index, where
	// gqlgen makes two per element.
	fcs := make([]graphql.FieldContext, length)
	idx := make([]int, length)
	for i := range length {
		idx[i] = i
		fcs[i].Index = &idx[i]
		childCtx := graphql.WithFieldContext(ctx, &fcs[i])
		if omitPanicHandler {
			ret[i] = marshalElement(childCtx, i)
			continue
		}
		ret[i] = marshalRecovering(childCtx, i, marshalElement)
	}
	return ret
}

// marshalRecovering marshals element i, turning a panic into an error on
// the element's path and a null, as gqlgen's goroutines do.
func marshalRecovering(ctx context.Context, i int, marshalElement func(ctx context.Context, i int) graphql.Marshaler) (m graphql.Marshaler) {
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			m = graphql.Null
		}
	}()
	return marshalElement(ctx, i)
}

// MayWait reports whether any field selected in sel, at any depth, through
// fragments and inline fragments, may wait. It errs towards true: a field
// the validator did not annotate, a fragment it did not resolve, or a
// deferred fragment (whose delivery gqlgen runs apart) all count as waiting.
// @skip and @include are not evaluated: a skipped field counts too.
func MayWait(waits WaitsFunc, sel ast.SelectionSet) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__typename" {
				continue
			}
			if s.ObjectDefinition == nil || waits(s.ObjectDefinition.Name, s.Name) {
				return true
			}
			if MayWait(waits, s.SelectionSet) {
				return true
			}
		case *ast.InlineFragment:
			if s.Directives.ForName("defer") != nil || MayWait(waits, s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Directives.ForName("defer") != nil || s.Definition == nil || MayWait(waits, s.Definition.SelectionSet) {
				return true
			}
		default:
			return true
		}
	}
	return false
}
