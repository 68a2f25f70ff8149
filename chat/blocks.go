package chat

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Blocks and mutes are a user's own: anyone signed in blocks or mutes
// anyone else. Both change how the user's unread counts are computed
// (messages of a blocked or muted user count not, a muted channel leaves
// the totals), so each change invalidates the user's Redis counters: the
// next read computes them in PostgreSQL, which applies the exceptions and
// keeps doing so while the user silences anyone (see UnreadCounts).

// BlockUser blocks a user for the caller.
func (s *Service) BlockUser(ctx context.Context, user string) (bool, error) {
	me, err := s.otherUser(ctx, user, "block")
	if err != nil {
		return false, err
	}
	if err := s.store.BlockUser(ctx, me.UserID, user); err != nil {
		return false, err
	}
	s.blocks.reload(ctx, me.UserID)
	s.countsChanged(ctx, me.UserID)
	return true, nil
}

// UnblockUser lifts the caller's block of a user and reports whether
// there was one.
func (s *Service) UnblockUser(ctx context.Context, user string) (bool, error) {
	me, err := s.otherUser(ctx, user, "unblock")
	if err != nil {
		return false, err
	}
	ok, err := s.store.UnblockUser(ctx, me.UserID, user)
	if err != nil || !ok {
		return false, err
	}
	s.blocks.reload(ctx, me.UserID)
	s.countsChanged(ctx, me.UserID)
	return true, nil
}

// BlockedUsers lists the users a user blocks: the caller's own only.
func (s *Service) BlockedUsers(ctx context.Context, of string) ([]*store.User, error) {
	me, err := self(ctx, of)
	if err != nil {
		return nil, err
	}
	return s.store.BlockedUsers(ctx, me.UserID)
}

// MuteUser mutes a user for the caller until a time (nil: for good).
func (s *Service) MuteUser(ctx context.Context, user string, until *time.Time) (bool, error) {
	me, err := s.otherUser(ctx, user, "mute")
	if err != nil {
		return false, err
	}
	if err := s.store.MuteUser(ctx, me.UserID, user, until); err != nil {
		return false, err
	}
	s.countsChanged(ctx, me.UserID)
	return true, nil
}

// UnmuteUser lifts the caller's mute of a user and reports whether one
// was in force.
func (s *Service) UnmuteUser(ctx context.Context, user string) (bool, error) {
	me, err := s.otherUser(ctx, user, "unmute")
	if err != nil {
		return false, err
	}
	ok, err := s.store.UnmuteUser(ctx, me.UserID, user)
	if err != nil || !ok {
		return false, err
	}
	s.countsChanged(ctx, me.UserID)
	return true, nil
}

// MutedUsers lists a user's mutes of users in force: the caller's own
// only.
func (s *Service) MutedUsers(ctx context.Context, of string) ([]*store.Mute, error) {
	me, err := self(ctx, of)
	if err != nil {
		return nil, err
	}
	return s.store.MutedUsers(ctx, me.UserID)
}

// self checks that user is the caller: whom one blocks or mutes is
// nobody else's business.
func self(ctx context.Context, user string) (auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err == nil && user != me.UserID {
		err = auth.Forbidden("only your own blocks and mutes can be read: ask on me")
	}
	return me, err
}

// MuteChannel mutes (mute false: unmutes) a channel the caller is a
// member of, until a time (nil: for good). Unmuting reports whether a
// mute was in force.
func (s *Service) MuteChannel(ctx context.Context, channel string, mute bool, until *time.Time) (bool, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return false, err
	}
	if a.Role == "" {
		return false, auth.Forbidden("only members mute channel %q", channel)
	}
	was, err := s.store.MuteChannel(ctx, channel, me.UserID, mute, until)
	if err != nil {
		return false, err
	}
	s.countsChanged(ctx, me.UserID)
	return mute || was, nil
}

// otherUser checks a user id another user acts on.
func (s *Service) otherUser(ctx context.Context, user, verb string) (auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return me, err
	}
	if err := store.CheckUserID("user", user); err != nil {
		return me, err
	}
	if user == me.UserID {
		return me, store.Invalid("user", "you cannot %s yourself", verb)
	}
	return me, nil
}

// countsChanged sends a user's next unread read to PostgreSQL, after a
// change of what counts for it.
func (s *Service) countsChanged(ctx context.Context, user string) {
	if err := s.state.InvalidateUnread(ctx, []string{user}); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "user", user, "err", err)
	}
}

// visible reports whether viewer may see message m: not shadowed (but its
// own), and not from a user it blocks. For requests: the viewer's blocks
// are read again once blockTTL old.
func (s *Service) visible(ctx context.Context, m *store.Message, viewer string) bool {
	return m.VisibleTo(viewer) && (m.UserID == viewer || !s.blocks.blocks(ctx, viewer, m.UserID))
}

// blockTTL is how long a request trusts the blocks this node read. A
// block applies at once to reads from PostgreSQL (history, search, counts)
// and to streams on the node that made it; elsewhere to requests within
// blockTTL, and to subscriptions opened after it.
const blockTTL = 10 * time.Second

// blockCache keeps each viewer's blocked users. Streams filter every
// message they deliver with it, a thousand subscribers at once for one
// message: each holds its viewer's slot (watch) and reads it without a
// lock.
type blockCache struct {
	store *store.Store
	log   interface {
		Warn(msg string, args ...any)
	}
	mu sync.Mutex
	by map[string]*blockSlot
}

// blockSlot holds a viewer's blocks as last read; nil before the first
// read, or after one failed.
type blockSlot struct{ p atomic.Pointer[blockEntry] }

type blockEntry struct {
	ids map[string]bool
	at  time.Time
}

// has reports whether the slot's viewer blocks user, as last read.
func (b *blockSlot) has(user string) bool {
	e := b.p.Load()
	return e != nil && len(e.ids) > 0 && e.ids[user]
}

// slot returns a viewer's slot, made on first use.
func (c *blockCache) slot(viewer string) *blockSlot {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.by[viewer]
	if !ok {
		if len(c.by) > 100_000 {
			// Bound the memory. Streams keep their slots; theirs are
			// read again when they next subscribe.
			clear(c.by)
		}
		b = &blockSlot{}
		c.by[viewer] = b
	}
	return b
}

// watch returns a subscriber's slot, read now unless this node read it
// within blockTTL.
func (c *blockCache) watch(ctx context.Context, viewer string) *blockSlot {
	b := c.slot(viewer)
	if e := b.p.Load(); e == nil || time.Since(e.at) > blockTTL {
		c.load(ctx, viewer, b)
	}
	return b
}

// blocks reports whether viewer blocks user, reading the viewer's blocks
// again when what this node has is older than blockTTL. A failed read
// counts as no block (logged): a message too many beats a request that
// fails.
func (c *blockCache) blocks(ctx context.Context, viewer, user string) bool {
	return c.watch(ctx, viewer).has(user)
}

// load reads a viewer's blocks into its slot.
func (c *blockCache) load(ctx context.Context, viewer string, b *blockSlot) {
	ids, err := c.store.BlockedIDs(ctx, viewer)
	if err != nil {
		c.log.Warn("chat: read blocks", "user", viewer, "err", err)
		return
	}
	e := &blockEntry{ids: make(map[string]bool, len(ids)), at: time.Now()}
	for _, id := range ids {
		e.ids[id] = true
	}
	b.p.Store(e)
}

// reload reads a viewer's blocks again after they changed on this node:
// its open streams here see the change at once.
func (c *blockCache) reload(ctx context.Context, viewer string) {
	c.load(ctx, viewer, c.slot(viewer))
}
