package resolvers

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// edges maps a page of items to a connection's edges and page info. cursor
// gives an item's position in the list; edge builds the edge.
func edges[T, E any](page store.Page[T], cursor func(T) string, edge func(cursor string, node T) E) ([]E, *model.PageInfo) {
	out := make([]E, len(page.Items))
	info := &model.PageInfo{HasNextPage: page.HasNext, HasPreviousPage: page.HasPrev}
	for i, item := range page.Items {
		c := store.EncodeCursor(cursor(item))
		out[i] = edge(c, item)
		if i == 0 {
			info.StartCursor = &c
		}
		if i == len(page.Items)-1 {
			info.EndCursor = &c
		}
	}
	return out, info
}

// mapItems maps a page's items.
func mapItems[T, V any](items []T, f func(T) V) []V {
	out := make([]V, len(items))
	for i, it := range items {
		out[i] = f(it)
	}
	return out
}

// prefetchUsers loads, in one statement, the users a page's items name.
func prefetchUsers[T any](ctx context.Context, l *Loaders, items []T, user func(T) string) {
	if len(items) > 0 {
		_ = l.Users.Prefetch(ctx, mapItems(items, user))
	}
}

// lastMessageIDs are the ids of channels' last messages.
func lastMessageIDs(channels []*store.Channel) []uuid.UUID {
	var ids []uuid.UUID
	for _, c := range channels {
		if c.LastMessageID != nil {
			ids = append(ids, *c.LastMessageID)
		}
	}
	return ids
}
