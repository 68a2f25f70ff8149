package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/store"
)

// A timeline page, feed(id) { activities(first, after) { ... } }, is the
// hottest feed read. Its two statements (the feed with its counts and
// visibility, then the page) go to PostgreSQL in one round trip:
// Query.feed reads the page its activities field will ask for alongside
// the feed, and Feed.activities takes it if its arguments are the ones
// read. The page is kept only once feeds.Service's read rules passed on
// the feed.

// feedPageKey is one newest-first page of one feed, as Feed.activities is
// asked for it.
type feedPageKey struct {
	feed               string
	first              int
	hasFirst, hasAfter bool
	after              string
	want               feeds.PageWant
}

func newFeedPageKey(feed string, first *int, after *string, want feeds.PageWant) feedPageKey {
	k := feedPageKey{feed: feed, want: want}
	if first != nil {
		k.first, k.hasFirst = *first, true
	}
	k.after, k.hasAfter = deref(after)
	return k
}

// feedPage is a page Query.feed read, with its extras.
type feedPage struct {
	page   store.Page[*store.Activity]
	extras []store.ActivityExtras
}

// feedWithActivities is Query.feed: with the page its one newest-first
// activities field will ask for read in the same round trip when it can be.
func (r *queryResolver) feedWithActivities(ctx context.Context, id string) (*store.Feed, error) {
	first, after, want, ok := activitiesWindow(ctx)
	if !ok {
		return r.Feeds.Feed(ctx, id, r.feedLookup(ctx))
	}
	f, page, extras, err := r.Feeds.FeedWithActivities(ctx, id, r.feedLookup(ctx), first, after, want)
	if err != nil || f == nil || page == nil {
		return f, err
	}
	r.loadersFor(ctx).feedPages.put(newFeedPageKey(f.ID, first, after, want), feedPage{page: *page, extras: extras})
	return f, nil
}

// activitiesWindow is the arguments and wants of the one activities field
// selected on the feed, as Feed.activities will be asked for them; not ok
// when there is none, or more than one, or it is ranked, or its arguments
// do not read plainly.
func activitiesWindow(ctx context.Context) (first *int, after *string, want feeds.PageWant, ok bool) {
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return nil, nil, want, false
	}
	var field *graphql.CollectedField
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, []string{"Feed"}) {
		if f.Name == "activities" {
			if field != nil {
				return nil, nil, want, false
			}
			field = &f
		}
	}
	if field == nil {
		return nil, nil, want, false
	}
	args := field.ArgumentMap(oc.Variables)
	if args["ranking"] != nil {
		return nil, nil, want, false
	}
	if v := args["first"]; v != nil {
		n, err := graphql.UnmarshalInt(v)
		if err != nil {
			return nil, nil, want, false
		}
		first = &n
	}
	if v := args["after"]; v != nil {
		s, isString := v.(string)
		if !isString {
			return nil, nil, want, false
		}
		after = &s
	}
	at := func(name string) bool { return selectedIn(oc, field.Selections, "edges", "node", name) }
	return first, after, feeds.PageWant{Actors: at("actor"), Counts: at("reactionCounts"), Own: at("ownReactions")}, true
}
