package chat

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// readGuard decides, event by event, whether a subscriber may still read
// a channel. Only a removal takes that right away, and every channel event
// carries the channel's count of removals when it was made: the guard asks
// PostgreSQL only when an event shows a removal it cannot account for, its
// own, one it missed, or one whose event another event overtook (made after
// the removal committed, so the subscriber must not get it if it was
// removed). Other events cost nothing.
type readGuard struct {
	s       *Service
	channel string
	me      auth.Identity
	// verified is the channel's MemberRemovals when the subscriber was
	// last known to read it.
	verified int64
	// blocks are the subscriber's blocks, read without a lock as each
	// message is delivered.
	blocks *blockSlot
}

// It loads the subscriber's blocks too, which delivery reads (delivers).
func (s *Service) newReadGuard(ctx context.Context, a *store.ChannelAccess, me auth.Identity) *readGuard {
	return &readGuard{s: s, channel: a.Channel.ID, me: me, verified: a.Channel.MemberRemovals, blocks: s.blocks.watch(ctx, me.UserID)}
}

// check returns, as the error a new subscription would get, whether the
// subscriber may go on reading after event e (nil: after a gap in the
// bus, when any event may have been missed).
func (g *readGuard) check(ctx context.Context, e *ChannelEvent) error {
	switch {
	case e == nil:
		return g.recheck(ctx)
	case g.removes(e):
		return g.recheck(ctx)
	case isRemoval(e.Type):
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

// delivers reports whether the subscriber may see message m: not another's
// shadowed message, nor one from a user it blocks. No I/O: it runs for
// every subscriber of every message.
func (g *readGuard) delivers(m *store.Message) bool {
	return m.VisibleTo(g.me.UserID) && (m.UserID == g.me.UserID || !g.blocks.has(m.UserID))
}

// removes reports whether e is the removal of the guard's subscriber, or
// the channel's deletion: the subscriber gets it, then the stream ends.
func (g *readGuard) removes(e *ChannelEvent) bool {
	return e != nil && (e.Type == EventChannelDeleted || isRemoval(e.Type) &&
		((e.User != nil && e.User.ID == g.me.UserID) || slices.Contains(e.Removed, g.me.UserID)))
}

func (g *readGuard) recheck(ctx context.Context) error {
	a, err := g.s.store.ChannelForUser(ctx, g.channel, g.me.UserID)
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
	vals [64]*ChannelEvent
	next int
}

func decodeChannelEvent(data []byte) (*ChannelEvent, error) {
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
	e := new(ChannelEvent)
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

// ChannelEvents streams every event of a channel to a reader of it, live
// only (clients re-read state after a reconnect). A subscriber removed from
// the channel gets its own member.removed, then the stream ends.
func (s *Service) ChannelEvents(ctx context.Context, channel string) (<-chan *ChannelEvent, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireRead(a, me); err != nil {
		return nil, err
	}
	ctx = stream.Context(ctx) // kept by the stream for its life
	sub, err := s.bus.SubscribeParked(ctx, ChannelTopic(channel))
	if err != nil {
		return nil, err
	}
	out := stream.New[ChannelEvent](ctx)
	guard := s.newReadGuard(ctx, a, me)
	go stream.Relay(ctx, s.log, sub, out, decodeChannelEvent, func(e *ChannelEvent) (bool, error) {
		err := guard.check(ctx, e)
		if err == nil && e.Message != nil && !guard.delivers(e.Message) {
			return false, nil // another's shadowed message, or a blocked user's
		}
		if err == nil && (e.Type == EventTypingStart || e.Type == EventTypingStop) && e.User != nil &&
			e.User.ID != me.UserID && guard.blocks.has(e.User.ID) {
			return false, nil // a blocked user typing
		}
		return err == nil || guard.removes(e), err
	})
	return out.C, nil
}

// MyEvents streams the caller's notifications across all its channels,
// live only.
func (s *Service) MyEvents(ctx context.Context) (<-chan *UserEvent, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	ctx = stream.Context(ctx) // kept by the stream for its life
	sub, err := s.bus.SubscribeParked(ctx, UserChatTopic(me.UserID))
	if err != nil {
		return nil, err
	}
	out := stream.New[UserEvent](ctx)
	go stream.Relay(ctx, s.log, sub, out, decodeJSON[UserEvent], nil)
	return out.C, nil
}
