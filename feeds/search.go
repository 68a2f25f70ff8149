package feeds

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// SearchArgs are searchActivities' arguments, as the schema has them.
type SearchArgs struct {
	Query    string
	Feed     *string
	Verb     *string
	Actor    *string
	From, To *time.Time
	First    *int
	After    *string
}

// SearchActivities returns a page of the activities the caller may read
// whose object, target or data's text match the query, newest first,
// filtered by origin feed (which the caller must be allowed to read),
// verb, actor and time.
func (s *Service) SearchActivities(ctx context.Context, args SearchArgs) (store.Page[*store.Activity], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Activity]{}, err
	}
	q := store.ActivitySearch{Query: args.Query, Verb: args.Verb, ActorID: args.Actor, From: args.From, To: args.To}
	if args.Feed != nil {
		f, _, err := s.readableFeed(ctx, "feed", *args.Feed)
		if err != nil {
			return store.Page[*store.Activity]{}, err
		}
		q.FeedID = &f.ID
	}
	if err := store.CheckActivitySearch(&q); err != nil {
		return store.Page[*store.Activity]{}, err
	}
	n, after, err := idAfter(args.First, args.After)
	if err != nil {
		return store.Page[*store.Activity]{}, err
	}
	return fillPage(ctx, n, after,
		func(ctx context.Context, before uuid.UUID, limit int) ([]*store.Activity, error) {
			return s.store.SearchActivities(ctx, q, before, limit)
		},
		func(a *store.Activity) uuid.UUID { return a.ID },
		func(ctx context.Context, acts []*store.Activity) ([]*store.Activity, error) {
			return s.visibleActivities(ctx, me, acts)
		})
}
