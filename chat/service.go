// Package chat is Brook's chat product: channels and their members,
// messages with threads and reactions, exact unread counts, and the live
// streams of a channel (messageAdded, channelEvents) and of a user
// (myEvents). Its Service owns the product's rules: who may do what,
// validation, the transaction, and what follows the commit (events,
// unread bookkeeping in Redis, waking the workers); its outbox jobs call
// the same Service.
package chat

import (
	"context"
	"log/slog"

	"golang.org/x/sync/singleflight"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/linkpreview"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Options are what the chat Service works with.
type Options struct {
	product.Parts
	// PushMemberLimit is CHAT_PUSH_MEMBER_LIMIT: channels with more
	// members are big, their unread counts computed at read time rather
	// than pushed to each member's counters (0: DefaultPushMemberLimit).
	PushMemberLimit int
	// ReadActivity reads an activity for the caller under the feeds
	// product's read rule (feeds.Service.Activity): nil when there is
	// none, FORBIDDEN when the caller may not read it. Flags of
	// activities need it.
	ReadActivity func(ctx context.Context, id string) (*store.Activity, error)
	// Previews makes link previews of messages' URLs; nil: none.
	Previews *linkpreview.Service
}

// DefaultPushMemberLimit is CHAT_PUSH_MEMBER_LIMIT's default: channels
// with more members are big.
const DefaultPushMemberLimit = 1000

// Service is the chat product.
type Service struct {
	store     *store.Store
	state     *ephemeral.State
	bus       *bus.Bus
	log       *slog.Logger
	hooks     *webhooks.Service
	push      *push.Service
	pushLimit int
	// readActivity is Options.ReadActivity.
	readActivity func(ctx context.Context, id string) (*store.Activity, error)
	// replays shares messageAdded's reads of missed messages on a node.
	replays singleflight.Group
	blocks  *blockCache
	// previews is Options.Previews.
	previews *linkpreview.Service
}

// New returns the chat Service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, state: opts.State, bus: opts.Bus, log: opts.Log(), hooks: opts.Hooks, push: opts.Push, pushLimit: opts.PushMemberLimit,
		readActivity: opts.ReadActivity}
	if s.pushLimit <= 0 {
		s.pushLimit = DefaultPushMemberLimit
	}
	s.previews = opts.Previews
	s.blocks = &blockCache{store: s.store, log: s.log, by: map[string]*blockSlot{}}
	if s.state != nil {
		// A write to the counters that failed while Redis was away
		// invalidates them all before Redis is trusted again. If Redis
		// refuses that write, the guard closes its circuit anyway and
		// retries it; until it succeeds, UnreadCounts reads PostgreSQL
		// and the totals that writes return are unknown.
		s.state.Guard().OnRecover(s.state.SettleUnread)
	}
	return s
}

// big reports whether a channel of so many members is big: its unread
// counts are computed at read time, its notifications go to members with
// an open connection only. The one place the rule is written.
func (s *Service) big(members int) bool { return members > s.pushLimit }
