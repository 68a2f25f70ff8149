package resolvers

import (
	"context"
	"sync"

	"github.com/google/uuid"

	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// feedLoaders are the dataloaders of the feeds product, created together on
// first use so a response that needs none allocates nothing for them.
type feedLoaders struct {
	feedService *feeds.Service
	feedOnce    sync.Once
	feedSet     *feedLoaderSet
	// commentOnce and commentSet are the loaders of comments (comments.go).
	commentOnce sync.Once
	commentSet  *commentLoaderSet
}

// feedLoaderSet holds the feeds product's loaders.
type feedLoaderSet struct {
	Feeds          *Loader[string, *store.Feed]
	Activities     *Loader[uuid.UUID, *store.Activity]
	ReactionCounts *Loader[uuid.UUID, []*store.ReactionCount]
	// OwnReactions are the caller's reactions, by activity.
	OwnReactions    *Loader[uuid.UUID, []*store.Reaction]
	LatestReactions *Loader[latestReactionsKey, []*store.Reaction]
	// Counts answers unseenCount and unreadCount together, once per feed.
	Counts *Loader[string, store.FeedCounts]
}

// latestReactionsKey asks for an activity's newest reactions.
type latestReactionsKey struct {
	activity uuid.UUID
	kind     string
	first    int
}

func newFeedLoaders(s *feeds.Service) feedLoaders { return feedLoaders{feedService: s} }

// feeds returns the feeds product's loaders, creating them on first use.
func (l *feedLoaders) feeds() *feedLoaderSet {
	l.feedOnce.Do(func() { l.feedSet = newFeedLoaderSet(l.feedService) })
	return l.feedSet
}

func newFeedLoaderSet(s *feeds.Service) *feedLoaderSet {
	return &feedLoaderSet{
		Feeds:      NewLoader(s.FeedsByID),
		Counts:     NewLoader(s.FeedCounts),
		Activities: NewLoader(s.ActivitiesByID),
		ReactionCounts: NewLoader(func(ctx context.Context, ids []uuid.UUID) ([][]*store.ReactionCount, error) {
			counts, err := s.ReactionCounts(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make([][]*store.ReactionCount, len(counts))
			for i, cs := range counts {
				out[i] = make([]*store.ReactionCount, len(cs))
				for j := range cs {
					out[i][j] = &cs[j]
				}
			}
			return out, nil
		}),
		OwnReactions: NewLoader(s.OwnReactions),
		LatestReactions: NewLoader(func(ctx context.Context, keys []latestReactionsKey) ([][]*store.Reaction, error) {
			return latestByGroup(keys, func(k latestReactionsKey, ids []uuid.UUID) ([][]*store.Reaction, error) {
				return s.LatestReactions(ctx, ids, k.kind, k.first)
			})
		}),
	}
}

// latestByGroup runs one batched lookup per group of keys that share
// arguments (usually one), so a page costs one statement per loader.
func latestByGroup(keys []latestReactionsKey, fetch func(latestReactionsKey, []uuid.UUID) ([][]*store.Reaction, error)) ([][]*store.Reaction, error) {
	type group struct {
		kind  string
		first int
	}
	out := make([][]*store.Reaction, len(keys))
	groups := map[group][]int{}
	var order []group
	for i, k := range keys {
		g := group{k.kind, k.first}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		idx := groups[g]
		ids := make([]uuid.UUID, len(idx))
		for j, i := range idx {
			ids[j] = keys[i].activity
		}
		values, err := fetch(keys[idx[0]], ids)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			out[i] = values[j]
		}
	}
	return out, nil
}

// feedLookup reads feeds, activities and users for the feeds product
// through the request's loaders, so what it reads is there for the
// response.
type feedLookup struct{ l *Loaders }

func (f feedLookup) FetchFeeds(ctx context.Context, ids []string) ([]*store.Feed, error) {
	return f.l.feeds().Feeds.Fetch(ctx, ids)
}

func (f feedLookup) LoadFeed(ctx context.Context, id string) (*store.Feed, error) {
	return f.l.feeds().Feeds.Load(ctx, id)
}

func (f feedLookup) FetchActivities(ctx context.Context, ids []uuid.UUID) ([]*store.Activity, error) {
	return f.l.feeds().Activities.Fetch(ctx, ids)
}

func (f feedLookup) LoadUser(ctx context.Context, id string) (*store.User, error) {
	return f.l.Users.Load(ctx, id)
}

// feedLookup returns the request's lookup for the feeds product.
func (r *Resolver) feedLookup(ctx context.Context) feedLookup { return feedLookup{r.loadersFor(ctx)} }

// setFeedComplexity gives the feeds product's list fields their cost.
func setFeedComplexity(c *graph.ComplexityRoot) {
	c.Feed.Activities = func(child int, first *int, _ *string, _ *string) int { return listCost(child, first) }
	c.Feed.Groups = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.Followers = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.Following = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.FollowRequests = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Query.FollowSuggestions = func(child int, first *int) int { return listCost(child, first) }
	c.Activity.LatestReactions = func(child int, _ *string, first *int) int { return listCost(child, first) }
	c.Activity.OwnReactions = func(child int) int { return 1 + 5*child }
	c.Activity.ReactionCounts = func(child int) int { return 1 + 5*child }
	c.Activity.To = func(child int) int { return 1 + 20*child }
	c.ActivityGroup.Actors = func(child int, first *int) int { return listCost(child, first) }
	c.ActivityGroup.Activities = func(child int, first *int) int { return listCost(child, first) }
	c.FeedUpdate.Added = func(child int) int { return 1 + 25*child }
	c.FeedUpdate.Updated = func(child int) int { return 1 + 25*child }
}

// Limits on the lists of an activity group.
const maxGroupList = 10

// groupListSize checks the first argument of an activity group's lists.
func groupListSize(first *int, def int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 0 || *first > maxGroupList {
		return 0, store.Invalid("first", "must be between 0 and %d, got %d", maxGroupList, *first)
	}
	return *first, nil
}

// loadFeed returns a feed with its counts.
func (r *Resolver) loadFeed(ctx context.Context, feedID string) (*store.Feed, error) {
	f, err := r.loadersFor(ctx).feeds().Feeds.Load(ctx, feedID)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, store.NotFound("feed", feedID)
	}
	return f, nil
}

// feedCounts returns the unseen and unread groups of a feed the caller may
// read.
func (r *Resolver) feedCounts(ctx context.Context, f *store.Feed) (store.FeedCounts, error) {
	if err := r.Feeds.RequireRead(ctx, f); err != nil {
		return store.FeedCounts{}, err
	}
	return r.loadersFor(ctx).feeds().Counts.Load(ctx, f.ID)
}

// prefetchActivities primes what a page of activities' children will ask
// for, whatever the page size: the actor, reaction counts and own reactions
// in one statement, unless the page read them with itself (extras, one per
// activity, or nil), then one statement per other loader.
func (r *Resolver) prefetchActivities(ctx context.Context, acts []*store.Activity, extras []store.ActivityExtras, path ...string) {
	if len(acts) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	fl := l.feeds()
	for _, a := range acts {
		fl.Activities.loader().Prime(ctx, a.ID, a)
	}
	if extras == nil {
		if want := pageWant(ctx, path...); want != (feeds.PageWant{}) {
			extras, _ = r.Feeds.ActivityExtras(ctx, acts, want) // on error the loaders try again
		}
	}
	primeExtras(ctx, l, acts, extras)
	r.prefetchCommentThreads(ctx, "comments", mapItems(acts, func(a *store.Activity) firstCommentsKey {
		return firstCommentsKey{activity: a.ID}
	}), path...)
}

// pageWant is what the operation selects of the activities at path that a
// page can read with them.
func pageWant(ctx context.Context, path ...string) feeds.PageWant {
	at := func(field string) bool { return selected(ctx, append(path, field)...) }
	return feeds.PageWant{Actors: at("actor"), Counts: at("reactionCounts"), Own: at("ownReactions")}
}

// primeExtras hands the loaders what a page read with its activities, so
// the activities' fields find it without a statement or a wait.
func primeExtras(ctx context.Context, l *Loaders, acts []*store.Activity, extras []store.ActivityExtras) {
	if len(extras) != len(acts) {
		return
	}
	fl := l.feeds()
	for i, a := range acts {
		x := extras[i]
		if x.Actor != nil {
			l.Users.Prime(ctx, a.ActorID, x.Actor)
		}
		if x.Counts != nil {
			counts := make([]*store.ReactionCount, len(x.Counts))
			for j := range x.Counts {
				counts[j] = &x.Counts[j]
			}
			fl.ReactionCounts.Prime(ctx, a.ID, counts)
		}
		if x.Own != nil {
			fl.OwnReactions.Prime(ctx, a.ID, x.Own)
		}
	}
}

// primeChanged hands the loaders of a feedUpdated event what its node read
// once for all its subscribers: the changed activities and their reaction
// counts, which a live like counter asks for on every update.
func (r *Resolver) primeChanged(ctx context.Context, u *feeds.FeedUpdate) {
	fl := r.loadersFor(ctx).feeds()
	for i, a := range u.Changed {
		fl.Activities.loader().Prime(ctx, a.ID, a)
		counts := make([]*store.ReactionCount, len(u.ChangedCounts[i]))
		for j := range u.ChangedCounts[i] {
			counts[j] = &u.ChangedCounts[i][j]
		}
		fl.ReactionCounts.loader().Prime(ctx, a.ID, counts)
	}
}

// activityEdges maps a page of activities to a connection.
func activityEdges(page store.Page[*store.Activity]) *model.ActivityConnection {
	e, info := edges(page, func(a *store.Activity) string { return a.ID.String() },
		func(c string, a *store.Activity) *model.ActivityEdge { return &model.ActivityEdge{Cursor: c, Node: a} })
	return &model.ActivityConnection{Edges: e, PageInfo: info}
}

// rankedEdges maps a ranked page of activities to a connection, each edge
// with its score.
func rankedEdges(page store.Page[feeds.RankedActivity]) *model.ActivityConnection {
	e, info := edges(page, func(a feeds.RankedActivity) string { return a.Position },
		func(c string, a feeds.RankedActivity) *model.ActivityEdge {
			return &model.ActivityEdge{Cursor: c, Node: a.Activity, Score: &a.Score}
		})
	return &model.ActivityConnection{Edges: e, PageInfo: info}
}

// groupEdges maps a page of activity groups to a connection.
func groupEdges(page store.Page[*store.ActivityGroup]) *model.ActivityGroupConnection {
	e, info := edges(page, func(g *store.ActivityGroup) string { return g.LatestID.String() },
		func(c string, g *store.ActivityGroup) *model.ActivityGroupEdge {
			return &model.ActivityGroupEdge{Cursor: c, Node: g}
		})
	return &model.ActivityGroupConnection{Edges: e, PageInfo: info}
}

// feedConnection maps a page of followers or followed feeds to a
// connection, with the feeds read in one batch.
func (r *Resolver) feedConnection(ctx context.Context, page store.Page[store.FeedLink]) (*model.FeedConnection, error) {
	ids := make([]string, len(page.Items))
	for i, l := range page.Items {
		ids[i] = l.FeedID
	}
	found, err := r.loadersFor(ctx).feeds().Feeds.Fetch(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Feed, len(found))
	for _, f := range found {
		if f != nil {
			byID[f.ID] = f
		}
	}
	e, info := edges(page, func(l store.FeedLink) string { return l.FeedID },
		func(c string, l store.FeedLink) *model.FeedEdge {
			return &model.FeedEdge{Cursor: c, Node: byID[l.FeedID], CreatedAt: l.CreatedAt}
		})
	return &model.FeedConnection{Edges: e, PageInfo: info}, nil
}
