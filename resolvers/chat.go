package resolvers

import (
	"context"
	"slices"
	"sync"

	"github.com/google/uuid"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// chatLoaders are the dataloaders of the chat product, created together on
// first use: a response that needs none (a typing event, say) allocates
// nothing for them.
type chatLoaders struct {
	chatService *chat.Service
	chatOnce    sync.Once
	chatSet     *chatLoaderSet
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
	// MyInvitations are the caller's invitations, by channel.
	MyInvitations *Loader[string, *store.Member]
	// UnreadMentions are members' unread mentions.
	UnreadMentions *Loader[store.MemberKey, int]
	// ThreadParticipants are threads' first participants, by parent.
	ThreadParticipants *Loader[uuid.UUID, []string]
}

// latestKey asks for a message's newest n reactions.
type latestKey struct {
	id uuid.UUID
	n  int
}

func newChatLoaders(s *chat.Service) chatLoaders { return chatLoaders{chatService: s} }

// chat returns the chat product's loaders, creating them on first use.
func (l *chatLoaders) chat() *chatLoaderSet {
	l.chatOnce.Do(func() { l.chatSet = newChatLoaderSet(l.chatService) })
	return l.chatSet
}

func newChatLoaderSet(s *chat.Service) *chatLoaderSet {
	return &chatLoaderSet{
		Channels:       NewLoader(s.ChannelsByID),
		Messages:       NewLoader(s.MessagesByID),
		ReactionCounts: NewLoader(s.ReactionCounts),
		OwnReactions:   NewLoader(s.OwnReactions),
		LatestReactions: NewLoader(func(ctx context.Context, keys []latestKey) ([][]*store.MessageReaction, error) {
			n := 0
			ids := make([]uuid.UUID, len(keys))
			for i, k := range keys {
				n = max(n, k.n)
				ids[i] = k.id
			}
			all, err := s.LatestReactions(ctx, n, ids)
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
		MyMemberships:      NewLoader(s.MyMemberships),
		MyInvitations:      NewLoader(s.MyInvitations),
		UnreadMentions:     NewLoader(s.UnreadMentions),
		ThreadParticipants: NewLoader(s.ThreadParticipants),
	}
}

// chatLookup reads channels and memberships for the chat product through
// the request's loaders, so what it reads is there for the response.
type chatLookup struct{ l *chatLoaderSet }

func (c chatLookup) Channels(ctx context.Context, ids []string) ([]*store.Channel, error) {
	return c.l.Channels.Fetch(ctx, ids)
}

func (c chatLookup) MyMemberships(ctx context.Context, ids []string) ([]*store.Member, error) {
	return c.l.MyMemberships.Fetch(ctx, ids)
}

// setChatComplexity gives the chat product's list fields their cost.
func setChatComplexity(c *graph.ComplexityRoot) {
	c.Channel.Members = func(child int, first *int, _ *string, _ *store.MemberStatus) int { return listCost(child, first) }
	c.Channel.Messages = func(child int, last *int, _, _, _ *string) int { return listCost(child, last) }
	c.Channel.PinnedMessages = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Message.Replies = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Message.LatestReactions = func(child int, first *int) int { return listCost(child, first) }
	c.Message.MentionedUsers = func(child int) int { return 1 + 10*child }
	c.Message.ReactionCounts = func(child int) int { return 1 + 10*child }
	c.Message.OwnReactions = func(child int) int { return 1 + 5*child }
	c.Query.Channels = func(child int, _ *store.ChannelFilter, _ []*store.ChannelSort, first *int, _ *string) int {
		return listCost(child, first)
	}
	c.Query.SearchMessages = func(child int, _ string, _ *string, first *int, _ *string) int { return listCost(child, first) }
	c.Query.Threads = func(child int, first *int, _ *string) int { return listCost(child, first) }
	c.Thread.Participants = func(child int) int { return 1 + chat.ThreadParticipantsShown*child }
	c.UnreadCounts.Channels = func(child int) int { return 1 + 100*child }
}

// messageConnection maps a page of messages to a connection and prefetches
// what the page's messages will load.
func (r *Resolver) messageConnection(ctx context.Context, page store.Page[*store.Message], cursor func(*store.Message) string) *model.MessageConnection {
	r.prefetchMessages(ctx, page.Items)
	es, info := edges(page, cursor, func(c string, m *store.Message) *model.MessageEdge { return &model.MessageEdge{Cursor: c, Node: m} })
	return &model.MessageConnection{Edges: es, PageInfo: info}
}

// prefetchMessages loads, one statement each, what the selected fields of
// a list of messages need, and keeps it on the messages themselves (Sender,
// Reactions, Own): their fields then read a plain value instead of asking a
// loader, as an event's message does. The loaders are primed too, for the
// other fields that look the same keys up.
func (r *Resolver) prefetchMessages(ctx context.Context, msgs []*store.Message) {
	if len(msgs) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	if selected(ctx, "edges", "node", "user") && slices.ContainsFunc(msgs, func(m *store.Message) bool { return m.Sender == nil }) {
		if users, err := l.Users.Fetch(ctx, mapItems(msgs, func(m *store.Message) string { return m.UserID })); err == nil {
			for i, m := range msgs {
				// A user not found stays nil: the field's loader says so.
				if u := users[i]; u != nil && m.Sender == nil {
					m.Sender = u
				}
			}
		}
	}
	counts, own := selected(ctx, "edges", "node", "reactionCounts"), selected(ctx, "edges", "node", "ownReactions")
	if !counts && !own {
		return
	}
	ids := mapItems(msgs, func(m *store.Message) uuid.UUID { return m.ID })
	if counts && slices.ContainsFunc(msgs, func(m *store.Message) bool { return m.Reactions == nil }) {
		if all, err := l.chat().ReactionCounts.Fetch(ctx, ids); err == nil {
			for i, m := range msgs {
				if m.Reactions == nil {
					m.Reactions = all[i]
				}
			}
		}
	}
	if own {
		if all, err := l.chat().OwnReactions.Fetch(ctx, ids); err == nil {
			for i, m := range msgs {
				if m.Own == nil {
					m.Own = all[i]
					if m.Own == nil {
						m.Own = []*store.MessageReaction{}
					}
				}
			}
		}
	}
}

// prefetchThreads loads, one statement each, what the selected fields of a
// page of threads need.
func (r *Resolver) prefetchThreads(ctx context.Context, threads []*store.Thread) {
	if len(threads) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	if selected(ctx, "edges", "node", "channel") {
		_ = l.chat().Channels.Prefetch(ctx, mapItems(threads, func(t *store.Thread) string { return t.ParentMessage.ChannelID }))
	}
	if selected(ctx, "edges", "node", "parentMessage", "user") {
		prefetchUsers(ctx, l, threads, func(t *store.Thread) string { return t.ParentMessage.UserID })
	}
	if selected(ctx, "edges", "node", "participants") {
		all, err := l.chat().ThreadParticipants.Fetch(ctx, mapItems(threads, func(t *store.Thread) uuid.UUID { return t.ParentMessage.ID }))
		var users []string
		for _, p := range all {
			users = append(users, p...)
		}
		if err == nil && len(users) > 0 {
			_ = l.Users.Prefetch(ctx, users)
		}
	}
}
