package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// AddActivity posts an activity by the caller to feed, a user feed it owns
// (any feed, for an admin). In one transaction it writes the activity, its
// entries in the origin and To feeds, and the job that announces it and,
// for an actor below the pull threshold, fans it out to the followers: it
// returns without waiting for the fan-out. Posting the same (feed,
// foreignId, time) again returns the existing activity and writes nothing.
func (s *Service) AddActivity(ctx context.Context, feed string, input store.ActivityInput) (*store.Activity, error) {
	origin, me, err := ownFeed(ctx, "feed", feed)
	if err != nil {
		return nil, err
	}
	if origin.Group != store.GroupUser && !me.IsAdmin() {
		return nil, auth.Forbidden("activities are posted to user feeds: post to user:%s", me.UserID)
	}
	if !me.IsAdmin() {
		for _, to := range input.To {
			f, err := store.ParseFeedID("input.to", to)
			if err != nil {
				return nil, err
			}
			if f.Group != store.GroupNotification && f.OwnerID != me.UserID {
				return nil, auth.Forbidden("you may copy activities to notification feeds and your own feeds, not %s", to)
			}
		}
	}
	id, err := store.CheckActivityInput(origin, &input)
	if err != nil {
		return nil, err
	}
	if input.Stored, err = store.CheckAttachments("input.attachments", input.Attachments); err != nil {
		return nil, err
	}
	var out *store.Activity
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		// FOR SHARE orders this post with follows that move the actor
		// across the pull threshold (they update this row).
		followers, visibility, err := tx.LockFeedForPost(ctx, origin.ID)
		if err != nil {
			return err
		}
		a, written, err := tx.AddActivity(ctx, id, origin, me.UserID, input)
		out = a
		if err != nil || !written {
			return err
		}
		_, err = tx.EnqueueJob(ctx, store.JobFeedActivity, store.ActivityJob{
			// A PRIVATE feed's posts reach no follower.
			Activity: a.ID, Origin: origin.ID, Push: !s.pulled(followers) && visibility != store.VisibilityPrivate,
			Followers: followers,
		})
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("feeds: add activity: %w", err)
	}
	s.wakeWorkers(ctx)
	return out, nil
}

// UpdateActivity replaces the custom data of an activity the caller posted
// (any, for an admin).
func (s *Service) UpdateActivity(ctx context.Context, id string, data json.RawMessage, lookup Lookup) (*store.Activity, error) {
	a, err := s.ownActivity(ctx, id, lookup)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateActivity(ctx, a.ID, data)
	if err == nil {
		s.activityChanged(ctx, a.ID, "")
	}
	return out, err
}

// RemoveActivity removes an activity the caller posted (any, for an
// admin). It is gone from every read at once; its job removes its entries
// from every feed it reached and announces the removal.
func (s *Service) RemoveActivity(ctx context.Context, id string, lookup Lookup) (bool, error) {
	a, err := s.ownActivity(ctx, id, lookup)
	if err != nil {
		return false, err
	}
	if err := s.store.RemoveActivity(ctx, a.ID); err != nil {
		return false, err
	}
	s.wakeWorkers(ctx)
	return true, nil
}

// Activity returns an activity the caller may read, or nil when there is
// none.
func (s *Service) Activity(ctx context.Context, id string, lookup Lookup) (*store.Activity, error) {
	a, _, err := s.readableActivity(ctx, "id", id, lookup)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return a, err
}
