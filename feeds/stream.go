package feeds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// FeedUpdated streams the updates of a feed the caller may read, live
// only: activities added to it, ids removed from it, and the new state of
// the activities it shows that changed (updates.go). A stream of another
// user's feed ends with FORBIDDEN when the caller may no longer read it.
func (s *Service) FeedUpdated(ctx context.Context, feed string) (<-chan *FeedUpdate, error) {
	f, me, err := s.readableFeed(ctx, "feed", feed)
	if err != nil {
		return nil, err
	}
	return s.streamFeed(ctx, f, me)
}

// streamFeed streams a feed's updates. A timeline also listens to the
// feeds it follows that are merged at read time (they are never written
// into it), so its live updates match what reading it shows; it reads
// that set again whenever its follows topic says it changed, and after
// any gap in the bus.
func (s *Service) streamFeed(ctx context.Context, f *store.Feed, me auth.Identity) (<-chan *FeedUpdate, error) {
	ctx, cancel := context.WithCancel(stream.Context(ctx)) // kept by the stream for its life
	fs := &feedStream{s: s, ctx: ctx, cancel: cancel, feed: f.ID, f: f, me: me, events: make(chan feedEvent), own: map[string]bool{}, pulled: map[string]context.CancelFunc{},
		// Only a user feed is read by others, who may lose the right.
		guarded: f.Group == store.GroupUser && f.OwnerID != me.UserID && !me.IsAdmin(),
		changes: map[uuid.UUID]activityState{}, poke: make(chan struct{}, 1), coalesce: newCoalescer(s.updateWindow)}
	fail := func(err error) (<-chan *FeedUpdate, error) {
		cancel()
		fs.wg.Wait()
		fs.unwatch(slices.Clone(fs.watched))
		return nil, err
	}
	fs.own[FeedTopic(f.ID)] = true
	if _, err := fs.listen(FeedTopic(f.ID)); err != nil {
		return fail(err)
	}
	if f.Group == store.GroupTimeline || f.Group == store.GroupTimelineAggregated {
		fs.timeline = store.GroupTimeline + ":" + f.OwnerID
		if f.Group == store.GroupTimelineAggregated {
			fs.own[FeedTopic(fs.timeline)] = true
			if _, err := fs.listen(FeedTopic(fs.timeline)); err != nil {
				return fail(err)
			}
		}
		// Listening for changes before reading them misses none.
		if _, err := fs.listen(FollowsTopic(fs.timeline)); err != nil {
			return fail(err)
		}
		if err := fs.follow(); err != nil {
			return fail(err)
		}
	}
	// The activities a client shows first are the newest: watch them for
	// changes. (A change between this read and the watch is not streamed;
	// the client's own read of the feed shows it.)
	page, err := s.store.FeedActivities(ctx, f, uuid.Nil, feedWatchLimit)
	if err != nil {
		return fail(err)
	}
	ids := make([]uuid.UUID, len(page.Items))
	for i, a := range page.Items {
		ids[len(ids)-1-i] = a.ID // oldest first
	}
	if err := fs.watch(ids); err != nil {
		return fail(err)
	}
	// The client reads this page itself: a catch-up after a bus gap must
	// not send it again.
	fs.recent = append(fs.recent, ids...)
	out := stream.New[FeedUpdate](ctx)
	go fs.run(f.ID, out)
	return out.C, nil
}

// feedStream is the state of one feedUpdated subscription: the bus topics
// it listens to, the activities it delivered last and those it watches
// for changes.
type feedStream struct {
	s      *Service
	ctx    context.Context
	cancel context.CancelFunc
	feed   string
	// f is the feed as resolved at the start, read again after a gap.
	f        *store.Feed
	me       auth.Identity
	timeline string
	events   chan feedEvent
	wg       sync.WaitGroup
	// guarded is set when the subscriber may lose the right to read the
	// feed: it checks again when an event says so (accessChanged).
	guarded bool

	// own are the topics of the feed itself (and of its timeline);
	// pulled are those of the feeds it merges at read time, each with the
	// function that stops listening. Only the stream's goroutine changes
	// them once streaming.
	own    map[string]bool
	pulled map[string]context.CancelFunc
	// recent are the last activities delivered as added, starting with
	// the start page's: an activity of a feed that moves from read-time
	// merge back to fan-out can arrive both ways while the stream catches
	// up, and a re-read after a bus gap returns those the client has, and
	// tells which of them went meanwhile.
	recent []uuid.UUID
	// gone are the activities a catch-up announced as removed, until the
	// live removal of one arrives (it was committed between the
	// reconnect and the re-read) or it is added again: nil unless a gap
	// removed something, at most feedRecent.
	gone []uuid.UUID

	// watched are the activities whose changes the stream delivers,
	// oldest first, at most feedWatchLimit; only its goroutine changes
	// them once streaming. The node's watch hands their new states to
	// changes (under mu) and pokes; failed ends the stream.
	watched  []uuid.UUID
	mu       sync.Mutex
	changes  map[uuid.UUID]activityState
	failed   error
	poke     chan struct{}
	coalesce *coalescer
}

// feedEvent is one bus event of one of a stream's topics.
type feedEvent struct {
	topic string
	data  []byte
	gap   bool
}

// feedRecent is how many delivered activities a stream remembers.
const feedRecent = 256

// run delivers the stream's events as updates of feedID until the stream
// ends.
func (fs *feedStream) run(feedID string, out *stream.Out[FeedUpdate]) {
	defer out.Close()
	defer fs.wg.Wait()
	defer func() { fs.unwatch(slices.Clone(fs.watched)) }()
	defer fs.coalesce.timer.Stop()
	defer fs.cancel()
	for {
		var ev feedEvent
		select {
		case <-fs.ctx.Done():
			return
		case <-fs.poke:
			changes, err := fs.takeChanges()
			if err != nil {
				stream.End(fs.ctx, err)
				return
			}
			now := time.Now()
			changes = slices.DeleteFunc(changes, func(st activityState) bool { return !fs.coalesce.change(st, now) })
			if len(changes) > 0 && !out.Send(fs.ctx, changedUpdate(feedID, changes)) {
				return
			}
			continue
		case <-fs.coalesce.timer.C:
			if due := fs.coalesce.flush(time.Now()); len(due) > 0 && !out.Send(fs.ctx, changedUpdate(feedID, due)) {
				return
			}
			continue
		case ev = <-fs.events:
		}
		// Every topic's subscription reports the same gap (they share
		// one Redis connection): the follows topic's one re-reads.
		if ev.topic == FollowsTopic(fs.timeline) {
			if err := fs.follow(); err != nil {
				stream.End(fs.ctx, err)
				return
			}
			continue
		}
		if ev.gap && fs.own[ev.topic] && fs.guarded {
			// An access change may have been missed.
			if err := fs.checkAccess(); err != nil {
				stream.End(fs.ctx, err)
				return
			}
		}
		if ev.gap && fs.own[ev.topic] {
			// The events published while the connection was down are lost,
			// not the activities: read the feed again and deliver what the
			// stream has not.
			u, err := fs.catchUp()
			if err != nil {
				if fs.ctx.Err() == nil {
					stream.End(fs.ctx, err)
				}
				return
			}
			if u == nil {
				continue
			}
			u.FeedID = feedID
			if !fs.deliver(out, u) {
				return
			}
			fs.announced(u.Removed)
			continue
		}
		if ev.gap || (!fs.own[ev.topic] && fs.pulled[ev.topic] == nil) {
			continue // a pulled feed's gap (the feed's own catches up), or from a feed no longer merged
		}
		var e feedBusEvent
		if err := json.Unmarshal(ev.data, &e); err != nil {
			fs.s.log.Warn("feeds: bad update event", "err", err)
			continue
		}
		if e.Access != nil {
			if fs.guarded && fs.own[ev.topic] && (e.Access.User == "" || e.Access.User == fs.me.UserID) {
				if err := fs.checkAccess(); err != nil {
					stream.End(fs.ctx, err)
					return
				}
			}
			continue
		}
		u := e.FeedUpdate
		u.FeedID = feedID
		if !fs.deliver(out, &u) {
			return
		}
	}
}

// deliver sends u, less what the stream delivered already, after watching
// the activities it adds. It reports false when the stream ends.
func (fs *feedStream) deliver(out *stream.Out[FeedUpdate], u *FeedUpdate) bool {
	if !fs.fresh(u) {
		return true
	}
	if len(u.Removed) > 0 {
		fs.unwatch(u.Removed)
	}
	if len(u.Added) > 0 {
		// Watched before delivered: a client that sees an activity
		// added gets its changes from then on.
		ids := make([]uuid.UUID, len(u.Added))
		for i, a := range u.Added {
			ids[len(ids)-1-i] = a.ID // oldest first
		}
		if err := fs.watch(ids); err != nil {
			if fs.ctx.Err() == nil {
				stream.End(fs.ctx, err)
			}
			return false
		}
	}
	return out.Send(fs.ctx, u)
}

// catchUp reads the feed's newest activities again after a bus gap, the
// read the stream's start does (pulled feeds merged), and returns one
// update for deliver: the newest feedWatchLimit as added (deliver drops
// those already delivered), and as removed the activities the stream
// delivered (or showed at its start) that the feed no longer has; nil when
// there is neither. It goes by the ids delivered, not by the newest one:
// fan-out pages commit out of id order, so an activity older than the last
// delivered may still be new to the stream.
func (fs *feedStream) catchUp() (*FeedUpdate, error) {
	// As many as the stream remembers, so that each one it remembers is
	// either on the page or older than all of it.
	limit := max(feedWatchLimit, len(fs.recent))
	page, err := fs.s.store.FeedActivities(fs.ctx, fs.f, uuid.Nil, limit)
	if err != nil {
		return nil, fmt.Errorf("feeds: catching up after a bus gap: %w", err)
	}
	removed, err := fs.missing(page)
	if err != nil {
		return nil, fmt.Errorf("feeds: catching up after a bus gap: %w", err)
	}
	added := page.Items[:min(len(page.Items), feedWatchLimit)]
	if len(added) == 0 && len(removed) == 0 {
		return nil, nil
	}
	// Newest first, as every added update of the bus is.
	return &FeedUpdate{Added: added, Removed: removed}, nil
}

// missing returns the activities of recent that the feed no longer has,
// by page, the feed's newest: one newer than the page's oldest that is not
// on it is gone. One older than all of a full page may only have been
// pushed out of it (more came meanwhile than the stream remembers): it is
// gone when the activity itself is, an unfollow's removal of it is not
// seen.
func (fs *feedStream) missing(page store.Page[*store.Activity]) ([]uuid.UUID, error) {
	on := make(map[uuid.UUID]bool, len(page.Items))
	for _, a := range page.Items {
		on[a.ID] = true
	}
	var gone, older []uuid.UUID
	for _, id := range fs.recent {
		switch {
		case on[id]:
		case page.HasNext && bytes.Compare(id[:], page.Items[len(page.Items)-1].ID[:]) < 0:
			older = append(older, id)
		default:
			gone = append(gone, id)
		}
	}
	if len(older) > 0 {
		acts, err := fs.s.store.ActivitiesByID(fs.ctx, older)
		if err != nil {
			return nil, err
		}
		for i, a := range acts {
			if a == nil {
				gone = append(gone, older[i])
			}
		}
	}
	return gone, nil
}

// announced remembers the activities a catch-up announced as removed, so
// that a live removal of one, in flight while the stream re-read the
// feed, is not sent again.
func (fs *feedStream) announced(ids []uuid.UUID) {
	for _, id := range ids {
		if len(fs.gone) == feedRecent {
			fs.gone = append(fs.gone[:0], fs.gone[1:]...)
		}
		fs.gone = append(fs.gone, id)
	}
}

// checkAccess asks PostgreSQL whether the subscriber may still read the
// feed: FORBIDDEN when not.
func (fs *feedStream) checkAccess() error {
	f, err := store.ParseFeedID("feed", fs.feed)
	if err != nil {
		return err
	}
	return fs.s.checkFeedRead(fs.ctx, fs.me, f)
}

// listen subscribes to topic and forwards its events to the stream until
// the stream ends or the topic is dropped. A subscription the bus ends
// (a slow subscriber, the bus closing) ends the stream.
func (fs *feedStream) listen(topic string) (stop context.CancelFunc, err error) {
	tctx, stop := context.WithCancel(fs.ctx)
	sub, err := fs.s.bus.Subscribe(tctx, topic)
	if err != nil {
		stop()
		return nil, err
	}
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for ev := range sub.C {
			select {
			case fs.events <- feedEvent{topic: topic, data: ev.Data, gap: ev.Gap}:
			case <-tctx.Done():
				return
			}
		}
		if tctx.Err() == nil {
			stream.End(fs.ctx, sub.Err())
			fs.cancel()
		}
	}()
	return stop, nil
}

// follow reads the feeds the timeline merges at read time and listens to
// exactly those.
func (fs *feedStream) follow() error {
	pulled, err := fs.s.store.PulledFollows(fs.ctx, fs.timeline)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range pulled {
		want[FeedTopic(p)] = true
	}
	for topic, stop := range fs.pulled {
		if !want[topic] {
			stop()
			delete(fs.pulled, topic)
		}
	}
	for topic := range want {
		if fs.pulled[topic] == nil && !fs.own[topic] {
			stop, err := fs.listen(topic)
			if err != nil {
				return err
			}
			fs.pulled[topic] = stop
		}
	}
	return nil
}

// fresh drops from u the activities the stream delivered already, and
// the removals a catch-up announced already, and reports whether anything
// is left to deliver. A removed activity is forgotten: it may come back (a
// follow, an unfollow, a follow again).
func (fs *feedStream) fresh(u *FeedUpdate) bool {
	removed := u.Removed[:0]
	for _, id := range u.Removed {
		if i := slices.Index(fs.gone, id); i >= 0 {
			fs.gone = slices.Delete(fs.gone, i, i+1)
			continue
		}
		removed = append(removed, id)
		if i := slices.Index(fs.recent, id); i >= 0 {
			fs.recent = slices.Delete(fs.recent, i, i+1)
		}
	}
	u.Removed = removed
	added := u.Added[:0]
	for _, a := range u.Added {
		if slices.Contains(fs.recent, a.ID) {
			continue
		}
		if i := slices.Index(fs.gone, a.ID); i >= 0 {
			fs.gone = slices.Delete(fs.gone, i, i+1) // back: its next removal is news
		}
		added = append(added, a)
		if len(fs.recent) == feedRecent {
			fs.recent = append(fs.recent[:0], fs.recent[1:]...)
		}
		fs.recent = append(fs.recent, a.ID)
	}
	u.Added = added
	return len(u.Added) > 0 || len(u.Removed) > 0
}
