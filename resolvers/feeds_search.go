package resolvers

import (
	"time"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// setSearchComplexity prices searchActivities and bookmarks by their page
// size, as the feeds' other lists are.
func setSearchComplexity(c *graph.ComplexityRoot) {
	c.Query.SearchActivities = func(child int, _ string, _, _, _ *string, _, _ *time.Time, first *int, _ *string) int {
		return listCost(child, first)
	}
	c.User.Bookmarks = func(child int, _ *string, first *int, _ *string) int { return listCost(child, first) }
}

// bookmarkEdges maps a page of bookmarks to a connection.
func bookmarkEdges(page store.Page[*store.Bookmark]) *model.BookmarkConnection {
	e, info := edges(page, func(b *store.Bookmark) string { return b.ID.String() },
		func(c string, b *store.Bookmark) *model.BookmarkEdge { return &model.BookmarkEdge{Cursor: c, Node: b} })
	return &model.BookmarkConnection{Edges: e, PageInfo: info}
}

// values copies a list of input objects out of their pointers.
func values[T any](in []*T) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = *v
	}
	return out
}
