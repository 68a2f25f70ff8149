package feeds

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// defaultCopyLimit is how many of the target's recent activities a follow
// copies into the follower when it does not say.
const defaultCopyLimit = 100

// Follow makes source, the caller's timeline, follow target, a user feed,
// and backfills up to activityCopyLimit of target's most recent
// activities through a durable job. Following a FOLLOWERS feed of another
// user makes a request instead (status PENDING), which copies nothing
// until target's owner accepts it; a PRIVATE one is FORBIDDEN. Following
// again returns the existing follow or request and writes nothing.
func (s *Service) Follow(ctx context.Context, source, target string, activityCopyLimit *int, lookup Lookup) (*store.Follow, error) {
	src, dst, err := followFeeds(ctx, source, target)
	if err != nil {
		return nil, err
	}
	if u, err := s.lookup(lookup).LoadUser(ctx, dst.OwnerID); err != nil || u == nil {
		if err == nil {
			err = store.NotFound("user", dst.OwnerID)
		}
		return nil, err
	}
	limit := defaultCopyLimit
	if activityCopyLimit != nil {
		limit = *activityCopyLimit
	}
	if err := store.CheckCopyLimit(limit); err != nil {
		return nil, err
	}
	var f *store.Follow
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		if src.OwnerID != dst.OwnerID {
			vis, err := tx.FeedVisibilityOf(ctx, dst.ID)
			if err != nil {
				return err
			}
			switch vis {
			case store.VisibilityPrivate:
				return auth.Forbidden("%s is private: only %s reads it", dst.ID, dst.OwnerID)
			case store.VisibilityFollowers:
				if f, err = tx.FollowOf(ctx, src.ID, dst.ID); err != nil || f != nil {
					return err
				}
				if f, err = tx.RequestFollow(ctx, src.ID, dst.ID, limit); err != nil {
					return err
				}
				// An acceptFollow of the earlier request may have committed
				// while the request waited for it: the follow it started
				// answers, and this request must not outlive it.
				accepted, err := tx.FollowOf(ctx, src.ID, dst.ID)
				if err != nil || accepted == nil {
					return err
				}
				f = accepted
				_, _, err = tx.TakeFollowRequest(ctx, src.ID, dst.ID)
				return err
			}
		}
		f, err = s.startFollow(ctx, tx, src, dst, limit)
		return err
	})
	if err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			return nil, err
		}
		return nil, fmt.Errorf("feeds: follow: %w", err)
	}
	if f.Status == store.FollowAccepted {
		s.wakeWorkers(ctx)
		s.followsChanged(ctx, append([]string{src.ID}, f.Remerged...))
	}
	return f, nil
}

// startFollow writes source's follow of target in tx, with what a new
// follow brings: the counts, the read-time merge of a pulled target, and
// the job that backfills up to limit of target's activities. A follow
// that exists already is returned as it is. Follow and acceptFollow both
// start follows here.
func (s *Service) startFollow(ctx context.Context, tx *store.Store, src, dst *store.Feed, limit int) (*store.Follow, error) {
	f, backfill, err := tx.AddFollow(ctx, src, dst, limit)
	if err != nil || backfill == nil {
		return f, err
	}
	// A request made while target was not public is answered by the
	// follow.
	if _, _, err := tx.TakeFollowRequest(ctx, src.ID, dst.ID); err != nil {
		return nil, err
	}
	// Counting may take target across the threshold, flagging every
	// follow of it, this one included.
	if f.Remerged, err = s.countFollow(ctx, tx, src.ID, dst.ID, 1); err != nil {
		return nil, err
	}
	// A follow of a pulled feed merges it at read time from the start.
	if err := tx.MergeIfPulled(ctx, src.ID, dst.ID); err != nil {
		return nil, err
	}
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "follow.created", Key: "feed:" + dst.ID, At: time.Now(),
		Payload: map[string]any{"follow": followHookOf(f)}}); err != nil {
		return nil, err
	}
	if limit == 0 {
		return f, nil
	}
	_, err = tx.EnqueueJob(ctx, store.JobFeedBackfill, backfill)
	return f, err
}

// Unfollow ends source's follow of target, or withdraws its request to
// follow it. Unless keepHistory is set, a durable job removes what the
// follow brought into source. It reports whether source followed (or had
// asked to follow) target.
func (s *Service) Unfollow(ctx context.Context, source, target string, keepHistory *bool) (bool, error) {
	src, dst, err := followFeeds(ctx, source, target)
	if err != nil {
		return false, err
	}
	keep := keepHistory != nil && *keepHistory
	var existed bool
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		ended, err := tx.EndFollow(ctx, src.ID, dst.ID)
		existed = ended != nil
		if err != nil {
			return err
		}
		if ended == nil {
			// Not a follow: perhaps a request, which unfollow withdraws.
			_, existed, err = tx.TakeFollowRequest(ctx, src.ID, dst.ID)
			return err
		}
		if _, err := s.countFollow(ctx, tx, src.ID, dst.ID, -1); err != nil {
			return err
		}
		if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "follow.deleted", Key: "feed:" + dst.ID, At: time.Now(),
			Payload: map[string]any{"source": src.ID, "target": dst.ID}}); err != nil {
			return err
		}
		if keep {
			if ended.Pulled {
				// The timeline merged the target's activities at read time;
				// with the follow gone it keeps them as rows, as if they
				// had been pushed.
				return tx.KeepMerged(ctx, *ended)
			}
			return nil
		}
		_, err = tx.EnqueueJob(ctx, store.JobFeedUnfollow, *ended)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("feeds: unfollow: %w", err)
	}
	s.wakeWorkers(ctx)
	if existed {
		s.followsChanged(ctx, []string{src.ID})
		// Its owner's streams of target check they may still read it.
		s.accessChanged(ctx, dst.ID, src.OwnerID)
	}
	return existed, nil
}

// countFollow moves the follow counts by delta and moves target across the
// pull threshold when its follower count crosses it. Crossing upwards, in
// the same transaction (which addActivity's FOR SHARE orders against
// posts), every follow of target is flagged to merge it at read time and
// its new activities stop being pushed; the flagged followers are
// returned. Falling back, its new activities are pushed again, and a
// durable job copies what it posted meanwhile into its followers'
// timelines, clearing each follow's flag as it goes.
func (s *Service) countFollow(ctx context.Context, tx *store.Store, source, target string, delta int) ([]string, error) {
	followers, pulledSince, err := tx.CountFollow(ctx, source, target, delta)
	if err != nil {
		return nil, err
	}
	switch {
	case s.pulled(followers) && !s.pulled(followers-delta):
		return tx.PullFeed(ctx, target)
	case !s.pulled(followers) && pulledSince != nil && delta < 0:
		_, err = tx.EnqueueJob(ctx, store.JobFeedDemote, store.DemoteJob{Feed: target, Since: *pulledSince, Threshold: s.pullThreshold})
	}
	return nil, err
}

// Followers returns a page of the feeds that follow f, by feed id: the
// followers of a user feed are listed to those who may read it.
func (s *Service) Followers(ctx context.Context, f *store.Feed, first *int, after *string) (store.Page[store.FeedLink], error) {
	if f.Group == store.GroupUser {
		if err := s.RequireRead(ctx, f); err != nil {
			return store.Page[store.FeedLink]{}, err
		}
	}
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[store.FeedLink]{}, err
	}
	return s.store.Followers(ctx, f.ID, pos, n)
}

// Following returns a page of the feeds f follows, by feed id, when the
// caller may read f.
func (s *Service) Following(ctx context.Context, f *store.Feed, first *int, after *string) (store.Page[store.FeedLink], error) {
	if err := s.RequireRead(ctx, f); err != nil {
		return store.Page[store.FeedLink]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[store.FeedLink]{}, err
	}
	// timeline_aggregated has the timeline's follows.
	id := f.ID
	if f.Group == store.GroupTimelineAggregated {
		id = store.GroupTimeline + ":" + f.OwnerID
	}
	return s.store.Following(ctx, id, pos, n)
}
