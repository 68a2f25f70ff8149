package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Follow says that Source (a timeline) shows the activities of Target.
type Follow struct {
	SourceID  string
	TargetID  string
	CreatedAt time.Time
	// Status is ACCEPTED for a follow, PENDING for a request to follow a
	// FOLLOWERS feed.
	Status FollowStatus
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

// AddFollow writes source's follow of target, with its boundary: the
// copyLimit-th newest activity of target, so that the backfill and the
// read-time pull show exactly the same ones. It returns the follow and,
// for a new one, the backfill job that copies target's activities from
// the boundary on. Following again returns the existing follow, no job,
// and writes nothing. It runs in the transaction of the product, which
// counts the follow with it.
func (s *Store) AddFollow(ctx context.Context, source, target *Feed, copyLimit int) (*Follow, *BackfillJob, error) {
	f := &Follow{SourceID: source.ID, TargetID: target.ID, Status: FollowAccepted}
	var pullFrom uuid.UUID
	if copyLimit == 0 {
		pullFrom = NewID()
	} else {
		err := s.db.QueryRow(ctx, `SELECT coalesce((SELECT activity_id FROM feed_entries WHERE feed_id = $1
			ORDER BY activity_id DESC OFFSET $2 LIMIT 1), '00000000-0000-0000-0000-000000000000')`,
			target.ID, copyLimit-1).Scan(&pullFrom)
		if err != nil {
			return nil, nil, err
		}
	}
	err := s.db.QueryRow(ctx, `INSERT INTO follows (source, target, pull_from) VALUES ($1, $2, $3)
		ON CONFLICT (source, target) DO NOTHING RETURNING created_at`, source.ID, target.ID, pullFrom).Scan(&f.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err := s.db.QueryRow(ctx, `SELECT created_at FROM follows WHERE source = $1 AND target = $2`,
			source.ID, target.ID).Scan(&f.CreatedAt)
		return f, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	return f, &BackfillJob{Source: source.ID, Target: target.ID, PullFrom: pullFrom}, nil
}

// MergeIfPulled makes source's follow of target merge it at read time
// from the start when target is merged at read time already.
func (s *Store) MergeIfPulled(ctx context.Context, source, target string) error {
	_, err := s.db.Exec(ctx, `UPDATE follows SET pulled = true WHERE source = $1 AND target = $2
		AND EXISTS (SELECT 1 FROM feeds WHERE id = $2 AND pulled_since IS NOT NULL)`, source, target)
	return err
}

// EndFollow deletes source's follow of target and returns what the
// cleanup of what it brought needs, or nil when there was none.
func (s *Store) EndFollow(ctx context.Context, source, target string) (*UnfollowJob, error) {
	j := &UnfollowJob{Source: source, Target: target}
	err := s.db.QueryRow(ctx, `DELETE FROM follows WHERE source = $1 AND target = $2 RETURNING pulled, pull_from`,
		source, target).Scan(&j.Pulled, &j.PullFrom)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return j, nil
}

// KeepMerged keeps, for a follow that ended with its history kept, what the
// timeline merged of the target at read time: as rows, as if they had been
// pushed.
func (s *Store) KeepMerged(ctx context.Context, j UnfollowJob) error {
	_, err := s.db.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
		SELECT $1, activity_id, origin FROM feed_entries WHERE feed_id = $2 AND activity_id >= $3
		ON CONFLICT DO NOTHING`, j.Source, j.Target, j.PullFrom)
	return err
}

// CountFollow moves source's following count and target's follower count
// by delta, and returns target's follower count after it and since when
// target is merged at read time (nil: it is pushed).
func (s *Store) CountFollow(ctx context.Context, source, target string, delta int) (followers int, pulledSince *uuid.UUID, err error) {
	if _, err := s.db.Exec(ctx, `INSERT INTO feeds (id, following_count) VALUES ($1, greatest($2, 0))
		ON CONFLICT (id) DO UPDATE SET following_count = greatest(feeds.following_count + $2, 0)`, source, delta); err != nil {
		return 0, nil, err
	}
	err = s.db.QueryRow(ctx, `INSERT INTO feeds (id, follower_count) VALUES ($1, greatest($2, 0))
		ON CONFLICT (id) DO UPDATE SET follower_count = greatest(feeds.follower_count + $2, 0)
		RETURNING follower_count, pulled_since`, target, delta).Scan(&followers, &pulledSince)
	if err != nil {
		return 0, nil, err
	}
	return followers, pulledSince, nil
}

// PullFeed starts merging target into its followers' timelines at read
// time: its new activities stop being pushed, and every follow of it is
// flagged; it returns the followers it flagged. It runs in the transaction
// of the follow that took target above the pull threshold, which
// addActivity's FOR SHARE orders against posts.
func (s *Store) PullFeed(ctx context.Context, target string) ([]string, error) {
	if _, err := s.db.Exec(ctx, `UPDATE feeds SET pulled_since = coalesce(pulled_since, $2) WHERE id = $1`, target, NewID()); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `UPDATE follows SET pulled = true WHERE target = $1 AND NOT pulled RETURNING source`, target)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
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
	rows, err := s.reader(ctx).Query(ctx, sql, feedID, after, first+1)
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

// PulledFollows returns the feeds that source follows and that are merged
// at read time (but for PRIVATE ones): a timeline's live updates listen to
// them too.
func (s *Store) PulledFollows(ctx context.Context, source string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT target FROM follows WHERE source = $1 AND pulled
		AND NOT EXISTS (SELECT 1 FROM feeds p WHERE p.id = follows.target AND p.visibility = 'PRIVATE')`, source)
	if err != nil {
		return nil, fmt.Errorf("store: pulled follows: %w", err)
	}
	feeds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: pulled follows: %w", err)
	}
	return feeds, nil
}
