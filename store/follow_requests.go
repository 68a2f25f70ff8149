package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// FeedVisibility says who reads a user feed.
type FeedVisibility string

// Feed visibilities. Timelines and notification feeds are PRIVATE: only
// their owner (and admins) read them.
const (
	// VisibilityPublic: anyone signed in reads the feed.
	VisibilityPublic FeedVisibility = "PUBLIC"
	// VisibilityFollowers: its owner and the timelines that follow it;
	// following it is a request its owner accepts or rejects.
	VisibilityFollowers FeedVisibility = "FOLLOWERS"
	// VisibilityPrivate: its owner alone; no one may follow it.
	VisibilityPrivate FeedVisibility = "PRIVATE"
)

// FollowStatus says whether a follow is in effect or waits for the
// followed feed's owner.
type FollowStatus string

// Follow statuses.
const (
	// FollowPending is a request to follow a FOLLOWERS feed: it copies
	// nothing until accepted.
	FollowPending FollowStatus = "PENDING"
	// FollowAccepted is a follow in effect.
	FollowAccepted FollowStatus = "ACCEPTED"
)

// FollowRelation is how two users' feeds are linked: each side's follow of
// the other (its timeline's follow of the other's user feed), nil when
// there is none.
type FollowRelation struct {
	Following  *FollowStatus
	FollowedBy *FollowStatus
}

// FollowSuggestion is a feed the feeds one follows follow, with how many of
// them do.
type FollowSuggestion struct {
	FeedID      string
	MutualCount int
}

// IsFollowing reports whether source follows target (an accepted follow).
func (s *Store) IsFollowing(ctx context.Context, source, target string) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM follows WHERE source = $1 AND target = $2)`,
		source, target).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("store: is following: %w", err)
	}
	return ok, nil
}

// FollowOf returns source's follow of target, or nil when there is none.
func (s *Store) FollowOf(ctx context.Context, source, target string) (*Follow, error) {
	f := &Follow{SourceID: source, TargetID: target, Status: FollowAccepted}
	err := s.db.QueryRow(ctx, `SELECT created_at FROM follows WHERE source = $1 AND target = $2`,
		source, target).Scan(&f.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: follow: %w", err)
	}
	return f, nil
}

// RequestFollow records source's request to follow target, to copy up to
// copyLimit of target's activities once accepted. Asking again returns the
// first request unchanged.
func (s *Store) RequestFollow(ctx context.Context, source, target string, copyLimit int) (*Follow, error) {
	f := &Follow{SourceID: source, TargetID: target, Status: FollowPending}
	err := s.db.QueryRow(ctx, `INSERT INTO follow_requests (source, target, copy_limit) VALUES ($1, $2, $3)
		ON CONFLICT (source, target) DO NOTHING RETURNING created_at`, source, target, copyLimit).Scan(&f.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.db.QueryRow(ctx, `SELECT created_at FROM follow_requests WHERE source = $1 AND target = $2`,
			source, target).Scan(&f.CreatedAt)
	}
	if err != nil {
		return nil, fmt.Errorf("store: request follow: %w", err)
	}
	return f, nil
}

// TakeFollowRequest deletes source's request to follow target and returns
// the copy limit it asked for; ok is false when there was none. Of
// concurrent takes of one request, one gets it.
func (s *Store) TakeFollowRequest(ctx context.Context, source, target string) (copyLimit int, ok bool, err error) {
	err = s.db.QueryRow(ctx, `DELETE FROM follow_requests WHERE source = $1 AND target = $2 RETURNING copy_limit`,
		source, target).Scan(&copyLimit)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: take follow request: %w", err)
	}
	return copyLimit, true, nil
}

// FollowRequests returns a page of the feeds asking to follow feedID, by
// feed id.
func (s *Store) FollowRequests(ctx context.Context, feedID, after string, first int) (Page[FeedLink], error) {
	return s.feedLinks(ctx, `SELECT source, created_at FROM follow_requests WHERE target = $1 AND source > $2
		ORDER BY source LIMIT $3`, feedID, after, first)
}

// FollowRelationOf returns how users a and b are linked: a's timeline's
// follow of b's user feed, and b's of a's, accepted or requested.
func (s *Store) FollowRelationOf(ctx context.Context, a, b string) (*FollowRelation, error) {
	var following, followedBy *string
	// status is the follow of $source's timeline of $target's user feed.
	status := func(source, target string) string {
		return `SELECT CASE WHEN EXISTS (SELECT 1 FROM follows WHERE source = ` + source + ` AND target = ` + target + `) THEN 'ACCEPTED'
			WHEN EXISTS (SELECT 1 FROM follow_requests WHERE source = ` + source + ` AND target = ` + target + `) THEN 'PENDING' END`
	}
	err := s.db.QueryRow(ctx, `SELECT (`+status("$1", "$2")+`), (`+status("$3", "$4")+`)`,
		GroupTimeline+":"+a, GroupUser+":"+b, GroupTimeline+":"+b, GroupUser+":"+a).Scan(&following, &followedBy)
	if err != nil {
		return nil, fmt.Errorf("store: follow relation: %w", err)
	}
	rel := &FollowRelation{}
	if following != nil {
		st := FollowStatus(*following)
		rel.Following = &st
	}
	if followedBy != nil {
		st := FollowStatus(*followedBy)
		rel.FollowedBy = &st
	}
	return rel, nil
}

// FollowSuggestions returns up to first user feeds that the feeds user
// follows follow, which user neither follows nor asked to follow, and
// which are not private or user's own: those most of them follow first,
// then by feed id. It reads the follows of each feed user follows.
func (s *Store) FollowSuggestions(ctx context.Context, user string, first int) ([]*FollowSuggestion, error) {
	rows, err := s.db.Query(ctx, `
		SELECT f2.target, count(*) FROM follows f1
		JOIN follows f2 ON f2.source = 'timeline:' || split_part(f1.target, ':', 2)
		WHERE f1.source = $1 AND f2.target <> $2
		  AND NOT EXISTS (SELECT 1 FROM follows x WHERE x.source = $1 AND x.target = f2.target)
		  AND NOT EXISTS (SELECT 1 FROM follow_requests r WHERE r.source = $1 AND r.target = f2.target)
		  AND NOT EXISTS (SELECT 1 FROM feeds v WHERE v.id = f2.target AND v.visibility = 'PRIVATE')
		GROUP BY f2.target ORDER BY count(*) DESC, f2.target LIMIT $3`,
		GroupTimeline+":"+user, GroupUser+":"+user, first)
	if err != nil {
		return nil, fmt.Errorf("store: follow suggestions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*FollowSuggestion, error) {
		f := &FollowSuggestion{}
		err := row.Scan(&f.FeedID, &f.MutualCount)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: follow suggestions: %w", err)
	}
	return out, nil
}
