package listloop

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// marshalItem marshals one Item the way gqlgen's generated object
// marshaler does for plain fields: collect the selected fields, a field
// set, a field context per field (for the nested list), a value each.
func marshalItem(ctx context.Context, oc *graphql.OperationContext, sel ast.SelectionSet, i int) graphql.Marshaler {
	fields := graphql.CollectFields(oc, sel, []string{"Item", "Named"})
	out := graphql.NewFieldSet(fields)
	for j, f := range fields {
		switch f.Name {
		case "id":
			out.Values[j] = graphql.MarshalInt(i)
		case "name":
			out.Values[j] = graphql.MarshalString("item")
		case "tags":
			fctx := graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Item", Field: f})
			out.Values[j] = MarshalSlice(fctx, waits, f.Selections, 2, 0, false, func(ctx context.Context, k int) graphql.Marshaler {
				tf := graphql.CollectFields(oc, f.Selections, []string{"Tag"})
				ts := graphql.NewFieldSet(tf)
				for n := range tf {
					ts.Values[n] = graphql.MarshalInt(k)
				}
				return ts
			})
		}
	}
	return out
}

// benchmarkList marshals a 50-element list of Items (id, name and a
// two-element list of tags each), with gqlgen's goroutine per element or
// with the plain loop.
func benchmarkList(b *testing.B, list func(ctx context.Context, sel ast.SelectionSet, n int, f func(ctx context.Context, i int) graphql.Marshaler) graphql.Array) {
	sel := itemsSelection(b, `{ items { id name tags { kind count } } }`)
	oc := &graphql.OperationContext{}
	ctx := graphql.WithOperationContext(testContext(), oc)
	b.ReportAllocs()
	for b.Loop() {
		list(ctx, sel, 50, func(ctx context.Context, i int) graphql.Marshaler {
			return marshalItem(ctx, oc, sel, i)
		})
	}
}

func BenchmarkList50Goroutines(b *testing.B) {
	benchmarkList(b, func(ctx context.Context, sel ast.SelectionSet, n int, f func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
		return graphql.MarshalSliceConcurrently(ctx, n, 0, false, f)
	})
}

func BenchmarkList50Loop(b *testing.B) {
	benchmarkList(b, func(ctx context.Context, sel ast.SelectionSet, n int, f func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
		return MarshalSlice(ctx, waits, sel, n, 0, false, f)
	})
}
