package workers

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// registerFeeds registers the background jobs of the feeds product. Each
// writes set-based and idempotently, and announces what it wrote on the
// feeds' topics only after its transaction commits.
func (r *Runner) registerFeeds() {
	r.Handle(store.JobFeedActivity, r.feedActivity)
	r.HandleAlone(store.JobFeedFanout, r.feedFanout)
	r.Handle(store.JobFeedBackfill, r.feedBackfill)
	r.Handle(store.JobFeedUnfollow, r.feedUnfollow)
	r.Handle(store.JobFeedRemove, r.feedRemove)
	r.HandleAlone(store.JobFeedDemote, r.feedDemote)
}

// feedActivity announces a new activity in its origin and To feeds and,
// for an actor below the pull threshold, fans it out to the followers: the
// first page inline, the others as jobs any worker may take.
func (r *Runner) feedActivity(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.ActivityJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	acts, err := r.store.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err // removed meanwhile: nothing to announce
	}
	a := acts[0]
	feeds := append([]string{a.FeedID}, a.To...)
	if j.Push {
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
			return r.announce(feeds, store.FeedUpdate{Added: acts}, true), nil
		}
	}
	return r.announce(feeds, store.FeedUpdate{Added: acts}, false), nil
}

// feedFanout writes one page of a fan-out.
func (r *Runner) feedFanout(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.FanoutJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	feeds, err := tx.FanoutPage(ctx, j)
	if err != nil || len(feeds) == 0 {
		return nil, err
	}
	acts, err := r.store.ActivitiesByID(ctx, []uuid.UUID{j.Activity})
	if err != nil || acts[0] == nil {
		return nil, err
	}
	return r.announce(feeds, store.FeedUpdate{Added: acts}, false), nil
}

// feedBackfill copies a followed feed's recent activities into the follower.
func (r *Runner) feedBackfill(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.BackfillJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	acts, err := tx.Backfill(ctx, j)
	if err != nil || len(acts) == 0 {
		return nil, err
	}
	return r.announce([]string{j.Source}, store.FeedUpdate{Added: acts}, false), nil
}

// feedUnfollow removes what an ended follow brought into the follower.
func (r *Runner) feedUnfollow(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.UnfollowJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	ids, err := tx.Unfollowed(ctx, j)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return r.announce([]string{j.Source}, store.FeedUpdate{Removed: ids}, false), nil
}

// feedRemove removes a removed activity's entries a batch at a time,
// queueing itself again while rows remain.
func (r *Runner) feedRemove(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.RemoveJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	feeds, more, err := tx.RemoveEntries(ctx, j)
	if err != nil {
		return nil, err
	}
	if more {
		if _, err := tx.EnqueueJob(ctx, store.JobFeedRemove, j); err != nil {
			return nil, err
		}
	}
	return r.announce(feeds, store.FeedUpdate{Removed: []uuid.UUID{j.Activity}}, more), nil
}

// feedDemote backfills one page of a demoted feed's followers.
func (r *Runner) feedDemote(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var j store.DemoteJob
	if err := job.Decode(&j); err != nil {
		return nil, err
	}
	next, unflagged, err := tx.Demote(ctx, j)
	if err != nil {
		return nil, err
	}
	if next != nil {
		if _, err := tx.EnqueueJob(ctx, store.JobFeedDemote, next); err != nil {
			return nil, err
		}
	}
	return r.remerged(unflagged), nil
}

// remerged returns the after-commit step that tells the live updates of
// timelines to read again which feeds they merge at read time.
func (r *Runner) remerged(timelines []string) func(context.Context) {
	if r.bus == nil || len(timelines) == 0 {
		return nil
	}
	return func(ctx context.Context) {
		if err := store.PublishFollowsChanged(ctx, r.bus, timelines); err != nil {
			r.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish follow changes", "timelines", len(timelines), "err", err)
		}
	}
}

// announce returns the after-commit step that publishes an update to the
// feeds' topics, and wakes the workers when the job left more jobs.
func (r *Runner) announce(feeds []string, u store.FeedUpdate, wake bool) func(context.Context) {
	return func(ctx context.Context) {
		if wake {
			r.Wake()
			if r.bus != nil {
				Wake(ctx, r.bus)
			}
		}
		if r.bus == nil || len(feeds) == 0 {
			return
		}
		data, err := json.Marshal(u)
		if err != nil {
			r.log.Error("feeds: encode update", "err", err)
			return
		}
		topics := make([]string, len(feeds))
		for i, f := range feeds {
			topics[i] = store.FeedTopic(f)
		}
		// Updates are live notifications: the feed rows are committed, and a
		// client that missed one reads the feed again.
		if err := r.bus.PublishMany(ctx, topics, data); err != nil {
			r.log.Log(ctx, redisguard.LogLevel(err), "feeds: publish update", "feeds", len(feeds), "err", err)
		}
	}
}
