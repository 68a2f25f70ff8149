package resolvers

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// feedLoaders are the dataloaders of the feeds product, created together on
// first use so a response that needs none allocates nothing for them.
type feedLoaders struct {
	feedStore *store.Store
	feedOnce  sync.Once
	feedSet   *feedLoaderSet
}

// feedLoaderSet holds the feeds product's loaders.
type feedLoaderSet struct {
	Feeds           *Loader[string, *store.Feed]
	Activities      *Loader[uuid.UUID, *store.Activity]
	ReactionCounts  *Loader[uuid.UUID, []*store.ReactionCount]
	OwnReactions    *Loader[ownReactionsKey, []*store.Reaction]
	LatestReactions *Loader[latestReactionsKey, []*store.Reaction]
	// Counts answers unseenCount and unreadCount together, once per feed.
	Counts *Loader[string, store.FeedCounts]
}

// ownReactionsKey asks for one user's reactions to one activity.
type ownReactionsKey struct {
	user     string
	activity uuid.UUID
}

// latestReactionsKey asks for an activity's newest reactions.
type latestReactionsKey struct {
	activity uuid.UUID
	kind     string
	first    int
}

func newFeedLoaders(s *store.Store) feedLoaders { return feedLoaders{feedStore: s} }

// feeds returns the feeds product's loaders, creating them on first use.
func (l *feedLoaders) feeds() *feedLoaderSet {
	l.feedOnce.Do(func() { l.feedSet = newFeedLoaderSet(l.feedStore) })
	return l.feedSet
}

func newFeedLoaderSet(s *store.Store) *feedLoaderSet {
	return &feedLoaderSet{
		Feeds: NewLoader(s.FeedsByID),
		Counts: NewLoader(func(ctx context.Context, ids []string) ([]store.FeedCounts, error) {
			out := make([]store.FeedCounts, len(ids))
			for i, id := range ids {
				f, err := store.ParseFeedID("feed", id)
				if err != nil {
					return nil, err
				}
				if out[i], err = s.FeedUnseenUnread(ctx, f); err != nil {
					return nil, err
				}
			}
			return out, nil
		}),
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
		OwnReactions: NewLoader(func(ctx context.Context, keys []ownReactionsKey) ([][]*store.Reaction, error) {
			return byGroup(keys, func(k ownReactionsKey) string { return k.user }, func(k ownReactionsKey) uuid.UUID { return k.activity },
				func(k ownReactionsKey, ids []uuid.UUID) ([][]*store.Reaction, error) {
					return s.OwnReactions(ctx, k.user, ids)
				})
		}),
		LatestReactions: NewLoader(func(ctx context.Context, keys []latestReactionsKey) ([][]*store.Reaction, error) {
			type group struct {
				kind  string
				first int
			}
			return byGroup(keys, func(k latestReactionsKey) group { return group{k.kind, k.first} }, func(k latestReactionsKey) uuid.UUID { return k.activity },
				func(k latestReactionsKey, ids []uuid.UUID) ([][]*store.Reaction, error) {
					return s.LatestReactions(ctx, ids, k.kind, k.first)
				})
		}),
	}
}

// byGroup runs one batched lookup per group of keys that share arguments
// (usually one), so a page costs one statement per loader.
func byGroup[K any, G comparable, V any](keys []K, groupOf func(K) G, idOf func(K) uuid.UUID, fetch func(K, []uuid.UUID) ([]V, error)) ([]V, error) {
	out := make([]V, len(keys))
	groups := map[G][]int{}
	var order []G
	for i, k := range keys {
		g := groupOf(k)
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		idx := groups[g]
		ids := make([]uuid.UUID, len(idx))
		for j, i := range idx {
			ids[j] = idOf(keys[i])
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

// setFeedComplexity gives the feeds product's list fields their cost.
func setFeedComplexity(c *graph.ComplexityRoot) {
	c.Feed.Activities = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.Groups = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.Followers = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Feed.Following = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Activity.LatestReactions = func(child int, _ *string, first *int) int { return listCost(child, first) }
	c.Activity.OwnReactions = func(child int) int { return 1 + 5*child }
	c.Activity.ReactionCounts = func(child int) int { return 1 + 5*child }
	c.Activity.To = func(child int) int { return 1 + 20*child }
	c.ActivityGroup.Actors = func(child int, first *int) int { return listCost(child, first) }
	c.ActivityGroup.Activities = func(child int, first *int) int { return listCost(child, first) }
	c.FeedUpdate.Added = func(child int) int { return 1 + 25*child }
}

// Limits on the lists of an activity group.
const maxGroupList = 10

// canReadFeed reports whether the caller may read a feed: anyone signed in
// reads user feeds; timelines and notifications only their owner or admins.
func canReadFeed(id auth.Identity, f *store.Feed) bool {
	return id.IsAdmin() || f.Group == store.GroupUser || f.OwnerID == id.UserID
}

// readableFeed parses a feed id and checks that the caller may read it.
func readableFeed(ctx context.Context, field, feedID string) (*store.Feed, auth.Identity, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, id, err
	}
	f, err := store.ParseFeedID(field, feedID)
	if err != nil {
		return nil, id, err
	}
	if err := checkFeedRead(id, f); err != nil {
		return nil, id, err
	}
	return f, id, nil
}

// checkFeedRead is FORBIDDEN when id may not read f's content.
func checkFeedRead(id auth.Identity, f *store.Feed) error {
	if !canReadFeed(id, f) {
		return auth.Forbidden("only %s (or an admin) may read %s", f.OwnerID, f.ID)
	}
	return nil
}

// requireFeedRead checks that the caller may read f's content: the check
// readableFeed makes for feed(id), for a feed reached inside another object
// (a follower, an activity's to or origin, a follow's source).
func requireFeedRead(ctx context.Context, f *store.Feed) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	return checkFeedRead(id, f)
}

// ownFeed parses a feed id and checks that the caller owns it (or is an admin).
func ownFeed(ctx context.Context, field, feedID string) (*store.Feed, auth.Identity, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, id, err
	}
	f, err := store.ParseFeedID(field, feedID)
	if err != nil {
		return nil, id, err
	}
	if !id.IsAdmin() && f.OwnerID != id.UserID {
		return nil, id, auth.Forbidden("%s belongs to %s", f.ID, f.OwnerID)
	}
	return f, id, nil
}

// canReadActivity reports whether the caller may read an activity: its
// actor, admins, and whoever may read its origin or owns a feed it was
// copied to.
func canReadActivity(id auth.Identity, a *store.Activity) bool {
	if id.IsAdmin() || a.ActorID == id.UserID {
		return true
	}
	if f, err := store.ParseFeedID("", a.FeedID); err == nil && canReadFeed(id, f) {
		return true
	}
	for _, to := range a.To {
		if f, err := store.ParseFeedID("", to); err == nil && f.OwnerID == id.UserID {
			return true
		}
	}
	return false
}

// readableActivity loads an activity the caller may read.
func (r *Resolver) readableActivity(ctx context.Context, field, activityID string) (*store.Activity, auth.Identity, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, id, err
	}
	aid, err := store.ParseID(field, activityID)
	if err != nil {
		return nil, id, err
	}
	acts, err := r.loadersFor(ctx).feeds().Activities.Fetch(ctx, []uuid.UUID{aid})
	if err != nil {
		return nil, id, err
	}
	a := acts[0]
	if a == nil {
		return nil, id, store.NotFound("activity", activityID)
	}
	if !canReadActivity(id, a) {
		return nil, id, auth.Forbidden("you may not read activity %s", activityID)
	}
	return a, id, nil
}

// ownActivity loads an activity the caller posted (or any, for an admin).
func (r *Resolver) ownActivity(ctx context.Context, activityID string) (*store.Activity, error) {
	a, id, err := r.readableActivity(ctx, "id", activityID)
	if err != nil {
		return nil, err
	}
	if !id.IsAdmin() && a.ActorID != id.UserID {
		return nil, auth.Forbidden("only its actor (or an admin) may change activity %s", activityID)
	}
	return a, nil
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

// prefetchActivities primes what a page of activities' children will ask
// for, one statement per loader, whatever the page size.
func (r *Resolver) prefetchActivities(ctx context.Context, acts []*store.Activity, path ...string) {
	if len(acts) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	fl := l.feeds()
	at := func(field string) bool { return selected(ctx, append(path, field)...) }
	ids := make([]uuid.UUID, len(acts))
	actors := make([]string, len(acts))
	for i, a := range acts {
		ids[i] = a.ID
		actors[i] = a.ActorID
		fl.Activities.loader().Prime(ctx, a.ID, a)
	}
	if at("actor") {
		_ = l.Users.Prefetch(ctx, actors)
	}
	if at("reactionCounts") {
		_ = fl.ReactionCounts.Prefetch(ctx, ids)
	}
	if at("ownReactions") {
		if me, err := caller(ctx); err == nil {
			keys := make([]ownReactionsKey, len(ids))
			for i, id := range ids {
				keys[i] = ownReactionsKey{user: me.UserID, activity: id}
			}
			_ = fl.OwnReactions.Prefetch(ctx, keys)
		}
	}
}

// activityEdges maps a page of activities to a connection.
func activityEdges(page store.Page[*store.Activity]) *model.ActivityConnection {
	e, info := edges(page, func(a *store.Activity) string { return a.ID.String() },
		func(c string, a *store.Activity) *model.ActivityEdge { return &model.ActivityEdge{Cursor: c, Node: a} })
	return &model.ActivityConnection{Edges: e, PageInfo: info}
}

// uuidAfter decodes an after cursor that holds an id.
func uuidAfter(first *int, after *string) (int, uuid.UUID, error) {
	n, pos, err := pageArgs(first, after)
	if err != nil || pos == "" {
		return n, uuid.Nil, err
	}
	id, err := uuid.Parse(pos)
	if err != nil {
		return 0, uuid.Nil, store.Invalid("after", "is not a cursor of this list; pass an endCursor from a previous page")
	}
	return n, id, nil
}

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

// feedLinks returns a page of followers or followed feeds as a connection.
func (r *Resolver) feedLinks(ctx context.Context, list func(context.Context, string, string, int) (store.Page[store.FeedLink], error),
	feedID string, first *int, after *string) (*model.FeedConnection, error) {
	n, pos, err := pageArgs(first, after)
	if err != nil {
		return nil, err
	}
	page, err := list(ctx, feedID, pos, n)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(page.Items))
	for i, l := range page.Items {
		ids[i] = l.FeedID
	}
	feeds, err := r.loadersFor(ctx).feeds().Feeds.Fetch(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Feed, len(feeds))
	for _, f := range feeds {
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

// followFeeds checks a follow's feeds: the source is the caller's own
// timeline (any timeline, for an admin), the target a user feed.
func followFeeds(ctx context.Context, source, target string) (*store.Feed, *store.Feed, error) {
	src, _, err := ownFeed(ctx, "source", source)
	if err != nil {
		return nil, nil, err
	}
	if src.Group != store.GroupTimeline {
		return nil, nil, store.Invalid("source", "only timeline feeds follow others: use timeline:%s", src.OwnerID)
	}
	dst, err := store.ParseFeedID("target", target)
	if err != nil {
		return nil, nil, err
	}
	if dst.Group != store.GroupUser {
		return nil, nil, store.Invalid("target", "only user feeds can be followed: use user:%s", dst.OwnerID)
	}
	return src, dst, nil
}

// markFeed marks groups of the caller's feed seen or read.
func (r *Resolver) markFeed(ctx context.Context, feed string, groups []string, read bool) (*store.Feed, error) {
	f, _, err := ownFeed(ctx, "feed", feed)
	if err != nil {
		return nil, err
	}
	if groups != nil && len(groups) == 0 {
		// An empty selection (a multi-select with nothing in it) marks
		// nothing; only leaving groups out marks the whole feed.
		return r.loadFeed(ctx, f.ID)
	}
	if err := r.Store.MarkFeed(ctx, f, groups, read); err != nil {
		return nil, err
	}
	return r.loadFeed(ctx, f.ID)
}

// followsChanged tells the live updates of timelines to read again which
// feeds they merge at read time.
func (r *Resolver) followsChanged(ctx context.Context, timelines []string) {
	// The change has committed: tell the streams even if the request that
	// made it ends now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := store.PublishFollowsChanged(ctx, r.Bus, timelines); err != nil {
		r.Log.Log(ctx, redisguard.LogLevel(err), "feeds: publish follow changes", "err", err)
	}
}

// streamFeed streams a feed's updates. A timeline also listens to the
// feeds it follows that are merged at read time (they are never written
// into it), so its live updates match what reading it shows; it reads
// that set again whenever its follows topic says it changed, and after
// any gap in the bus.
func (r *Resolver) streamFeed(ctx context.Context, f *store.Feed) (<-chan *store.FeedUpdate, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &feedStream{r: r, ctx: ctx, cancel: cancel, events: make(chan feedEvent), own: map[string]bool{}, pulled: map[string]context.CancelFunc{}}
	fail := func(err error) (<-chan *store.FeedUpdate, error) {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	s.own[store.FeedTopic(f.ID)] = true
	if _, err := s.listen(store.FeedTopic(f.ID)); err != nil {
		return fail(err)
	}
	if f.Group == store.GroupTimeline || f.Group == store.GroupTimelineAggregated {
		s.timeline = store.GroupTimeline + ":" + f.OwnerID
		if f.Group == store.GroupTimelineAggregated {
			s.own[store.FeedTopic(s.timeline)] = true
			if _, err := s.listen(store.FeedTopic(s.timeline)); err != nil {
				return fail(err)
			}
		}
		// Listening for changes before reading them misses none.
		if _, err := s.listen(store.FollowsTopic(s.timeline)); err != nil {
			return fail(err)
		}
		if err := s.follow(); err != nil {
			return fail(err)
		}
	}
	out := stream.New[store.FeedUpdate](ctx)
	go func() {
		defer out.Close()
		defer s.wg.Wait()
		defer cancel()
		for {
			var ev feedEvent
			select {
			case <-ctx.Done():
				return
			case ev = <-s.events:
			}
			// Every topic's subscription reports the same gap (they share
			// one Redis connection): the follows topic's one re-reads.
			if ev.topic == store.FollowsTopic(s.timeline) {
				if err := s.follow(); err != nil {
					stream.End(ctx, err)
					return
				}
				continue
			}
			if ev.gap || (!s.own[ev.topic] && s.pulled[ev.topic] == nil) {
				continue // a gap, or from a feed no longer merged
			}
			var u store.FeedUpdate
			if err := json.Unmarshal(ev.data, &u); err != nil {
				r.Log.Warn("feeds: bad update event", "err", err)
				continue
			}
			if !s.fresh(&u) {
				continue
			}
			u.FeedID = f.ID
			if !out.Send(ctx, &u) {
				return
			}
		}
	}()
	return out.C, nil
}

// feedStream is the state of one feedUpdated subscription: the bus topics
// it listens to and the activities it delivered last.
type feedStream struct {
	r        *Resolver
	ctx      context.Context
	cancel   context.CancelFunc
	timeline string
	events   chan feedEvent
	wg       sync.WaitGroup

	// own are the topics of the feed itself (and of its timeline);
	// pulled are those of the feeds it merges at read time, each with the
	// function that stops listening. Only the stream's goroutine changes
	// them once streaming.
	own    map[string]bool
	pulled map[string]context.CancelFunc
	// recent are the last activities delivered as added, oldest first: an
	// activity of a feed that moves from read-time merge back to fan-out
	// can arrive both ways while the stream catches up.
	recent []uuid.UUID
}

// feedEvent is one bus event of one of a stream's topics.
type feedEvent struct {
	topic string
	data  []byte
	gap   bool
}

// feedRecent is how many delivered activities a stream remembers.
const feedRecent = 256

// listen subscribes to topic and forwards its events to the stream until
// the stream ends or the topic is dropped. A subscription the bus ends
// (a slow subscriber, the bus closing) ends the stream.
func (s *feedStream) listen(topic string) (stop context.CancelFunc, err error) {
	tctx, stop := context.WithCancel(s.ctx)
	sub, err := s.r.Bus.Subscribe(tctx, topic)
	if err != nil {
		stop()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ev := range sub.C {
			select {
			case s.events <- feedEvent{topic: topic, data: ev.Data, gap: ev.Gap}:
			case <-tctx.Done():
				return
			}
		}
		if tctx.Err() == nil {
			stream.End(s.ctx, sub.Err())
			s.cancel()
		}
	}()
	return stop, nil
}

// follow reads the feeds the timeline merges at read time and listens to
// exactly those.
func (s *feedStream) follow() error {
	pulled, err := s.r.Store.PulledFollows(s.ctx, s.timeline)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range pulled {
		want[store.FeedTopic(p)] = true
	}
	for topic, stop := range s.pulled {
		if !want[topic] {
			stop()
			delete(s.pulled, topic)
		}
	}
	for topic := range want {
		if s.pulled[topic] == nil && !s.own[topic] {
			stop, err := s.listen(topic)
			if err != nil {
				return err
			}
			s.pulled[topic] = stop
		}
	}
	return nil
}

// fresh drops from u the activities the stream delivered already and
// reports whether anything is left to deliver. A removed activity is
// forgotten: it may come back (a follow, an unfollow, a follow again).
func (s *feedStream) fresh(u *store.FeedUpdate) bool {
	for _, id := range u.Removed {
		if i := slices.Index(s.recent, id); i >= 0 {
			s.recent = slices.Delete(s.recent, i, i+1)
		}
	}
	added := u.Added[:0]
	for _, a := range u.Added {
		if slices.Contains(s.recent, a.ID) {
			continue
		}
		added = append(added, a)
		if len(s.recent) == feedRecent {
			s.recent = append(s.recent[:0], s.recent[1:]...)
		}
		s.recent = append(s.recent, a.ID)
	}
	u.Added = added
	return len(u.Added) > 0 || len(u.Removed) > 0
}
