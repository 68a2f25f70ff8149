package feeds

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Imports move an existing app's graph and history into Brook in bulk:
// admins only, up to store.MaxImportBatch rows a call, each call one
// transaction (all of it or nothing), idempotent, and with no job per row:
// the timelines are written by one set-based statement per call. Imports
// publish no live updates: clients read the feeds afterwards.

// requireAdmin is FORBIDDEN for anyone but an admin.
func requireAdmin(ctx context.Context, what string) error {
	id, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if !id.IsAdmin() {
		return auth.Forbidden("only admins may %s", what)
	}
	return nil
}

// ImportFollows writes a batch of follows, each as follow would with
// activityCopyLimit (default 100): the target's recent activities are
// copied into the new followers in the same transaction, the follow
// counts move, and targets the batch takes above the pull threshold are
// merged at read time from then on. Edges that exist already are skipped.
func (s *Service) ImportFollows(ctx context.Context, edges []store.FollowEdgeInput, activityCopyLimit *int) (*store.ImportResult, error) {
	if err := requireAdmin(ctx, "import follows"); err != nil {
		return nil, err
	}
	limit := defaultCopyLimit
	if activityCopyLimit != nil {
		limit = *activityCopyLimit
	}
	if err := store.CheckCopyLimit(limit); err != nil {
		return nil, err
	}
	if err := store.CheckFollowEdges(edges); err != nil {
		return nil, err
	}
	if len(edges) == 0 {
		return &store.ImportResult{}, nil // nothing to stage, nothing to merge
	}
	var res store.ImportResult
	var remerged []string
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		var crossed []string
		var err error
		if res, crossed, err = tx.ImportFollows(ctx, edges, limit, s.pullThreshold); err != nil {
			return err
		}
		if remerged, err = tx.PullFeeds(ctx, crossed); err != nil {
			return err
		}
		merged, err := tx.MergeImportedIfPulled(ctx)
		remerged = append(remerged, merged...)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("feeds: import follows: %w", err)
	}
	s.followsChanged(ctx, remerged)
	return &res, nil
}

// ImportActivities writes a batch of activities into feed, a user feed,
// by its owner: each is skipped if (feed, foreignId, time) exists. Its id
// sorts by its time, so imported history sits in feeds where it happened.
// When the feed's owner is below the pull threshold, the timelines that
// follow it receive the new activities in the same transaction (those
// within each follow's boundary, as a fan-out would copy them); above it
// they are merged at read time, as posts are.
func (s *Service) ImportActivities(ctx context.Context, feed string, acts []store.ImportedActivityInput) (*store.ImportResult, error) {
	if err := requireAdmin(ctx, "import activities"); err != nil {
		return nil, err
	}
	origin, err := store.ParseFeedID("feed", feed)
	if err != nil {
		return nil, err
	}
	if origin.Group != store.GroupUser {
		return nil, store.Invalid("feed", "activities are imported into user feeds: use user:%s", origin.OwnerID)
	}
	ids, err := store.CheckImportedActivities(acts, time.Now())
	if err != nil {
		return nil, err
	}
	if u, err := s.store.UsersByID(ctx, []string{origin.OwnerID}); err != nil || u[0] == nil {
		if err == nil {
			err = store.NotFound("user", origin.OwnerID)
		}
		return nil, err
	}
	var res store.ImportResult
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		// FOR SHARE, as addActivity: orders the import with follows that
		// move the owner across the pull threshold.
		followers, err := tx.LockFollowerCount(ctx, origin.ID)
		if err != nil {
			return err
		}
		res, err = tx.ImportActivities(ctx, origin, origin.OwnerID, acts, ids, !s.pulled(followers))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feeds: import activities: %w", err)
	}
	return &res, nil
}
