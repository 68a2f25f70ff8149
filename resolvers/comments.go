package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"

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
	// FirstPages are first pages of comments or replies, batched across
	// the activities (or comments) of a page.
	FirstPages *Loader[firstCommentsKey, store.Page[*store.Comment]]
	// prefetched are the threads whose first page a list prefetched with
	// its children's fields: their resolvers prefetch nothing more.
	prefetched sync.Map
}

// firstCommentsKey asks for the first page of a thread: an activity's
// comments (parent uuid.Nil) or a comment's replies.
type firstCommentsKey struct {
	activity, parent uuid.UUID
	sort             store.CommentSort
	first            int
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
			FirstPages: NewLoader(func(ctx context.Context, keys []firstCommentsKey) ([]store.Page[*store.Comment], error) {
				// One statement per kind of list and arguments (usually one).
				type group struct {
					replies bool
					sort    store.CommentSort
					first   int
				}
				out := make([]store.Page[*store.Comment], len(keys))
				groups := map[group][]int{}
				var order []group
				for i, k := range keys {
					g := group{k.parent != uuid.Nil, k.sort, k.first}
					if _, ok := groups[g]; !ok {
						order = append(order, g)
					}
					groups[g] = append(groups[g], i)
				}
				for _, g := range order {
					threads := make([]store.CommentThread, len(groups[g]))
					for j, i := range groups[g] {
						threads[j] = store.CommentThread{Activity: keys[i].activity}
						if g.replies {
							p := keys[i].parent
							threads[j].Parent = &p
						}
					}
					pages, err := s.FirstComments(ctx, threads, g.sort, g.first)
					if err != nil {
						return nil, err
					}
					for j, i := range groups[g] {
						out[i] = pages[j]
					}
				}
				return out, nil
			}),
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

// comments returns a page of a thread: a first page through the loader
// that batches the first pages of a whole list of activities (or
// comments), a later one directly.
func (r *Resolver) comments(ctx context.Context, activity uuid.UUID, parent *uuid.UUID, sort *store.CommentSort, def store.CommentSort, first *int, after *string) (*model.CommentConnection, error) {
	order := commentSort(sort, def)
	if after != nil && *after != "" {
		page, err := r.Feeds.Comments(ctx, activity, parent, order, first, after)
		if err != nil {
			return nil, err
		}
		return r.commentConnection(ctx, page, order, true), nil
	}
	n, _, err := store.PageArgs(first, nil, 25)
	if err != nil {
		return nil, err
	}
	key := firstCommentsKey{activity: activity, sort: order, first: n}
	if parent != nil {
		key.parent = *parent
	}
	cl := r.loadersFor(ctx).comments()
	page, err := cl.FirstPages.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	// A list of activities (or comments) prefetched this page and what it
	// shows, for all its items at once; a lone one prefetches its own.
	_, done := cl.prefetched.Load(key)
	return r.commentConnection(ctx, page, order, !done), nil
}

// prefetchCommentThreads primes, for the items of a list at path (activities,
// or comments), the first pages of the comments (or replies) field
// selected under them, and what those pages show, down the thread: one
// statement per loader and level, whatever the list's size. A later page
// (after) is read by its resolver.
func (r *Resolver) prefetchCommentThreads(ctx context.Context, field string, keys []firstCommentsKey, path ...string) {
	oc := graphql.GetOperationContext(ctx)
	f := selectedField(ctx, append(path, field)...)
	if len(keys) == 0 || f == nil || oc == nil {
		return
	}
	args := f.ArgumentMap(oc.Variables)
	if after, _ := args["after"].(string); after != "" {
		return
	}
	first, sort := 25, store.CommentsNewest
	if field == "replies" {
		sort = store.CommentsOldest
	}
	if n, ok := args["first"].(int64); ok {
		first = int(n)
	} else if n, ok := args["first"].(int); ok {
		first = n
	}
	if s, ok := args["sort"].(string); ok {
		sort = store.CommentSort(s)
	}
	if _, err := store.PageSize("first", first); err != nil {
		return // the resolver says so
	}
	for i := range keys {
		keys[i].sort, keys[i].first = sort, first
	}
	cl := r.loadersFor(ctx).comments()
	pages, err := cl.FirstPages.Fetch(ctx, keys)
	if err != nil {
		return
	}
	var all []*store.Comment
	for i, p := range pages {
		cl.prefetched.Store(keys[i], true)
		all = append(all, p.Items...)
	}
	r.primeComments(ctx, all, append(path, field, "edges", "node")...)
}

// primeComments primes what the fields at path of a list of comments will
// ask for, replies included, one statement per loader.
func (r *Resolver) primeComments(ctx context.Context, cs []*store.Comment, path ...string) {
	if len(cs) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	cl := l.comments()
	at := func(field string) bool { return selected(ctx, append(path, field)...) }
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
		cl.Comments.loader().Prime(ctx, c.ID, c)
	}
	if at("user") {
		prefetchUsers(ctx, l, cs, func(c *store.Comment) string { return c.UserID })
	}
	if at("reactionCounts") {
		_ = cl.ReactionCounts.Prefetch(ctx, ids)
	}
	if at("ownReactions") {
		_ = cl.OwnReactions.Prefetch(ctx, ids)
	}
	r.prefetchCommentThreads(ctx, "replies", mapItems(cs, func(c *store.Comment) firstCommentsKey {
		return firstCommentsKey{activity: c.ActivityID, parent: c.ID}
	}), path...)
}

// selectedField is the field at path below the field being resolved, as
// selected (through fragments too), or nil.
func selectedField(ctx context.Context, path ...string) *graphql.CollectedField {
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil || len(path) == 0 {
		return nil
	}
	set := fc.Field.Selections
	var found *graphql.CollectedField
	for _, name := range path {
		found = nil
		for _, f := range graphql.CollectFields(oc, set, nil) {
			if f.Name == name {
				found = &f
				set = f.Selections
				break
			}
		}
		if found == nil {
			return nil
		}
	}
	return found
}

// commentConnection maps a page of comments to a connection and, when
// prefetch is set, primes what its comments' fields will ask for, one
// statement per loader.
func (r *Resolver) commentConnection(ctx context.Context, page store.Page[*store.Comment], sort store.CommentSort, prefetch bool) *model.CommentConnection {
	if prefetch {
		r.primeComments(ctx, page.Items, "edges", "node")
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
