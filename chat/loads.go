package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Batch reads for a request's dataloaders: each reads many at once, in
// the order asked, with nil for what does not exist. The objects they load
// hang off a channel or message the request already read under the
// caller's access.

// ChannelsByID reads channels.
func (s *Service) ChannelsByID(ctx context.Context, ids []string) ([]*store.Channel, error) {
	return s.store.ChannelsByID(ctx, ids)
}

// MessagesByID reads messages.
func (s *Service) MessagesByID(ctx context.Context, ids []uuid.UUID) ([]*store.Message, error) {
	return s.store.MessagesByID(ctx, ids)
}

// ReactionCounts reads messages' reaction counts, most first.
func (s *Service) ReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]store.ReactionCount, error) {
	return s.store.MessageReactionCounts(ctx, ids)
}

// OwnReactions reads the caller's reactions to messages.
func (s *Service) OwnReactions(ctx context.Context, ids []uuid.UUID) ([][]*store.MessageReaction, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.OwnMessageReactions(ctx, me.UserID, ids)
}

// LatestReactions reads messages' newest n reactions.
func (s *Service) LatestReactions(ctx context.Context, n int, ids []uuid.UUID) ([][]*store.MessageReaction, error) {
	return s.store.LatestMessageReactions(ctx, n, ids)
}

// MyMemberships reads the caller's memberships of channels.
func (s *Service) MyMemberships(ctx context.Context, channels []string) ([]*store.Member, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.MembershipsOf(ctx, me.UserID, channels)
}

// UnreadMentions reads members' unread mentions in their channels.
func (s *Service) UnreadMentions(ctx context.Context, keys []store.MemberKey) ([]int, error) {
	return s.store.UnreadMentions(ctx, keys)
}

// TotalUnreadMentions reads the caller's unread mentions across its
// channels.
func (s *Service) TotalUnreadMentions(ctx context.Context) (int, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return 0, err
	}
	return s.store.TotalUnreadMentions(ctx, me.UserID)
}
