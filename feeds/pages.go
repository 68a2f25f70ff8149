package feeds

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Feed returns a feed the caller may read, with its counts: nil for a feed
// of a user that does not exist.
func (s *Service) Feed(ctx context.Context, id string, lookup Lookup) (*store.Feed, error) {
	f, me, err := callerFeed(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	// A timeline or notification feed is refused before reading it; a
	// user feed's visibility comes with it.
	if f.Visibility != "" {
		if err := s.checkFeedRead(ctx, me, f); err != nil {
			return nil, err
		}
	}
	// A root field has no siblings to batch with: fetch at once.
	feeds, err := s.lookup(lookup).FetchFeeds(ctx, []string{f.ID})
	if err != nil || feeds[0] == nil {
		return nil, err
	}
	if err := s.checkFeedRead(ctx, me, feeds[0]); err != nil {
		return nil, err
	}
	return feeds[0], nil
}

// Activities returns a page of a feed's activities, newest first, merged
// with those of the actors it follows above the pull threshold.
func (s *Service) Activities(ctx context.Context, f *store.Feed, first *int, after *string) (store.Page[*store.Activity], error) {
	if err := s.RequireRead(ctx, f); err != nil {
		return store.Page[*store.Activity]{}, err
	}
	n, pos, err := idAfter(first, after)
	if err != nil {
		return store.Page[*store.Activity]{}, err
	}
	return s.store.FeedActivities(ctx, f, pos, n)
}

// Groups returns a page of an aggregated or notification feed's groups,
// the group with the newest activity first; a flat feed has none.
func (s *Service) Groups(ctx context.Context, f *store.Feed, first *int, after *string) (store.Page[*store.ActivityGroup], error) {
	if err := s.RequireRead(ctx, f); err != nil {
		return store.Page[*store.ActivityGroup]{}, err
	}
	n, pos, err := idAfter(first, after)
	if err != nil || f.Kind == store.FeedFlat {
		return store.Page[*store.ActivityGroup]{}, err
	}
	return s.store.FeedGroups(ctx, f, pos, n)
}

// idAfter checks a page's first/after arguments, for lists whose cursors
// hold an activity id.
func idAfter(first *int, after *string) (int, uuid.UUID, error) {
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil || pos == "" {
		return n, uuid.Nil, err
	}
	id, err := uuid.Parse(pos)
	if err != nil {
		return 0, uuid.Nil, store.Invalid("after", "is not a cursor of this list; pass an endCursor from a previous page")
	}
	return n, id, nil
}

// PageWant says what a page reads with its activities: the actor, the
// reaction counts, the caller's own reactions.
type PageWant struct{ Actors, Counts, Own bool }

// with is want for the caller. Without a caller there are no own
// reactions to read: the field's own lookup answers its error.
func (want PageWant) with(ctx context.Context) (store.PageWith, error) {
	w := store.PageWith{Actors: want.Actors, Counts: want.Counts}
	if want.Own {
		if me, err := auth.Caller(ctx); err == nil {
			w.Viewer = me.UserID
		}
	}
	return w, nil
}

// ActivitiesWith is Activities that reads what want asks of each activity
// in the page's own statement; extras[i] is the page's Items[i]'s.
func (s *Service) ActivitiesWith(ctx context.Context, f *store.Feed, first *int, after *string, want PageWant) (store.Page[*store.Activity], []store.ActivityExtras, error) {
	if err := s.RequireRead(ctx, f); err != nil {
		return store.Page[*store.Activity]{}, nil, err
	}
	n, pos, err := idAfter(first, after)
	if err != nil {
		return store.Page[*store.Activity]{}, nil, err
	}
	w, err := want.with(ctx)
	if err != nil {
		return store.Page[*store.Activity]{}, nil, err
	}
	return s.store.FeedActivitiesWith(ctx, f, pos, n, w)
}

// ActivityExtras reads what want asks of activities a page read some other
// way (a ranked page), in one statement; out[i] is acts[i]'s.
func (s *Service) ActivityExtras(ctx context.Context, acts []*store.Activity, want PageWant) ([]store.ActivityExtras, error) {
	w, err := want.with(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.ActivityExtras(ctx, acts, w)
}
