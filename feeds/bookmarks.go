package feeds

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Bookmark saves an activity the caller may read in one of the caller's
// folders ("" is the default folder). Saving it there again returns the
// existing bookmark.
func (s *Service) Bookmark(ctx context.Context, activity, folder string, lookup Lookup) (*store.Bookmark, error) {
	if err := store.CheckFolder("folder", folder); err != nil {
		return nil, err
	}
	a, me, err := s.readableActivity(ctx, "activity", activity, lookup)
	if err != nil {
		return nil, err
	}
	return s.store.AddBookmark(ctx, me.UserID, folder, a)
}

// Unbookmark removes the caller's bookmark of an activity from one folder,
// or from every folder when folder is nil. It reports whether there was
// one; an activity removed since is fine.
func (s *Service) Unbookmark(ctx context.Context, activity string, folder *string) (bool, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	id, err := store.ParseID("activity", activity)
	if err != nil {
		return false, err
	}
	if folder != nil {
		if err := store.CheckFolder("folder", *folder); err != nil {
			return false, err
		}
	}
	n, err := s.store.RemoveBookmarks(ctx, me.UserID, id, folder)
	if err != nil {
		return false, fmt.Errorf("feeds: unbookmark: %w", err)
	}
	return n > 0, nil
}

// Bookmarks returns a page of a user's bookmarks, newest first, from one
// folder or from all: only the user's own (no one else's, not even an
// admin's), and only of activities the user may still read.
func (s *Service) Bookmarks(ctx context.Context, userID string, folder *string, first *int, after *string) (store.Page[*store.Bookmark], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Bookmark]{}, err
	}
	if me.UserID != userID {
		return store.Page[*store.Bookmark]{}, auth.Forbidden("bookmarks are private: read your own on me")
	}
	if folder != nil {
		if err := store.CheckFolder("folder", *folder); err != nil {
			return store.Page[*store.Bookmark]{}, err
		}
	}
	n, pos, err := idAfter(first, after)
	if err != nil {
		return store.Page[*store.Bookmark]{}, err
	}
	return fillPage(ctx, n, pos,
		func(ctx context.Context, before uuid.UUID, limit int) ([]*store.Bookmark, error) {
			return s.store.Bookmarks(ctx, me.UserID, folder, before, limit)
		},
		func(b *store.Bookmark) uuid.UUID { return b.ID },
		func(ctx context.Context, marks []*store.Bookmark) ([]*store.Bookmark, error) {
			acts := make([]*store.Activity, len(marks))
			for i, b := range marks {
				acts[i] = b.Activity
			}
			visible, err := s.visibleActivities(ctx, me, acts)
			if err != nil {
				return nil, err
			}
			keep := make(map[*store.Activity]bool, len(visible))
			for _, a := range visible {
				keep[a] = true
			}
			out := marks[:0:0]
			for _, b := range marks {
				if keep[b.Activity] {
					out = append(out, b)
				}
			}
			return out, nil
		})
}
