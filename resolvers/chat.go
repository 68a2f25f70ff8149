package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// chatLoaders are the dataloaders of the chat product, created together on
// first use: a response that needs none (a typing event, say) allocates
// nothing for them.
type chatLoaders struct {
	chatStore *store.Store
	chatOnce  sync.Once
	chatSet   *chatLoaderSet
}

// chatLoaderSet holds the chat product's loaders.
type chatLoaderSet struct {
	Channels        *Loader[string, *store.Channel]
	Messages        *Loader[uuid.UUID, *store.Message]
	ReactionCounts  *Loader[uuid.UUID, []store.ReactionCount]
	OwnReactions    *Loader[uuid.UUID, []*store.MessageReaction]
	LatestReactions *Loader[latestKey, []*store.MessageReaction]
	// MyMemberships are the caller's memberships, by channel.
	MyMemberships *Loader[string, *store.Member]
}

// latestKey asks for a message's newest n reactions.
type latestKey struct {
	id uuid.UUID
	n  int
}

func newChatLoaders(s *store.Store) chatLoaders { return chatLoaders{chatStore: s} }

// chat returns the chat product's loaders, creating them on first use.
func (l *chatLoaders) chat() *chatLoaderSet {
	l.chatOnce.Do(func() { l.chatSet = newChatLoaderSet(l.chatStore) })
	return l.chatSet
}

func newChatLoaderSet(s *store.Store) *chatLoaderSet {
	return &chatLoaderSet{
		Channels:       NewLoader(s.ChannelsByID),
		Messages:       NewLoader(s.MessagesByID),
		ReactionCounts: NewLoader(s.MessageReactionCounts),
		OwnReactions: NewLoader(func(ctx context.Context, ids []uuid.UUID) ([][]*store.MessageReaction, error) {
			id, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			return s.OwnMessageReactions(ctx, id.UserID, ids)
		}),
		LatestReactions: NewLoader(func(ctx context.Context, keys []latestKey) ([][]*store.MessageReaction, error) {
			n := 0
			ids := make([]uuid.UUID, len(keys))
			for i, k := range keys {
				n = max(n, k.n)
				ids[i] = k.id
			}
			all, err := s.LatestMessageReactions(ctx, n, ids)
			if err != nil {
				return nil, err
			}
			for i, k := range keys {
				if len(all[i]) > k.n {
					all[i] = all[i][:k.n]
				}
			}
			return all, nil
		}),
		MyMemberships: NewLoader(func(ctx context.Context, channels []string) ([]*store.Member, error) {
			id, err := caller(ctx)
			if err != nil {
				return nil, err
			}
			return s.MembershipsOf(ctx, id.UserID, channels)
		}),
	}
}

// setChatComplexity gives the chat product's list fields their cost.
func setChatComplexity(c *graph.ComplexityRoot) {
	c.Channel.Members = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Channel.Messages = func(child int, last *int, _ *string) int { return listCost(child, last) }
	c.Message.Replies = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Message.LatestReactions = func(child int, first *int) int { return listCost(child, first) }
	c.Message.MentionedUsers = func(child int) int { return 1 + 10*child }
	c.Message.ReactionCounts = func(child int) int { return 1 + 10*child }
	c.Message.OwnReactions = func(child int) int { return 1 + 5*child }
	c.Query.Channels = func(child int, _ *store.ChannelFilter, first *int, _ *string) int { return listCost(child, first) }
	c.Query.SearchMessages = func(child int, _ string, _ *string, first *int, _ *string) int { return listCost(child, first) }
	c.UnreadCounts.Channels = func(child int) int { return 1 + 100*child }
}

// chatAccess loads a channel with the caller's role in it.
func (r *Resolver) chatAccess(ctx context.Context, field, id string) (*store.ChannelAccess, auth.Identity, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, me, err
	}
	if _, err := store.ParseChannelID(field, id); err != nil {
		return nil, me, err
	}
	a, err := r.Store.ChannelForUser(ctx, id, me.UserID)
	return a, me, err
}

// canReadChannel: members and admins, and anyone for livestream channels.
func canReadChannel(a *store.ChannelAccess, me auth.Identity) bool {
	return a.Role != "" || me.IsAdmin() || a.Channel.Type == store.ChannelLivestream
}

func requireRead(a *store.ChannelAccess, me auth.Identity) error {
	if !canReadChannel(a, me) {
		return auth.Forbidden("you are not a member of channel %q", a.Channel.ID)
	}
	return nil
}

func requireWrite(a *store.ChannelAccess, me auth.Identity) error {
	if a.Role == "" && !me.IsAdmin() {
		return auth.Forbidden("only members of channel %q may write to it", a.Channel.ID)
	}
	return nil
}

func requireOwner(a *store.ChannelAccess, me auth.Identity) error {
	if a.Role != store.ChannelRoleOwner && !me.IsAdmin() {
		return auth.Forbidden("only the owners of channel %q and admins may do this", a.Channel.ID)
	}
	return nil
}

// messageAccess loads a message and the caller's access to its channel.
func (r *Resolver) messageAccess(ctx context.Context, field, raw string) (*store.Message, *store.ChannelAccess, auth.Identity, error) {
	me, err := caller(ctx)
	if err != nil {
		return nil, nil, me, err
	}
	id, err := store.ParseID(field, raw)
	if err != nil {
		return nil, nil, me, err
	}
	m, err := r.Store.Message(ctx, id)
	if err != nil {
		return nil, nil, me, err
	}
	a, err := r.Store.ChannelForUser(ctx, m.ChannelID, me.UserID)
	if err != nil {
		return nil, nil, me, err
	}
	return m, a, me, nil
}

// publishChannel publishes an event of a channel, with the caller as its
// user. These events (edits, deletions, reactions, typing) are not replayed:
// one lost while Redis is away is logged, and clients re-read on reconnect.
func (r *Resolver) publishChannel(ctx context.Context, typ, channel string, userID string, msg *store.Message) {
	r.publishChannelEvent(ctx, &store.ChannelEvent{Type: typ, Channel: channel, Message: msg}, userID)
}

// publishChannelEvent publishes ev with userID's profile as its user.
// Every event carries the channel's count of member removals, read after
// the change it reports committed: a subscriber's readGuard then refuses
// it to a member removed before, whose own member.removed event may come
// later or be lost.
func (r *Resolver) publishChannelEvent(ctx context.Context, ev *store.ChannelEvent, userID string) {
	if ev.Removals == 0 {
		n, err := r.Store.ChannelMemberRemovals(ctx, ev.Channel)
		if err != nil {
			// Not published, like an event the bus could not take: without
			// the count a removed member could get it, and asking every
			// subscriber to check its membership would send them all to
			// the database that just failed.
			r.Log.Log(ctx, redisguard.LogLevel(err), "chat: event not published", "type", ev.Type, "channel", ev.Channel, "err", err)
			return
		}
		ev.Removals = n
	}
	r.sendChannelEvent(ctx, ev, userID)
}

// sendChannelEvent publishes ev, which carries its removal count, with
// userID's profile as its user.
func (r *Resolver) sendChannelEvent(ctx context.Context, ev *store.ChannelEvent, userID string) {
	ev.User, _ = r.loadersFor(ctx).Users.Load(ctx, userID)
	ev.CreatedAt = time.Now().UTC()
	if err := r.Store.PublishChannelEvent(ctx, r.Bus, ev); err != nil {
		r.Log.Log(ctx, redisguard.LogLevel(err), "chat: event not published", "type", ev.Type, "channel", ev.Channel, "err", err)
	}
}

// withReactions fills a message's reaction counts for an event, so its
// subscribers need no query for them.
func (r *Resolver) withReactions(ctx context.Context, m *store.Message) *store.Message {
	counts, err := r.Store.MessageReactionCounts(ctx, []uuid.UUID{m.ID})
	if err == nil {
		c := *m
		c.Reactions = counts[0]
		if c.Reactions == nil {
			c.Reactions = []store.ReactionCount{}
		}
		return &c
	}
	return m
}

// readableUnread leaves out of counts the channels the caller may no
// longer read, when the response selects their channel: a counter Redis
// still holds for a channel the caller was removed from (removals clear
// the counters, but a write racing the removal can put one back until a
// rebuild or the repair pass) must not open that channel's profile and
// history. Without channel, an entry is an id and a number, and the read
// stays one Redis round trip.
func (r *Resolver) readableUnread(ctx context.Context, me auth.Identity, counts *store.UnreadCounts) (*store.UnreadCounts, error) {
	if len(counts.Channels) == 0 || !selected(ctx, "channels", "channel") {
		return counts, nil
	}
	ids := make([]string, len(counts.Channels))
	for i, c := range counts.Channels {
		ids[i] = c.ChannelID
	}
	l := r.loadersFor(ctx).chat()
	channels, err := l.Channels.Fetch(ctx, ids)
	if err != nil {
		return nil, err
	}
	members, err := l.MyMemberships.Fetch(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := *counts
	out.Channels = make([]*store.ChannelUnread, 0, len(ids))
	for i, c := range counts.Channels {
		if channels[i] != nil {
			a := &store.ChannelAccess{Channel: channels[i]}
			if members[i] != nil {
				a.Role = members[i].Role
			}
			if canReadChannel(a, me) {
				out.Channels = append(out.Channels, c)
				continue
			}
		}
		// Nor does the channel count in the totals.
		out.TotalUnreadCount = max(0, out.TotalUnreadCount-c.UnreadCount)
		if c.UnreadCount > 0 {
			out.UnreadChannels = max(0, out.UnreadChannels-1)
		}
	}
	return &out, nil
}

// notifyMembership tells users they were added to or removed from a
// channel, with their totals.
func (r *Resolver) notifyMembership(ctx context.Context, typ, channel string, users []string) {
	if len(users) == 0 {
		return
	}
	totals, err := r.Store.UnreadTotalsFromDB(ctx, r.Store.DB(), users)
	if err != nil {
		r.Log.Warn("chat: membership notification totals", "err", err)
		return
	}
	evs := make([]*store.UserEvent, len(users))
	now := time.Now().UTC()
	for i, u := range users {
		c := channel
		evs[i] = &store.UserEvent{Type: typ, Channel: &c, TotalUnreadCount: totals[u].Total, UnreadChannels: totals[u].Channels, CreatedAt: now}
	}
	r.Store.PublishUserEvents(ctx, r.Bus, users, evs)
}

// membershipEvents, when set (by tests), runs after a membership change
// has committed and before its events are published.
var membershipEvents func(channel string)

// afterMembership follows a committed membership change: counters of the
// users concerned (of every member, when the channel crossed the push
// limit) are rebuilt on their next read, and everyone hears of it.
func (r *Resolver) afterMembership(ctx context.Context, ch *store.MemberChange, added bool) {
	users := ch.Users
	if ch.Crossed {
		all, err := store.ChannelMemberIDs(ctx, r.Store.DB(), ch.Channel.ID)
		if err == nil {
			users = append(append([]string{}, users...), all...)
		}
	}
	if err := r.Store.InvalidateUnread(ctx, users); err != nil {
		r.Log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "err", err)
	}
	typ, note := store.EventMemberAdded, store.EventNotificationAdded
	if !added {
		typ, note = store.EventMemberRemoved, store.EventNotificationRemovedFrom
	}
	if membershipEvents != nil {
		membershipEvents(ch.Channel.ID)
	}
	for _, u := range ch.Users {
		// The change's own transaction read the removal count: no read
		// per user.
		ev := &store.ChannelEvent{Type: typ, Channel: ch.Channel.ID, Removals: ch.Channel.MemberRemovals}
		if !added {
			ev.Removed = ch.Users
		}
		r.sendChannelEvent(ctx, ev, u)
	}
	r.notifyMembership(ctx, note, ch.Channel.ID, ch.Users)
}

// messageConnection maps a page of messages to a connection and prefetches
// what the page's messages will load.
func (r *Resolver) messageConnection(ctx context.Context, page store.Page[*store.Message], cursor func(*store.Message) string) *model.MessageConnection {
	r.prefetchMessages(ctx, page.Items)
	es, info := edges(page, cursor, func(c string, m *store.Message) *model.MessageEdge { return &model.MessageEdge{Cursor: c, Node: m} })
	return &model.MessageConnection{Edges: es, PageInfo: info}
}

// prefetchMessages loads, one statement each, what the selected fields of
// a list of messages need.
func (r *Resolver) prefetchMessages(ctx context.Context, msgs []*store.Message) {
	if len(msgs) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	if selected(ctx, "edges", "node", "user") {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.UserID
		}
		_ = l.Users.Prefetch(ctx, ids)
	}
	ids := make([]uuid.UUID, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if selected(ctx, "edges", "node", "reactionCounts") {
		_ = l.chat().ReactionCounts.Prefetch(ctx, ids)
	}
	if selected(ctx, "edges", "node", "ownReactions") {
		_ = l.chat().OwnReactions.Prefetch(ctx, ids)
	}
}

// replayPage is how many stored messages messageAdded reads at a time.
const replayPage = 100

// reorderWait is how long messageAdded holds a live message that arrived
// ahead of its predecessor before reading the missing positions from
// PostgreSQL. Positions commit in order, so a missing one is committed and
// its event is normally a moment behind (outbox jobs publish concurrently):
// waiting for it costs no query, where reading at once would cost one per
// subscriber of the channel.
const reorderWait = 100 * time.Millisecond

// reorderMax bounds the live messages held while waiting.
const reorderMax = 64

// streamMessages delivers a channel's messages after position last: first
// the stored ones, then live ones, deduplicated by position. A live
// message past the next expected position is held until the missing ones
// arrive; if they have not come within reorderWait, or after a gap in the
// bus, the missing positions are read from PostgreSQL, so nothing is
// skipped or repeated whatever the bus does.
//
// The stream ends with FORBIDDEN when the subscriber is removed from a
// channel it may then no longer read.
func (r *Resolver) streamMessages(ctx context.Context, channel string, guard *readGuard, last int64,
	sub *bus.Subscription, out *stream.Out[store.Message]) {
	s := &messageStream{r: r, ctx: ctx, channel: channel, guard: guard, last: last, sub: sub, out: out}
	if !s.catchUp(math.MaxInt64, true) {
		s.Stop()
		return
	}
	stream.Follow(sub, s)
}

// messageStream is the state of one messageAdded stream (see
// streamMessages): one object, where closures over the same variables
// were a dozen, and an idle subscription holds it for hours.
type messageStream struct {
	r       *Resolver
	ctx     context.Context
	channel string
	guard   *readGuard
	// last is the position of the last message delivered.
	last int64
	sub  *bus.Subscription
	out  *stream.Out[store.Message]
	// held are live messages past last+1, by position, waiting for the
	// ones before them.
	held  map[int64]*store.Message
	wait  *time.Timer
	waitC <-chan time.Time
}

// Stop closes the stream, then the bus subscription: its client hears of
// the end without waiting for the bus (which may write to Redis).
func (s *messageStream) Stop() {
	s.out.Close()
	s.sub.Close()
}

// CanPark: held messages wait on the reorder timer, not on the bus.
func (s *messageStream) CanPark() bool { return s.waitC == nil }

func (s *messageStream) send(m *store.Message) bool {
	if !s.out.Send(s.ctx, m) {
		return false
	}
	s.last = m.Pos
	return true
}

// catchUp reads from PostgreSQL and delivers the messages after last up
// to upTo; starting: what the stream missed before it went live.
func (s *messageStream) catchUp(upTo int64, starting bool) bool {
	confirmed := false
	for page := 0; ; page++ {
		msgs, led, err := s.r.messagesAfter(s.ctx, s.channel, s.last, upTo)
		if replayPageRead != nil {
			replayPageRead(s.channel, page)
		}
		if err == nil && len(msgs) > 0 && (starting || page > 0) {
			// The member may have been removed since the check its
			// subscription began with, and these messages sent after:
			// while it subscribed (the removal's event came before its
			// bus subscription), or during a long replay to a slow client.
			// (Live, the guard sees removals in the events.)
			err = s.guard.recheck(s.ctx)
		}
		if err != nil {
			if s.ctx.Err() == nil {
				stream.End(s.ctx, err)
			}
			return false
		}
		for _, m := range msgs {
			if m.Pos > s.last && !s.send(m) {
				return false
			}
		}
		if len(msgs) < replayPage {
			// The last page must come from a query that began after the
			// stream's bus subscription did: one this stream joined may
			// have begun before, and missed a message whose event came
			// before the subscription too. One more read is such a query
			// (a read started after the joined one ended).
			if led || confirmed {
				return true
			}
			confirmed = true
		}
	}
}

// release sends the held messages that now follow last and forgets those
// already sent.
func (s *messageStream) release() bool {
	for len(s.held) > 0 {
		m, ok := s.held[s.last+1]
		if !ok {
			break
		}
		delete(s.held, m.Pos)
		if !s.send(m) {
			return false
		}
	}
	for pos := range s.held {
		if pos <= s.last {
			delete(s.held, pos)
		}
	}
	if len(s.held) == 0 && s.waitC != nil {
		s.wait.Stop()
		s.waitC = nil
	}
	return true
}

// fill reads from PostgreSQL everything up to the newest held message.
func (s *messageStream) fill() bool {
	upTo := s.last
	for pos := range s.held {
		upTo = max(upTo, pos)
	}
	return s.catchUp(upTo, false) && s.release()
}

// Next handles one event, or the end of the reorder wait; false: the
// stream has ended.
func (s *messageStream) Next() bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-s.waitC:
		s.waitC = nil
		if !s.fill() {
			return false
		}
	case ev, ok := <-s.sub.C:
		if !ok {
			stream.End(s.ctx, s.sub.Err())
			return false
		}
		if ev.Gap {
			// A removal may have been missed with the other events.
			if err := s.guard.check(s.ctx, nil); err != nil {
				stream.End(s.ctx, err)
				return false
			}
			return s.catchUp(math.MaxInt64, false) && s.release()
		}
		e, err := decodeChannelEvent(ev.Data)
		if err != nil {
			return true
		}
		if err := s.guard.check(s.ctx, e); err != nil {
			stream.End(s.ctx, err)
			return false
		}
		if e.Type != store.EventMessageNew || e.Message == nil {
			return true
		}
		return s.live(e.Message)
	}
	return true
}

// live handles a message that came over the bus.
func (s *messageStream) live(m *store.Message) bool {
	switch {
	case m.Pos <= s.last:
	case m.Pos == s.last+1:
		return s.send(m) && s.release()
	default:
		if s.held == nil {
			s.held = map[int64]*store.Message{}
		}
		s.held[m.Pos] = m
		if len(s.held) > reorderMax {
			return s.fill()
		}
		if s.waitC == nil {
			if s.wait == nil {
				s.wait = time.NewTimer(reorderWait)
			} else {
				s.wait.Reset(reorderWait)
			}
			s.waitC = s.wait.C
		}
	}
	return true
}

// replayPageRead, when set (by tests), runs after messageAdded's replay
// has read a page (counted from 0) and before it delivers it.
var replayPageRead func(channel string, page int)

// replayQuery, when set (by tests), runs as a stream asks for a page
// (queried false) and in the query it began or joined, once it has read
// (queried true).
var replayQuery func(channel string, queried bool)

// messagesAfter reads a page of a channel's messages after a position for
// messageAdded. Subscribers of the same channel that miss the same
// positions at the same moment (all of them, when the bus reconnects) share
// one query: the messages are read-only.
// led is false when the caller joined a query another caller had begun.
func (r *Resolver) messagesAfter(ctx context.Context, channel string, after, upTo int64) (msgs []*store.Message, led bool, err error) {
	key := channel + "\x00" + strconv.FormatInt(after, 10) + "\x00" + strconv.FormatInt(upTo, 10)
	if replayQuery != nil {
		replayQuery(channel, false)
	}
	ch := replays.DoChan(key, func() (any, error) {
		led = true // runs for the caller that begins the query only
		// Not the caller's context: the query outlives a caller that leaves
		// while others wait for it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		msgs, err := r.Store.MessagesAfter(qctx, channel, after, upTo, replayPage)
		if err == nil {
			r.fillReplayed(qctx, msgs)
		}
		if replayQuery != nil {
			replayQuery(channel, true)
		}
		return msgs, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, led, res.Err
		}
		return res.Val.([]*store.Message), led, nil
	case <-ctx.Done():
		return nil, false, ctx.Err() // led is the query's to write until it ends
	}
}

// fillReplayed gives a page of replayed messages their authors and
// reaction counts, as live messages carry them in their events: each
// message of a replay is a response of its own, whose loaders would wait
// and query for each one (a few hundred messages a second at most, and
// a long resume on a busy channel outlasted its bus buffer). Best effort:
// what is missing is loaded as before.
func (r *Resolver) fillReplayed(ctx context.Context, msgs []*store.Message) {
	if len(msgs) == 0 {
		return
	}
	ids := make([]uuid.UUID, len(msgs))
	var users []string
	for i, m := range msgs {
		ids[i] = m.ID
		if !slices.Contains(users, m.UserID) {
			users = append(users, m.UserID)
		}
	}
	if found, err := r.Store.UsersByID(ctx, users); err == nil {
		for _, m := range msgs {
			if i := slices.Index(users, m.UserID); found[i] != nil {
				m.Sender = found[i]
			}
		}
	}
	if counts, err := r.Store.MessageReactionCounts(ctx, ids); err == nil {
		for i, m := range msgs {
			m.Reactions = counts[i]
			if m.Reactions == nil {
				m.Reactions = []store.ReactionCount{}
			}
		}
	}
}

// replays deduplicates messageAdded's reads of missed messages on a node.
var replays singleflight.Group

// readGuard decides, event by event, whether a subscriber may still read
// a channel. Only a removal takes that right away, and every channel event
// carries the channel's count of removals when it was made: the guard asks
// PostgreSQL only when an event shows a removal it cannot account for, its
// own, one it missed, or one whose event another event overtook (made after
// the removal committed, so the subscriber must not get it if it was
// removed). Other events cost nothing.
type readGuard struct {
	r       *Resolver
	channel string
	me      auth.Identity
	// verified is the channel's MemberRemovals when the subscriber was
	// last known to read it.
	verified int64
}

func (r *Resolver) newReadGuard(a *store.ChannelAccess, me auth.Identity) *readGuard {
	return &readGuard{r: r, channel: a.Channel.ID, me: me, verified: a.Channel.MemberRemovals}
}

// check returns, as the error a new subscription would get, whether the
// subscriber may go on reading after event e (nil: after a gap in the
// bus, when any event may have been missed).
func (g *readGuard) check(ctx context.Context, e *store.ChannelEvent) error {
	switch {
	case e == nil:
		return g.recheck(ctx)
	case g.removes(e):
		return g.recheck(ctx)
	case e.Type == store.EventMemberRemoved:
		switch {
		case e.Removals == g.verified+1:
			g.verified = e.Removals // the next removal, of others only
		case e.Removals > g.verified+1:
			return g.recheck(ctx)
		}
	case e.Removals > g.verified:
		return g.recheck(ctx)
	}
	return nil
}

// removes reports whether e is the removal of the guard's subscriber.
func (g *readGuard) removes(e *store.ChannelEvent) bool {
	return e != nil && e.Type == store.EventMemberRemoved &&
		((e.User != nil && e.User.ID == g.me.UserID) || slices.Contains(e.Removed, g.me.UserID))
}

func (g *readGuard) recheck(ctx context.Context) error {
	a, err := g.r.Store.ChannelForUser(ctx, g.channel, g.me.UserID)
	if err != nil {
		return err
	}
	if err := requireRead(a, g.me); err != nil {
		return err
	}
	g.verified = max(g.verified, a.Channel.MemberRemovals)
	return nil
}

// channelEventCache decodes each channel event once per node rather than
// once per subscriber: the bus hands every local subscriber of a topic the
// same Data slice, so its address identifies the event. Holding the slice
// keeps its memory from being reused while it is cached. Decoded events
// are shared and must be treated as read-only.
var channelEventCache struct {
	mu   sync.Mutex
	keys [64]*byte
	vals [64]*store.ChannelEvent
	next int
}

func decodeChannelEvent(data []byte) (*store.ChannelEvent, error) {
	if len(data) == 0 {
		return nil, errors.New("chat: empty event")
	}
	c := &channelEventCache
	k := &data[0]
	c.mu.Lock()
	for i, key := range c.keys {
		if key == k {
			v := c.vals[i]
			c.mu.Unlock()
			return v, nil
		}
	}
	c.mu.Unlock()
	e := new(store.ChannelEvent)
	if err := json.Unmarshal(data, e); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.keys[c.next], c.vals[c.next] = k, e
	c.next = (c.next + 1) % len(c.keys)
	c.mu.Unlock()
	return e, nil
}

// decodeJSON decodes one subscriber's copy of an event.
func decodeJSON[T any](data []byte) (*T, error) {
	v := new(T)
	return v, json.Unmarshal(data, v)
}

// react adds or removes the caller's reaction to a message (change reports
// whether anything changed) and announces it on the channel as event.
func (r *Resolver) react(ctx context.Context, message, kind, event string,
	change func(ctx context.Context, message uuid.UUID, userID, kind string) (bool, error)) (*store.Message, error) {
	if err := store.CheckReactionKind("kind", kind); err != nil {
		return nil, err
	}
	m, a, me, err := r.messageAccess(ctx, "message", message)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	changed, err := change(ctx, m.ID, me.UserID, kind)
	if err != nil {
		return nil, err
	}
	if changed {
		r.publishChannel(ctx, event, m.ChannelID, me.UserID, r.withReactions(ctx, m))
	}
	return m, nil
}
