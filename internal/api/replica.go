package api

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// readYourWrites routes queries to the read replicas
// (DATABASE_REPLICA_URLS) unless their user wrote within the replicas' lag
// bound: a mutation marks its user in Redis for that window before its
// response leaves, and that user's queries read the primary while the
// mark lives, on every node. Subscriptions and mutations always read the
// primary (a subscription's replay must not miss what its live events
// will not repeat). Without replicas it does nothing.
func (s *Server) readYourWrites(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	window := s.opts.Store.ReadYourWritesWindow()
	oc := graphql.GetOperationContext(ctx)
	if window == 0 || oc == nil || oc.Operation == nil {
		return next(ctx)
	}
	id, signedIn := auth.FromContext(ctx)
	switch oc.Operation.Operation {
	case ast.Query:
		if !signedIn {
			return next(store.MayLag(ctx))
		}
		// Redis trouble reads the primary, which is never stale.
		if wrote, err := s.opts.State.WroteRecently(ctx, id.UserID); err == nil && !wrote {
			ctx = store.MayLag(ctx)
		}
		return next(ctx)
	case ast.Mutation:
		if !signedIn {
			return next(ctx)
		}
		respond := next(ctx)
		return func(ctx context.Context) *graphql.Response {
			resp := respond(ctx)
			if err := s.opts.State.MarkWrote(ctx, id.UserID, window); err != nil {
				s.log.Warn("read your writes: could not mark the user's write; their reads may lag for a moment", "user", id.UserID, "err", err)
			}
			return resp
		}
	}
	return next(ctx)
}
