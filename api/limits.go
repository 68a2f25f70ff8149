package api

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit refuses operations nested deeper than max, before any resolver
// runs. Introspection (__schema, __type) is not counted: it resolves from
// the static schema, and GraphiQL's introspection query is deep by design.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string { return "DepthLimit" }

func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{})
	if depth > d.max {
		err := gqlerror.Errorf("operation is nested %d levels deep, which exceeds the limit of %d", depth, d.max)
		err.Extensions = map[string]any{"code": CodeComplexity, "limit": "depth"}
		return err
	}
	return nil
}

// selectionDepth is the deepest chain of fields under set. Fragments are
// followed (validation has already ruled out cycles; seen guards anyway).
func selectionDepth(set ast.SelectionSet, seen map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				continue
			}
			d = 1 + selectionDepth(s.SelectionSet, seen)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, seen)
			delete(seen, s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// noIntrospection refuses introspection before any resolver runs, when it
// is turned off for production. __typename stays available: clients such as
// Apollo add it to every selection.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string { return "NoIntrospection" }

func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && introspects(oc.Operation.SelectionSet, map[string]bool{}) {
		err := gqlerror.Errorf("introspection is turned off on this server (BROOK_INTROSPECTION=false)")
		err.Extensions = map[string]any{"code": CodeBadUserInput}
		return err
	}
	return nil
}

func introspects(set ast.SelectionSet, seen map[string]bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" || introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				if introspects(s.Definition.SelectionSet, seen) {
					return true
				}
			}
		}
	}
	return false
}

// apqCache keeps automatic persisted queries in Redis, shared by all nodes,
// with a small in-process cache in front: a hash always names the same text.
type apqCache struct {
	server *Server
}

func (c apqCache) Get(ctx context.Context, hash string) (string, bool) {
	if q, ok := c.server.apqLocal.Get(hash); ok {
		return q, true
	}
	q, ok, err := c.server.opts.Store.PersistedQuery(ctx, hash)
	if err != nil {
		c.server.log.Warn("apq: lookup failed; the client will resend the query", "err", err)
		return "", false
	}
	if ok {
		c.server.apqLocal.Add(hash, q)
	}
	return q, ok
}

func (c apqCache) Add(ctx context.Context, hash, query string) {
	c.server.apqLocal.Add(hash, query)
	if err := c.server.opts.Store.SavePersistedQuery(ctx, hash, query); err != nil {
		c.server.log.Warn("apq: save failed", "err", fmt.Sprint(err))
	}
}
