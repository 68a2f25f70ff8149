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
	return s.feed(ctx, id, s.fetchFeed(ctx, lookup))
}

// fetchFeed reads one feed through lookup.
func (s *Service) fetchFeed(ctx context.Context, lookup Lookup) func(*store.Feed) (*store.Feed, error) {
	return func(f *store.Feed) (*store.Feed, error) {
		// A root field has no siblings to batch with: fetch at once.
		feeds, err := s.lookup(lookup).FetchFeeds(ctx, []string{f.ID})
		if err != nil {
			return nil, err
		}
		return feeds[0], nil
	}
}

// feed is Feed with the feed read by fetch (nil when it does not exist).
func (s *Service) feed(ctx context.Context, id string, fetch func(*store.Feed) (*store.Feed, error)) (*store.Feed, error) {
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
	read, err := fetch(f)
	if err != nil || read == nil {
		return nil, err
	}
	if err := s.checkFeedRead(ctx, me, read); err != nil {
		return nil, err
	}
	return read, nil
}

// FeedWithActivities is Feed that also reads the page ActivitiesWith(feed,
// first, after, want) returns, in the same round trip (issue 22: the
// timeline page, feed(id) { activities }, is the hottest feed read). page
// is nil when it was not read so (a window ActivitiesWith refuses, a read
// that may go to a replica): the page then goes the usual way, with its
// errors. The page is read alongside the feed but kept only once the
// feed's read rules pass, the rules ActivitiesWith checks.
func (s *Service) FeedWithActivities(ctx context.Context, id string, lookup Lookup, first *int, after *string, want PageWant) (_ *store.Feed, page *store.Page[*store.Activity], extras []store.ActivityExtras, _ error) {
	n, pos, err := idAfter(first, after)
	if err != nil {
		f, err := s.Feed(ctx, id, lookup)
		return f, nil, nil, err
	}
	w, err := want.with(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	var read store.Page[*store.Activity]
	batched := false
	f, err := s.feed(ctx, id, func(f *store.Feed) (*store.Feed, error) {
		feed, p, x, ok, err := s.store.FeedWithActivities(ctx, f, pos, n, w)
		if !ok {
			return s.fetchFeed(ctx, lookup)(f)
		}
		read, extras, batched = p, x, true
		return feed, err
	})
	if err != nil || f == nil || !batched {
		return f, nil, nil, err
	}
	return f, &read, extras, nil
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
