package fastpath

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// feedRoot is Query.feed.
func (s *Server) feedRoot() field {
	return objectField("Feed", true, func(ctx context.Context, f graphql.CollectedField, _ any) (*store.Feed, error) {
		args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
		id, err := graphql.UnmarshalID(args["id"])
		if err != nil {
			return nil, err
		}
		return s.root.Query().Feed(resolverContext(ctx, "Query", f, map[string]any{"id": id}), id)
	})
}

// feedTypes are the types of a timeline page: the feed, its activities
// connection (newest first; a ranked page is left to gqlgen), and each
// activity's plain fields, actor, reaction counts and own reactions, which
// the page primes into the loaders with the activities.
func (s *Server) feedTypes() map[string]map[string]field {
	return map[string]map[string]field{
		"Feed": {
			"id":             scalar(func(f *store.Feed) graphql.Marshaler { return graphql.MarshalID(f.ID) }),
			"group":          scalar(func(f *store.Feed) graphql.Marshaler { return graphql.MarshalString(f.Group) }),
			"followerCount":  scalar(func(f *store.Feed) graphql.Marshaler { return graphql.MarshalInt(f.FollowerCount) }),
			"followingCount": scalar(func(f *store.Feed) graphql.Marshaler { return graphql.MarshalInt(f.FollowingCount) }),
			"activities": objectField("ActivityConnection", false, func(ctx context.Context, f graphql.CollectedField, feed *store.Feed) (*model.ActivityConnection, error) {
				args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
				first, err := optInt(args["first"])
				if err != nil {
					return nil, err
				}
				after, err := optString2(args["after"])
				if err != nil {
					return nil, err
				}
				typed := map[string]any{"first": first, "after": after, "ranking": (*string)(nil)}
				return s.root.Feed().Activities(resolverContext(ctx, "Feed", f, typed), feed, first, after, nil)
			}).accepting(func(f *ast.Field) bool {
				// A ranked page (even ranking: null through a variable) is
				// gqlgen's.
				return f.Arguments.ForName("ranking") == nil
			}),
		},
		"ActivityConnection": {
			"edges": listField("ActivityEdge", func(_ context.Context, _ graphql.CollectedField, c *model.ActivityConnection) ([]*model.ActivityEdge, error) {
				return c.Edges, nil
			}),
			"pageInfo": objectField("PageInfo", false, func(_ context.Context, _ graphql.CollectedField, c *model.ActivityConnection) (*model.PageInfo, error) {
				return c.PageInfo, nil
			}),
		},
		"ActivityEdge": {
			"cursor": scalar(func(e *model.ActivityEdge) graphql.Marshaler { return graphql.MarshalString(e.Cursor) }),
			"node": objectField("Activity", false, func(_ context.Context, _ graphql.CollectedField, e *model.ActivityEdge) (*store.Activity, error) {
				return e.Node, nil
			}),
		},
		"Activity": s.activityFields(),
		"Reaction": {
			"id":        requiredUUID(func(r *store.Reaction) uuid.UUID { return r.ID }),
			"kind":      scalar(func(r *store.Reaction) graphql.Marshaler { return graphql.MarshalString(r.Kind) }),
			"createdAt": requiredTime(func(r *store.Reaction) time.Time { return r.CreatedAt }),
		},
	}
}

// activityFields: the actor, counts and own reactions come from the
// loaders the page primed, so asking one element at a time never waits.
func (s *Server) activityFields() map[string]field {
	a := s.root.Activity()
	return map[string]field{
		"id":           requiredUUID(func(a *store.Activity) uuid.UUID { return a.ID }),
		"verb":         scalar(func(a *store.Activity) graphql.Marshaler { return graphql.MarshalString(a.Verb) }),
		"object":       scalar(func(a *store.Activity) graphql.Marshaler { return graphql.MarshalString(a.Object) }),
		"target":       scalar(func(a *store.Activity) graphql.Marshaler { return optString(a.Target) }),
		"foreignId":    scalar(func(a *store.Activity) graphql.Marshaler { return optString(a.ForeignID) }),
		"time":         requiredTime(func(a *store.Activity) time.Time { return a.Time }),
		"createdAt":    requiredTime(func(a *store.Activity) time.Time { return a.CreatedAt }),
		"updatedAt":    requiredTime(func(a *store.Activity) time.Time { return a.UpdatedAt }),
		"commentCount": scalar(func(a *store.Activity) graphql.Marshaler { return graphql.MarshalInt(a.CommentCount) }),
		"actor": objectField("User", false, func(ctx context.Context, _ graphql.CollectedField, act *store.Activity) (*store.User, error) {
			return a.Actor(ctx, act)
		}),
		"reactionCounts": listField("ReactionCount", func(ctx context.Context, _ graphql.CollectedField, act *store.Activity) ([]*store.ReactionCount, error) {
			return a.ReactionCounts(ctx, act)
		}),
		"ownReactions": listField("Reaction", func(ctx context.Context, _ graphql.CollectedField, act *store.Activity) ([]*store.Reaction, error) {
			return a.OwnReactions(ctx, act)
		}),
	}
}
