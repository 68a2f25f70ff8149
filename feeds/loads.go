package feeds

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Batch reads for a request's dataloaders: each reads many at once, in
// the order asked, with nil (or nothing) for what does not exist. The
// objects they load hang off a feed or activity the request already read
// under the caller's access.

// FeedsByID reads feeds with their follow counts: nil for ids of no feed.
func (s *Service) FeedsByID(ctx context.Context, ids []string) ([]*store.Feed, error) {
	return s.store.FeedsByID(ctx, ids)
}

// FeedCounts reads the unseen and unread groups of feeds.
func (s *Service) FeedCounts(ctx context.Context, ids []string) ([]store.FeedCounts, error) {
	out := make([]store.FeedCounts, len(ids))
	for i, id := range ids {
		f, err := store.ParseFeedID("feed", id)
		if err != nil {
			return nil, err
		}
		if out[i], err = s.store.FeedUnseenUnread(ctx, f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ActivitiesByID reads activities.
func (s *Service) ActivitiesByID(ctx context.Context, ids []uuid.UUID) ([]*store.Activity, error) {
	return s.store.ActivitiesByID(ctx, ids)
}

// ReactionCounts reads activities' reaction counts by kind.
func (s *Service) ReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]store.ReactionCount, error) {
	return s.store.ReactionCounts(ctx, ids)
}

// OwnReactions reads the caller's reactions to activities.
func (s *Service) OwnReactions(ctx context.Context, ids []uuid.UUID) ([][]*store.Reaction, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.OwnReactions(ctx, me.UserID, ids)
}

// LatestReactions reads activities' newest first reactions (of kind,
// unless it is empty).
func (s *Service) LatestReactions(ctx context.Context, ids []uuid.UUID, kind string, first int) ([][]*store.Reaction, error) {
	return s.store.LatestReactions(ctx, ids, kind, first)
}
