package feeds

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// Live updates of activities: feedUpdated's `updated`. A change to an
// activity (an edit, a reaction, a comment added or deleted) is published
// once, after its commit, on the activity's own topic (ActivityTopic),
// however many feeds show it: a post liked 50 times a second costs 50
// publishes, whatever its followers. Each feedUpdated stream watches the
// activities it may show: the newest feedWatchLimit of its feed when it
// starts, then each one it delivers as added, forgetting the oldest beyond
// the limit (clients re-read older ones as they scroll to them). A node
// watches an activity once for all its streams (activityWatch): one bus
// subscription, and one read of the activity per event, handed to every
// stream that watches it. A stream sends at most one update of an activity
// per update window (coalescer): the first change at once, the changes
// within the window after it as one update with the latest state when the
// window ends.

// feedWatchLimit is how many activities a feedUpdated stream watches for
// changes: the newest of its feed.
const feedWatchLimit = 100

// DefaultUpdateWindow is how often, at most, a stream sends an update of
// one activity.
const DefaultUpdateWindow = 250 * time.Millisecond

// activityState is an activity as a node read it after a change.
type activityState struct {
	a      *store.Activity
	counts []store.ReactionCount
}

// activityWatch is a node's watch of the activities its streams show.
type activityWatch struct {
	s  *Service
	mu sync.Mutex
	m  map[uuid.UUID]*watchedActivity
}

// watchedActivity is one activity the node watches, for the streams that
// show it.
type watchedActivity struct {
	id uuid.UUID
	// ready is closed once the subscription is live, or failed (err).
	ready chan struct{}
	err   error
	// ctx ends when the last stream stops watching.
	ctx     context.Context
	stop    context.CancelFunc
	sub     *bus.Subscription
	streams map[*feedStream]struct{}
	// reading is set while a read runs; again when an event came during it
	// (one more read follows, so the last state handed out is never older
	// than the last event).
	reading, again bool
}

func newActivityWatch(s *Service) *activityWatch {
	return &activityWatch{s: s, m: map[uuid.UUID]*watchedActivity{}}
}

// add makes fs watch ids, and returns once the node listens to each.
func (w *activityWatch) add(ctx context.Context, fs *feedStream, ids []uuid.UUID) error {
	wait := make([]*watchedActivity, 0, len(ids))
	w.mu.Lock()
	for _, id := range ids {
		e := w.m[id]
		if e == nil {
			e = &watchedActivity{id: id, ready: make(chan struct{}), streams: map[*feedStream]struct{}{}}
			e.ctx, e.stop = context.WithCancel(context.Background())
			w.m[id] = e
			// Subscribing takes a round trip to Redis: each on its own,
			// so that a stream's first page costs one, not a hundred.
			go w.subscribe(e)
		}
		e.streams[fs] = struct{}{}
		wait = append(wait, e)
	}
	w.mu.Unlock()
	for _, e := range wait {
		select {
		case <-e.ready:
			if e.err != nil {
				return e.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// remove makes fs stop watching ids; the node stops listening to an
// activity no stream watches.
func (w *activityWatch) remove(fs *feedStream, ids []uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		e := w.m[id]
		if e == nil {
			continue
		}
		delete(e.streams, fs)
		if len(e.streams) == 0 {
			delete(w.m, id)
			e.stop()
		}
	}
}

// subscribe listens to e's topic until e stops, and then forgets it.
func (w *activityWatch) subscribe(e *watchedActivity) {
	sub, err := w.s.bus.Subscribe(e.ctx, ActivityTopic(e.id))
	w.mu.Lock()
	e.sub, e.err = sub, err
	if err != nil && w.m[e.id] == e {
		delete(w.m, e.id)
		e.stop()
	}
	w.mu.Unlock()
	close(e.ready)
	if err == nil {
		// Parked between events: an idle activity holds no goroutine.
		stream.Follow(sub, &activityFollower{w: w, e: e})
	}
}

// activityFollower reads a watched activity's events.
type activityFollower struct {
	w *activityWatch
	e *watchedActivity
}

func (f *activityFollower) CanPark() bool { return true }

// Next takes one event; reads go on their own goroutine, so a slow read
// never makes the bus drop the subscription.
func (f *activityFollower) Next() bool {
	ev, ok := <-f.e.sub.C
	if !ok {
		return false
	}
	if !ev.Gap {
		f.w.changed(f.e)
	}
	return true
}

// Stop runs when the subscription ended: when the last stream left, or
// when the bus dropped it, which ends the streams that watched it (their
// clients subscribe again).
func (f *activityFollower) Stop() {
	w, e := f.w, f.e
	err := e.sub.Err()
	w.mu.Lock()
	var streams []*feedStream
	if w.m[e.id] == e {
		delete(w.m, e.id)
		e.stop()
		for fs := range e.streams {
			streams = append(streams, fs)
		}
	}
	w.mu.Unlock()
	if err != nil {
		for _, fs := range streams {
			fs.fail(err)
		}
	}
}

// changed reads e after an event, unless a read runs: then one more read
// follows it.
func (w *activityWatch) changed(e *watchedActivity) {
	w.mu.Lock()
	if e.reading {
		e.again = true
		w.mu.Unlock()
		return
	}
	e.reading = true
	w.mu.Unlock()
	go w.read(e) // owned by e: it ends with the last event, or with e
}

// read reads e, hands the state to its streams, and reads again while
// events came meanwhile.
func (w *activityWatch) read(e *watchedActivity) {
	for {
		st, err := w.load(e.ctx, e.id)
		if err != nil && e.ctx.Err() == nil {
			w.s.log.Warn("feeds: read a changed activity", "activity", e.id, "err", err)
		}
		if err == nil && st.a != nil { // nil: removed, which its feeds announce
			w.mu.Lock()
			streams := make([]*feedStream, 0, len(e.streams))
			for fs := range e.streams {
				streams = append(streams, fs)
			}
			w.mu.Unlock()
			for _, fs := range streams {
				fs.offer(st)
			}
		}
		w.mu.Lock()
		if !e.again || e.ctx.Err() != nil {
			e.reading, e.again = false, false
			w.mu.Unlock()
			return
		}
		e.again = false
		w.mu.Unlock()
	}
}

// load reads an activity's state, as every stream of the node delivers
// it: the activity (its data, comment count) and its reaction counts.
// Whoever watches it reads the feed that shows it, so it is theirs to see.
func (w *activityWatch) load(ctx context.Context, id uuid.UUID) (activityState, error) {
	acts, err := w.s.store.ActivitiesByID(ctx, []uuid.UUID{id})
	if err != nil || acts[0] == nil {
		return activityState{}, err
	}
	counts, err := w.s.store.ReactionCounts(ctx, []uuid.UUID{id})
	if err != nil {
		return activityState{}, err
	}
	return activityState{a: acts[0], counts: counts[0]}, nil
}

// offer hands fs an activity's new state; its goroutine takes it (a newer
// state replaces one not yet taken). It never blocks.
func (fs *feedStream) offer(st activityState) {
	fs.mu.Lock()
	fs.changes[st.a.ID] = st
	fs.mu.Unlock()
	fs.wake()
}

// fail ends fs with err, from its goroutine.
func (fs *feedStream) fail(err error) {
	fs.mu.Lock()
	if fs.failed == nil {
		fs.failed = err
	}
	fs.mu.Unlock()
	fs.wake()
}

func (fs *feedStream) wake() {
	select {
	case fs.poke <- struct{}{}:
	default:
	}
}

// takeChanges returns the states offered since it last ran, of activities
// fs still watches, or why fs must end.
func (fs *feedStream) takeChanges() ([]activityState, error) {
	fs.mu.Lock()
	changes, err := fs.changes, fs.failed
	if len(changes) > 0 {
		fs.changes = map[uuid.UUID]activityState{}
	}
	fs.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]activityState, 0, len(changes))
	for id, st := range changes {
		if slices.Contains(fs.watched, id) {
			out = append(out, st)
		}
	}
	return out, nil
}

// watch makes fs watch ids (oldest first), forgetting its oldest beyond
// feedWatchLimit.
func (fs *feedStream) watch(ids []uuid.UUID) error {
	var fresh []uuid.UUID
	for _, id := range ids {
		if !slices.Contains(fs.watched, id) && !slices.Contains(fresh, id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) > feedWatchLimit {
		fresh = fresh[len(fresh)-feedWatchLimit:]
	}
	if len(fresh) == 0 {
		return nil
	}
	fs.watched = append(fs.watched, fresh...)
	if over := len(fs.watched) - feedWatchLimit; over > 0 {
		fs.unwatch(slices.Clone(fs.watched[:over]))
	}
	return fs.s.watch.add(fs.ctx, fs, fresh)
}

// unwatch makes fs stop watching ids, and forgets their held changes.
func (fs *feedStream) unwatch(ids []uuid.UUID) {
	fs.watched = slices.DeleteFunc(fs.watched, func(id uuid.UUID) bool { return slices.Contains(ids, id) })
	for _, id := range ids {
		fs.coalesce.forget(id)
	}
	fs.s.watch.remove(fs, ids)
}

// coalescer keeps a stream to at most one update of an activity per
// window: a change after a quiet window goes out at once; changes within
// the window after an update are held, the latest replacing the others,
// and go out as one update when the window ends. It belongs to the
// stream's goroutine, with its one timer.
type coalescer struct {
	window time.Duration
	// sent is when each activity's last update went out, for those sent
	// within about a window.
	sent map[uuid.UUID]time.Time
	held map[uuid.UUID]activityState
	// timer fires at due, when the first held update may go out (zero
	// due: stopped).
	timer *time.Timer
	due   time.Time
}

func newCoalescer(window time.Duration) *coalescer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &coalescer{window: window, sent: map[uuid.UUID]time.Time{}, held: map[uuid.UUID]activityState{}, timer: t}
}

// change takes an activity's new state at now and reports whether it goes
// out now; if not, it is held.
func (c *coalescer) change(st activityState, now time.Time) bool {
	id := st.a.ID
	if _, ok := c.held[id]; ok {
		c.held[id] = st
		return false
	}
	if last, ok := c.sent[id]; ok && now.Sub(last) < c.window {
		c.held[id] = st
		c.arm(last.Add(c.window), now)
		return false
	}
	if len(c.sent) >= 2*feedWatchLimit {
		c.prune(now)
	}
	c.sent[id] = now
	return true
}

// flush returns the held states whose window has ended by now, marked
// sent, and sets the timer for the next.
func (c *coalescer) flush(now time.Time) []activityState {
	c.due = time.Time{}
	var out []activityState
	for id, st := range c.held {
		if end := c.sent[id].Add(c.window); now.Before(end) {
			c.arm(end, now)
			continue
		}
		out = append(out, st)
		delete(c.held, id)
		c.sent[id] = now
	}
	c.prune(now)
	return out
}

// arm makes the timer fire at at, unless it fires earlier already.
func (c *coalescer) arm(at, now time.Time) {
	if !c.due.IsZero() && !at.Before(c.due) {
		return
	}
	c.due = at
	c.timer.Reset(at.Sub(now))
}

// prune forgets when updates went out a window or more ago: the next
// change of those activities goes out at once anyway.
func (c *coalescer) prune(now time.Time) {
	for id, at := range c.sent {
		if _, held := c.held[id]; !held && now.Sub(at) >= c.window {
			delete(c.sent, id)
		}
	}
}

// forget drops what c holds of an activity the stream no longer shows.
func (c *coalescer) forget(id uuid.UUID) {
	delete(c.held, id)
	delete(c.sent, id)
}

// changedUpdate makes the FeedUpdate of changed activities, newest first.
func changedUpdate(feedID string, states []activityState) *FeedUpdate {
	// Activity ids are time-ordered UUIDs.
	slices.SortFunc(states, func(a, b activityState) int { return bytes.Compare(b.a.ID[:], a.a.ID[:]) })
	u := &FeedUpdate{FeedID: feedID, Changed: make([]*store.Activity, len(states)), ChangedCounts: make([][]store.ReactionCount, len(states))}
	for i, st := range states {
		u.Changed[i], u.ChangedCounts[i] = st.a, st.counts
	}
	return u
}
