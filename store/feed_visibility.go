package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// JobFeedVisibility is the job that takes a feed's activities out of its
// followers' timelines when it becomes PRIVATE, and puts them back when it
// stops being PRIVATE.
const JobFeedVisibility = "feed.visibility"

// VisibilityJob is the payload of JobFeedVisibility: Hide when Feed became
// PRIVATE, else it was PRIVATE and no longer is.
type VisibilityJob struct {
	Feed string `json:"feed"`
	Hide bool   `json:"hide"`
}

// SetFeedVisibility sets who reads a user feed.
func (s *Store) SetFeedVisibility(ctx context.Context, feedID string, v FeedVisibility) error {
	_, err := s.db.Exec(ctx, `INSERT INTO feeds (id, visibility) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET visibility = excluded.visibility`, feedID, string(v))
	if err != nil {
		return fmt.Errorf("store: set feed visibility: %w", err)
	}
	return nil
}

// FeedVisibilityOf reads who reads a user feed (PUBLIC when it has no row).
func (s *Store) FeedVisibilityOf(ctx context.Context, feedID string) (FeedVisibility, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT visibility FROM feeds WHERE id = $1`, feedID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return VisibilityPublic, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: feed visibility: %w", err)
	}
	return FeedVisibility(v), nil
}

// LockFeedForPost is LockFollowerCount for a post: it also returns the
// feed's visibility (PUBLIC when it has no row), which decides whether the
// post reaches the followers at all.
func (s *Store) LockFeedForPost(ctx context.Context, feedID string) (followers int, v FeedVisibility, err error) {
	err = s.db.QueryRow(ctx, `SELECT follower_count, visibility FROM feeds WHERE id = $1 FOR SHARE`, feedID).Scan(&followers, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, VisibilityPublic, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("store: lock feed: %w", err)
	}
	return followers, v, nil
}

// SwapFeedVisibility sets who reads a user feed and returns who read it
// before (PUBLIC for a feed without a row). It holds the feed's row until
// the transaction ends.
func (s *Store) SwapFeedVisibility(ctx context.Context, feedID string, v FeedVisibility) (FeedVisibility, error) {
	var old FeedVisibility
	err := s.db.QueryRow(ctx, `SELECT visibility FROM feeds WHERE id = $1 FOR UPDATE`, feedID).Scan(&old)
	if errors.Is(err, pgx.ErrNoRows) {
		old, err = VisibilityPublic, nil
	}
	if err != nil {
		return "", fmt.Errorf("store: feed visibility: %w", err)
	}
	return old, s.SetFeedVisibility(ctx, feedID, v)
}

// HideFromFollowers removes a PRIVATE feed's activities from the timelines
// of its followers (all but its owner's), in one statement, and returns
// the followers that merge it at read time, whose live updates must stop
// listening to it. It does nothing once the feed is no longer PRIVATE.
func (s *Store) HideFromFollowers(ctx context.Context, feedID string) ([]string, error) {
	if v, err := s.FeedVisibilityOf(ctx, feedID); err != nil || v != VisibilityPrivate {
		return nil, err
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM feed_entries WHERE origin = $1 AND feed_id IN (
			SELECT source FROM follows WHERE target = $1 AND source <> 'timeline:' || split_part($1, ':', 2))`, feedID); err != nil {
		return nil, fmt.Errorf("store: hide from followers: %w", err)
	}
	return s.pulledFollowers(ctx, feedID)
}

// ShowToFollowers copies a feed that is no longer PRIVATE back into the
// timelines of its followers it is pushed to, from each follow's boundary,
// as the read-time merge shows it to the others (which it returns). It
// does nothing while the feed is PRIVATE.
func (s *Store) ShowToFollowers(ctx context.Context, feedID string) ([]string, error) {
	if v, err := s.FeedVisibilityOf(ctx, feedID); err != nil || v == VisibilityPrivate {
		return nil, err
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO feed_entries (feed_id, activity_id, origin)
			SELECT f.source, e.activity_id, $1 FROM follows f
			JOIN feed_entries e ON e.feed_id = $1 AND e.activity_id >= f.pull_from
			WHERE f.target = $1 AND NOT f.pulled
			ON CONFLICT DO NOTHING`, feedID); err != nil {
		return nil, fmt.Errorf("store: show to followers: %w", err)
	}
	return s.pulledFollowers(ctx, feedID)
}

// pulledFollowers are the timelines that merge feedID at read time.
func (s *Store) pulledFollowers(ctx context.Context, feedID string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT source FROM follows WHERE target = $1 AND pulled`, feedID)
	if err != nil {
		return nil, fmt.Errorf("store: pulled followers: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: pulled followers: %w", err)
	}
	return out, nil
}
