package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/bus"
)

// Follow says that Source (a timeline) shows the activities of Target.
type Follow struct {
	SourceID  string
	TargetID  string
	CreatedAt time.Time
	// Remerged are the timelines that merge the target at read time from
	// this follow on because it took the target above the pull threshold
	// (its followers, this one included).
	Remerged []string
}

// BackfillJob is the payload of the job that copies a followed feed's
// recent activities, from the follow's boundary, into the follower.
type BackfillJob struct {
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	PullFrom uuid.UUID `json:"pull_from"`
}

// UnfollowJob is the payload of the job that removes what an ended follow
// brought into a feed. Pulled is set when the timeline merged the target
// at read time, from PullFrom on: those activities leave its reads too.
type UnfollowJob struct {
	Source   string    `json:"source"`
	Target   string    `json:"target"`
	Pulled   bool      `json:"pulled,omitempty"`
	PullFrom uuid.UUID `json:"pull_from,omitempty"`
}

// DemoteJob is the payload of the job that moves a feed that fell below
// the pull threshold back to fan-out on write: it copies the activities
// posted while it was pulled into its followers' timelines, a page of
// followers (after After) at a time, then stops the read-time merge.
type DemoteJob struct {
	Feed      string    `json:"feed"`
	Since     uuid.UUID `json:"since"`
	After     string    `json:"after"`
	Threshold int       `json:"threshold"`
}

// CheckCopyLimit checks follow's activityCopyLimit.
func CheckCopyLimit(n int) error {
	if n < 0 || n > maxCopyLimit {
		return Invalid("activityCopyLimit", "must be between 0 and %d, got %d", maxCopyLimit, n)
	}
	return nil
}

// FollowFeed makes source follow target and backfills up to copyLimit of
// target's most recent activities through a durable job. Following again
// returns the existing follow and writes nothing.
func (s *Store) FollowFeed(ctx context.Context, source, target *Feed, copyLimit int) (*Follow, error) {
	if err := CheckCopyLimit(copyLimit); err != nil {
		return nil, err
	}
	f := &Follow{SourceID: source.ID, TargetID: target.ID}
	err := s.InTx(ctx, func(tx *Store) error {
		// The boundary: the copyLimit-th newest activity of target, so the
		// backfill and the read-time pull show exactly the same ones.
		var pullFrom uuid.UUID
		if copyLimit == 0 {
			pullFrom = NewID()
		} else {
			err := tx.db.QueryRow(ctx, `SELECT coalesce((SELECT activity_id FROM feed_entries WHERE feed_id = $1
				ORDER BY activity_id DESC OFFSET $2 LIMIT 1), '00000000-0000-0000-0000-000000000000')`,
				target.ID, copyLimit-1).Scan(&pullFrom)
			if err != nil {
				return err
			}
		}
		err := tx.db.QueryRow(ctx, `INSERT INTO follows (source, target, pull_from) VALUES ($1, $2, $3)
			ON CONFLICT (source, target) DO NOTHING RETURNING created_at`, source.ID, target.ID, pullFrom).Scan(&f.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return tx.db.QueryRow(ctx, `SELECT created_at FROM follows WHERE source = $1 AND target = $2`,
				source.ID, target.ID).Scan(&f.CreatedAt)
		}
		if err != nil {
			return err
		}
		// Counting may take target across the threshold, flagging every
		// follow of it, this one included.
		if f.Remerged, err = tx.countFollow(ctx, source.ID, target.ID, 1); err != nil {
			return err
		}
		// A follow of a pulled feed merges it at read time from the start.
		if _, err := tx.db.Exec(ctx, `UPDATE follows SET pulled = true WHERE source = $1 AND target = $2
			AND EXISTS (SELECT 1 FROM feeds WHERE id = $2 AND pulled_since IS NOT NULL)`, source.ID, target.ID); err != nil {
			return err
		}
		if copyLimit == 0 {
			return nil
		}
		_, err = tx.EnqueueJob(ctx, JobFeedBackfill, BackfillJob{Source: source.ID, Target: target.ID, PullFrom: pullFrom})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: follow: %w", err)
	}
	return f, nil
}

// UnfollowFeed ends a follow. Unless keepHistory is set, a durable job
// removes what the follow brought into source. It reports whether source
// followed target.
func (s *Store) UnfollowFeed(ctx context.Context, source, target *Feed, keepHistory bool) (bool, error) {
	var existed bool
	err := s.InTx(ctx, func(tx *Store) error {
		var pulled bool
		var pullFrom uuid.UUID
		err := tx.db.QueryRow(ctx, `DELETE FROM follows WHERE source = $1 AND target = $2 RETURNING pulled, pull_from`,
			source.ID, target.ID).Scan(&pulled, &pullFrom)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		existed = true
		if _, err := tx.countFollow(ctx, source.ID, target.ID, -1); err != nil {
			return err
		}
		if keepHistory {
			if pulled {
				// The timeline merged the target's activities at read time;
				// with the follow gone it keeps them as rows, as if they
				// had been pushed.
				_, err = tx.db.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
					SELECT $1, activity_id, origin FROM feed_entries WHERE feed_id = $2 AND activity_id >= $3
					ON CONFLICT DO NOTHING`, source.ID, target.ID, pullFrom)
			}
			return err
		}
		_, err = tx.EnqueueJob(ctx, JobFeedUnfollow, UnfollowJob{Source: source.ID, Target: target.ID, Pulled: pulled, PullFrom: pullFrom})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: unfollow: %w", err)
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
func (s *Store) countFollow(ctx context.Context, source, target string, delta int) ([]string, error) {
	if _, err := s.db.Exec(ctx, `INSERT INTO feeds (id, following_count) VALUES ($1, greatest($2, 0))
		ON CONFLICT (id) DO UPDATE SET following_count = greatest(feeds.following_count + $2, 0)`, source, delta); err != nil {
		return nil, err
	}
	var followers int
	var pulledSince *uuid.UUID
	err := s.db.QueryRow(ctx, `INSERT INTO feeds (id, follower_count) VALUES ($1, greatest($2, 0))
		ON CONFLICT (id) DO UPDATE SET follower_count = greatest(feeds.follower_count + $2, 0)
		RETURNING follower_count, pulled_since`, target, delta).Scan(&followers, &pulledSince)
	if err != nil {
		return nil, err
	}
	switch {
	case followers > s.pullThreshold && followers-delta <= s.pullThreshold:
		if _, err = s.db.Exec(ctx, `UPDATE feeds SET pulled_since = coalesce(pulled_since, $2) WHERE id = $1`, target, NewID()); err != nil {
			return nil, err
		}
		rows, err := s.db.Query(ctx, `UPDATE follows SET pulled = true WHERE target = $1 AND NOT pulled RETURNING source`, target)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	case followers <= s.pullThreshold && pulledSince != nil && delta < 0:
		_, err = s.EnqueueJob(ctx, JobFeedDemote, DemoteJob{Feed: target, Since: *pulledSince, Threshold: s.pullThreshold})
	}
	return nil, err
}

// FeedLink is one feed in a list of followers or followed feeds.
type FeedLink struct {
	FeedID    string
	CreatedAt time.Time
}

// Followers returns a page of the feeds following feedID, by feed id.
func (s *Store) Followers(ctx context.Context, feedID, after string, first int) (Page[FeedLink], error) {
	return s.feedLinks(ctx, `SELECT source, created_at FROM follows WHERE target = $1 AND source > $2
		ORDER BY source LIMIT $3`, feedID, after, first)
}

// Following returns a page of the feeds feedID follows, by feed id.
func (s *Store) Following(ctx context.Context, feedID, after string, first int) (Page[FeedLink], error) {
	return s.feedLinks(ctx, `SELECT target, created_at FROM follows WHERE source = $1 AND target > $2
		ORDER BY target LIMIT $3`, feedID, after, first)
}

func (s *Store) feedLinks(ctx context.Context, sql, feedID, after string, first int) (Page[FeedLink], error) {
	rows, err := s.db.Query(ctx, sql, feedID, after, first+1)
	if err != nil {
		return Page[FeedLink]{}, fmt.Errorf("store: follows: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FeedLink, error) {
		var l FeedLink
		err := row.Scan(&l.FeedID, &l.CreatedAt)
		return l, err
	})
	if err != nil {
		return Page[FeedLink]{}, fmt.Errorf("store: follows: %w", err)
	}
	return PageOf(links, first), nil
}

// FollowsTopic is the bus topic that tells a timeline's live updates that
// the feeds it merges at read time changed (a follow or unfollow, or a
// followed feed crossing the pull threshold): they read them again.
func FollowsTopic(timelineID string) string { return "follows:" + timelineID }

// PublishFollowsChanged tells the live updates of timelines that the feeds
// they merge at read time may have changed.
func PublishFollowsChanged(ctx context.Context, b *bus.Bus, timelines []string) error {
	if len(timelines) == 0 {
		return nil
	}
	topics := make([]string, len(timelines))
	for i, t := range timelines {
		topics[i] = FollowsTopic(t)
	}
	if err := b.PublishMany(ctx, topics, []byte("{}")); err != nil {
		return fmt.Errorf("store: publish follow changes: %w", err)
	}
	return nil
}

// PulledFollows returns the feeds that source follows and that are merged
// at read time: a timeline's live updates listen to them too.
func (s *Store) PulledFollows(ctx context.Context, source string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT target FROM follows WHERE source = $1 AND pulled`, source)
	if err != nil {
		return nil, fmt.Errorf("store: pulled follows: %w", err)
	}
	feeds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: pulled follows: %w", err)
	}
	return feeds, nil
}
