package resolvers

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// commentLoaderSet holds the loaders of comments and their reactions.
type commentLoaderSet struct {
	Comments       *Loader[uuid.UUID, *store.Comment]
	ReactionCounts *Loader[uuid.UUID, []*store.ReactionCount]
	// OwnReactions are the caller's reactions, by comment.
	OwnReactions *Loader[uuid.UUID, []*store.Reaction]
}

// comments returns the comment loaders, creating them on first use.
func (l *feedLoaders) comments() *commentLoaderSet {
	l.commentOnce.Do(func() {
		s := l.feedService
		l.commentSet = &commentLoaderSet{
			Comments: NewLoader(s.CommentsByID),
			ReactionCounts: NewLoader(func(ctx context.Context, ids []uuid.UUID) ([][]*store.ReactionCount, error) {
				counts, err := s.CommentReactionCounts(ctx, ids)
				return countPointers(counts), err
			}),
			OwnReactions: NewLoader(s.OwnCommentReactions),
		}
	})
	return l.commentSet
}

// countPointers maps reaction counts to the pointers GraphQL lists hold.
func countPointers(counts [][]store.ReactionCount) [][]*store.ReactionCount {
	out := make([][]*store.ReactionCount, len(counts))
	for i, cs := range counts {
		out[i] = make([]*store.ReactionCount, len(cs))
		for j := range cs {
			out[i][j] = &cs[j]
		}
	}
	return out
}

// commentSort is sort, or def when it is left out.
func commentSort(sort *store.CommentSort, def store.CommentSort) store.CommentSort {
	if sort == nil {
		return def
	}
	return *sort
}

// commentConnection maps a page of comments to a connection, and primes
// what its comments' fields will ask for, one statement per loader.
func (r *Resolver) commentConnection(ctx context.Context, page store.Page[*store.Comment], sort store.CommentSort) *model.CommentConnection {
	l := r.loadersFor(ctx)
	cl := l.comments()
	at := func(field string) bool { return selected(ctx, "edges", "node", field) }
	ids := make([]uuid.UUID, len(page.Items))
	for i, c := range page.Items {
		ids[i] = c.ID
		cl.Comments.loader().Prime(ctx, c.ID, c)
	}
	if len(ids) > 0 {
		if at("user") {
			prefetchUsers(ctx, l, page.Items, func(c *store.Comment) string { return c.UserID })
		}
		if at("reactionCounts") {
			_ = cl.ReactionCounts.Prefetch(ctx, ids)
		}
		if at("ownReactions") {
			_ = cl.OwnReactions.Prefetch(ctx, ids)
		}
	}
	e, info := edges(page, func(c *store.Comment) string { return store.CommentCursor(sort, c) },
		func(cur string, c *store.Comment) *model.CommentEdge { return &model.CommentEdge{Cursor: cur, Node: c} })
	return &model.CommentConnection{Edges: e, PageInfo: info}
}

// reactionEdges maps a page of reactions to a connection.
func reactionEdges(page store.Page[*store.Reaction]) *model.ReactionConnection {
	e, info := edges(page, func(x *store.Reaction) string { return x.ID.String() },
		func(c string, x *store.Reaction) *model.ReactionEdge { return &model.ReactionEdge{Cursor: c, Node: x} })
	return &model.ReactionConnection{Edges: e, PageInfo: info}
}

// setCommentComplexity gives the list fields of comments their cost.
func setCommentComplexity(c *graph.ComplexityRoot) {
	c.Activity.Comments = func(child int, first *int, _ *string, _ *store.CommentSort) int { return listCost(child, first) }
	c.Activity.Reactions = func(child int, _ *string, first *int, _ *string) int { return listCost(child, first) }
	c.Comment.Replies = func(child int, first *int, _ *string, _ *store.CommentSort) int { return listCost(child, first) }
	c.Comment.MentionedUsers = func(child int) int { return 1 + 20*child }
	c.Comment.ReactionCounts = func(child int) int { return 1 + 5*child }
	c.Comment.OwnReactions = func(child int) int { return 1 + 5*child }
}
