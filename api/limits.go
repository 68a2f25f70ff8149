package api

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/auth"
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

// aliasLimit refuses operations with more aliased fields than max, before
// any resolver runs: aliases let one operation ask for the same costly
// field many times over.
type aliasLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = aliasLimit{}

func (aliasLimit) ExtensionName() string { return "AliasLimit" }

func (aliasLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (a aliasLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := countAliases(oc.Operation.SelectionSet, map[string]bool{}); n > a.max {
		err := gqlerror.Errorf("operation uses %d aliases, which exceeds the limit of %d", n, a.max)
		err.Extensions = map[string]any{"code": CodeComplexity, "limit": "aliases"}
		return err
	}
	return nil
}

// countAliases counts fields whose alias differs from their name. A
// fragment spread twice counts twice, as it is executed twice.
func countAliases(set ast.SelectionSet, seen map[string]bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += countAliases(s.SelectionSet, seen)
		case *ast.InlineFragment:
			n += countAliases(s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				n += countAliases(s.Definition.SelectionSet, seen)
				delete(seen, s.Name)
			}
		}
	}
	return n
}

// limitExceeded is a per-connection or per-user cap reached; it maps to
// RATE_LIMITED without a retry hint (wait for something to close).
type limitExceeded struct{ message string }

func (e *limitExceeded) Error() string { return e.message }

// aroundOperation counts each operation, then applies the caps that hold
// for any operation on any transport: the user's request budget and the
// number of operations running at once on one WebSocket connection.
func (s *Server) aroundOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	refuse := func(err error) graphql.ResponseHandler {
		presented := s.present(ctx, err)
		code, _ := presented.Extensions["code"].(string)
		s.metrics.errors.WithLabelValues(code).Inc()
		if info := requestFrom(ctx); info != nil {
			info.addCodes([]string{code})
		}
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presented}})
	}
	if id, ok := auth.FromContext(ctx); ok {
		if err := s.opts.Store.Allow(ctx, "user:"+id.UserID, s.opts.RatePerUser, "requests from your user"); err != nil {
			return refuse(err)
		}
	}
	if st := wsStateFrom(ctx); st != nil {
		if st.operations.Add(1) > int64(s.opts.MaxSubscriptionsPerConnection) {
			st.operations.Add(-1)
			return refuse(&limitExceeded{fmt.Sprintf("this connection already runs %d operations, the limit; complete one or open another connection", s.opts.MaxSubscriptionsPerConnection)})
		}
		context.AfterFunc(ctx, func() { st.operations.Add(-1) })
	}
	return s.metrics.observeOperation(ctx, next)
}

// spendSendBudget charges mutations that send (messages, signals,
// activities) to their own per-user budget, before their resolver runs.
func (s *Server) spendSendBudget(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	// RootFieldContext.Object holds the field name, not the type, in this
	// gqlgen version, so the operation says whether this is a mutation.
	rfc, oc := graphql.GetRootFieldContext(ctx), graphql.GetOperationContext(ctx)
	if rfc == nil || oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return next(ctx)
	}
	rate, ok := s.opts.SendRates[rfc.Field.Name]
	if !ok {
		return next(ctx)
	}
	id, _ := auth.FromContext(ctx)
	if err := s.opts.Store.Allow(ctx, "send:"+rfc.Field.Name+":"+id.UserID, rate, rfc.Field.Name+" calls from your user"); err != nil {
		graphql.AddError(ctx, err)
		return graphql.Null
	}
	return next(ctx)
}
