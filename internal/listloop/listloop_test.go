package listloop

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

const schema = `
type Query { items: [Item!]! }
interface Named { name: String! }
type Item implements Named { id: ID! name: String! author: User! tags: [Tag!]! }
type Tag { kind: String! count: Int! }
type User { name: String! online: Boolean! }
directive @defer(if: Boolean, label: String) on FRAGMENT_SPREAD | INLINE_FRAGMENT
`

// waits is the table the generator would write: Item.author and
// User.online are resolvers that may wait; Named.name waits for no
// implementor.
func waits(typeName, field string) bool {
	switch typeName {
	case "Item":
		return field == "author"
	case "User":
		return field == "online"
	case "Tag", "Named":
		return false
	}
	return true
}

// itemsSelection is the selection under Query.items of a validated query.
func itemsSelection(t testing.TB, query string) ast.SelectionSet {
	t.Helper()
	s := gqlparser.MustLoadSchema(&ast.Source{Input: schema})
	doc, errs := gqlparser.LoadQuery(s, query)
	if errs != nil {
		t.Fatalf("query %s: %v", query, errs)
	}
	return doc.Operations[0].SelectionSet[0].(*ast.Field).SelectionSet
}

func TestMayWait(t *testing.T) {
	for _, c := range []struct {
		query string
		want  bool
	}{
		{`{ items { id name } }`, false},
		{`{ items { __typename id tags { kind count } } }`, false},
		{`{ items { id author { name } } }`, true},
		{`{ items { tags { kind } ...F } } fragment F on Item { author { name } }`, true},
		{`{ items { ...F } } fragment F on Item { id tags { count } }`, false},
		{`{ items { ... on Named { name } } }`, false},
		{`{ items { ... on Item { author { online } } } }`, true},
		{`{ items { id ... @defer { name } } }`, true},
		{`{ items { id ...F @defer } } fragment F on Item { name }`, true},
		// @skip is not evaluated: a skipped waiting field still counts.
		{`{ items { id author @skip(if: true) { name } } }`, true},
	} {
		if got := MayWait(waits, itemsSelection(t, c.query)); got != c.want {
			t.Errorf("MayWait(%s) = %v, want %v", c.query, got, c.want)
		}
	}
	if !MayWait(waits, ast.SelectionSet{&ast.Field{Name: "id"}}) {
		t.Error("a field the validator did not annotate does not count as waiting")
	}
}

// testContext is a response context as gqlgen's executor makes it, with a
// field context for the list.
func testContext() context.Context {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
		func(ctx context.Context, err any) error { return errors.New("internal system error") })
	ctx = graphql.WithPathContext(ctx, nil)
	field := "items"
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: field, Name: field}}})
}

// A list whose selection cannot wait is marshalled in order on the
// caller's goroutine, each element with its own index; a panic in one
// becomes an error on its path and a null, as in gqlgen.
func TestPlainLoop(t *testing.T) {
	ctx := testContext()
	sel := itemsSelection(t, `{ items { id tags { kind } } }`)
	var order []int // no lock: the elements must run one after another
	ret := MarshalSlice(ctx, waits, sel, 5, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		order = append(order, i)
		if got := *graphql.GetFieldContext(ctx).Index; got != i {
			t.Errorf("element %d has index %d", i, got)
		}
		if i == 3 {
			panic("boom")
		}
		return graphql.MarshalInt(i)
	})
	if len(order) != 5 || order[0] != 0 || order[4] != 4 {
		t.Fatalf("order %v", order)
	}
	if ret[3] != graphql.Null || ret[2] == graphql.Null {
		t.Fatalf("ret %v", ret)
	}
	errs := graphql.GetErrors(ctx)
	if len(errs) != 1 || errs[0].Path.String() != "items[3]" {
		t.Fatalf("errors %v", errs)
	}
}

// A list whose elements select a field that may wait still runs them all
// at once: here each element waits for a batch that fills only when every
// sibling has asked, as a dataloader with a batch size would. A plain loop
// would never finish.
func TestWaitingFieldsRunConcurrently(t *testing.T) {
	const n = 8
	ctx := testContext()
	sel := itemsSelection(t, `{ items { id author { name } } }`)
	var asked atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	done := make(chan graphql.Array)
	go func() {
		done <- MarshalSlice(ctx, waits, sel, n, 0, false, func(ctx context.Context, i int) graphql.Marshaler {
			if asked.Add(1) == n {
				once.Do(func() { close(full) })
			}
			<-full
			return graphql.MarshalInt(i)
		})
	}()
	select {
	case ret := <-done:
		if len(ret) != n {
			t.Fatalf("ret %v", ret)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the batch never filled: %d of %d elements asked", asked.Load(), n)
	}
}
