package feeds

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

// RegisterJobs gives the workers the feeds product's jobs. Each writes
// set-based and idempotently, and announces what it wrote on the feeds'
// topics only after its transaction commits.
func (s *Service) RegisterJobs(r *workers.Runner) {
	s.wakeRunner = r.Wake
	r.Handle(store.JobFeedActivity, handler(s.activityJob))
	r.HandleAlone(store.JobFeedFanout, handler(s.fanoutJob))
	r.Handle(store.JobFeedBackfill, handler(s.backfillJob))
	r.Handle(store.JobFeedUnfollow, handler(s.unfollowJob))
	r.Handle(store.JobFeedRemove, handler(s.removeJob))
	r.HandleAlone(store.JobFeedDemote, handler(s.demoteJob))
	r.Handle(store.JobFeedVisibility, handler(s.visibilityJob))
	r.Handle(store.JobFeedComment, handler(s.commentJob))
	r.Handle(store.JobFeedReaction, handler(s.reactionJob))
}

// handler makes a workers.Handler of a job function that takes its job's
// decoded payload.
func handler[P any](fn func(ctx context.Context, tx *store.Store, payload P) (func(context.Context), error)) workers.Handler {
	return func(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
		var p P
		if err := job.Decode(&p); err != nil {
			return nil, err
		}
		return fn(ctx, tx, p)
	}
}

// activityJob announces a new activity in its origin and To feeds and,
// for an actor below the pull threshold, fans it out to the followers: the
// first page inline, the others as jobs any worker may take. With
// onlineFirstMin followers or more, it writes inline only the followers
// whose timelines are watched now, and one job plans the pages.
func (s *Service) activityJob(ctx context.Context, tx *store.Store, j store.ActivityJob) (func(context.Context), error) {
	acts, err := s.store.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err // removed meanwhile: nothing to announce
	}
	a := acts[0]
	if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "activity.added", Key: "feed:" + a.FeedID, At: a.CreatedAt,
		Payload: map[string]any{"feed": a.FeedID, "activity": activityHookOf(a)}}); err != nil {
		return nil, err
	}
	feeds := append([]string{a.FeedID}, a.To...)
	if j.Push {
		first, err := s.fanoutWatched(ctx, tx, j)
		if err != nil {
			return nil, err
		}
		if len(first) > 0 {
			// The watched timelines have their rows: the job commits now
			// and publishes to them; one job plans and writes the pages,
			// leaving them out.
			if _, err := tx.EnqueueJob(ctx, store.JobFeedFanout, store.FanoutJob{
				Activity: j.Activity, Origin: j.Origin, Skip: first, Plan: true}); err != nil {
				return nil, err
			}
			feeds = append(feeds, first...)
			return s.queuePreview(ctx, tx, a, s.announce(feeds, FeedUpdate{Added: acts}, true))
		}
		pages, err := tx.PlanFanout(ctx, j)
		if err != nil {
			return nil, err
		}
		for _, p := range pages[1:] {
			if _, err := tx.EnqueueJob(ctx, store.JobFeedFanout, p); err != nil {
				return nil, err
			}
		}
		written, err := tx.FanoutPage(ctx, pages[0])
		if err != nil {
			return nil, err
		}
		feeds = append(feeds, written...)
		if len(pages) > 1 {
			return s.queuePreview(ctx, tx, a, s.announce(feeds, FeedUpdate{Added: acts}, true))
		}
	}
	return s.queuePreview(ctx, tx, a, s.announce(feeds, FeedUpdate{Added: acts}, false))
}

// onlineFirstMin is the follower count from which a fan-out writes its
// watched followers' rows first: below it the whole fan-out is one page
// written about as fast as the lookup.
const onlineFirstMin = 1000

// maxOnlineFirst bounds the watched feeds a fan-out looks for among its
// followers (one index probe each); with more watched feeds on the bus the
// pages run as before.
const maxOnlineFirst = 20_000

// fanoutWatched writes the activity first to the followers of its origin
// whose timelines are watched now, when the origin has enough followers for
// that to pay, and returns them (none: the fan-out runs as before). A
// follower that starts watching afterwards is in a page, which publishes
// to what is watched when it commits, as every page does. With the bus
// unreachable it returns none: the pages still write and announce all.
func (s *Service) fanoutWatched(ctx context.Context, tx *store.Store, j store.ActivityJob) ([]string, error) {
	if s.bus == nil {
		return nil, nil
	}
	if j.Followers < onlineFirstMin {
		return nil, nil
	}
	topics, err := s.bus.WatchedTopics(ctx, FeedTopic(""))
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "feeds: watched timelines; fanning out without them", "err", err)
		return nil, nil
	}
	if len(topics) == 0 || len(topics) > maxOnlineFirst {
		return nil, nil
	}
	ids := make([]string, len(topics))
	for i, t := range topics {
		ids[i] = strings.TrimPrefix(t, FeedTopic(""))
	}
	return tx.FanoutWatched(ctx, j, ids)
}

// fanoutJob writes one page of a fan-out; a Plan job plans the pages of a
// fan-out whose watched followers are written, queues all but the first
// and writes that.
func (s *Service) fanoutJob(ctx context.Context, tx *store.Store, j store.FanoutJob) (func(context.Context), error) {
	more := false
	if j.Plan {
		pages, err := tx.PlanFanout(ctx, store.ActivityJob{Activity: j.Activity, Origin: j.Origin})
		if err != nil {
			return nil, err
		}
		store.SkipWritten(pages, j.Skip)
		for _, p := range pages[1:] {
			if _, err := tx.EnqueueJob(ctx, store.JobFeedFanout, p); err != nil {
				return nil, err
			}
		}
		j, more = pages[0], len(pages) > 1
	}
	feeds, err := tx.FanoutPage(ctx, j)
	if err != nil {
		return nil, err
	}
	if len(feeds) == 0 {
		return s.announce(nil, FeedUpdate{}, more), nil
	}
	acts, err := s.store.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err
	}
	return s.announce(feeds, FeedUpdate{Added: acts}, more), nil
}

// backfillJob copies a followed feed's recent activities into the follower.
func (s *Service) backfillJob(ctx context.Context, tx *store.Store, j store.BackfillJob) (func(context.Context), error) {
	acts, err := tx.Backfill(ctx, j)
	if err != nil || len(acts) == 0 {
		return nil, err
	}
	return s.announce([]string{j.Source}, FeedUpdate{Added: acts}, false), nil
}

// unfollowJob removes what an ended follow brought into the follower.
func (s *Service) unfollowJob(ctx context.Context, tx *store.Store, j store.UnfollowJob) (func(context.Context), error) {
	ids, err := tx.Unfollowed(ctx, j)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return s.announce([]string{j.Source}, FeedUpdate{Removed: ids}, false), nil
}

// removeJob removes a removed activity's entries a batch at a time,
// queueing itself again while rows remain.
func (s *Service) removeJob(ctx context.Context, tx *store.Store, j store.RemoveJob) (func(context.Context), error) {
	feeds, more, err := tx.RemoveEntries(ctx, j)
	if err != nil {
		return nil, err
	}
	if more {
		if _, err := tx.EnqueueJob(ctx, store.JobFeedRemove, j); err != nil {
			return nil, err
		}
	} else if err := s.hooks.Emit(ctx, tx, webhooks.Event{Type: "activity.removed", Key: "activity:" + j.Activity.String(),
		At: time.Now(), Payload: map[string]any{"activity": j.Activity}}); err != nil {
		// Once, with the job's last batch: the activity's row is gone
		// already, so its feed is not known here.
		return nil, err
	}
	return s.announce(feeds, FeedUpdate{Removed: []uuid.UUID{j.Activity}}, more), nil
}

// demoteJob backfills one page of a demoted feed's followers, unless the
// feed has crossed the threshold it fell below again meanwhile: its
// follows were flagged again then, and the job stops.
func (s *Service) demoteJob(ctx context.Context, tx *store.Store, j store.DemoteJob) (func(context.Context), error) {
	// FOR SHARE orders this page with follows that cross the threshold.
	followers, err := tx.LockFollowerCount(ctx, j.Feed)
	if err != nil {
		return nil, fmt.Errorf("feeds: demote feed: %w", err)
	}
	if overThreshold(followers, j.Threshold) {
		return nil, nil
	}
	next, unflagged, err := tx.DemotePage(ctx, j)
	if err != nil {
		return nil, err
	}
	if next != nil {
		if _, err := tx.EnqueueJob(ctx, store.JobFeedDemote, next); err != nil {
			return nil, err
		}
	}
	return s.remerged(unflagged), nil
}
