package feeds

import (
	"context"
	"fmt"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Private feeds and follow requests. A user feed is PUBLIC, FOLLOWERS or
// PRIVATE (feeds.visibility). Following a FOLLOWERS feed of another user
// writes a request (follow_requests), which copies nothing: fan-out,
// backfill, the read-time pull and the counts read follows alone. Its
// owner's acceptFollow moves it into follows exactly as follow would
// have written it then, backfill included; rejectFollow drops it.

// SetFeedVisibility sets who reads a user feed the caller owns (any, for
// an admin) and returns the feed. Its followers stay followers; requests
// stay pending until answered (or, once the feed is PUBLIC, until their
// sender follows again). Becoming PRIVATE, a durable job takes the feed's
// activities out of its followers' timelines; no longer PRIVATE, it puts
// them back as far as each follow reaches, as the read-time merge of a
// pulled feed shows them either way.
func (s *Service) SetFeedVisibility(ctx context.Context, feed string, visibility store.FeedVisibility, lookup Lookup) (*store.Feed, error) {
	f, _, err := ownFeed(ctx, "feed", feed)
	if err != nil {
		return nil, err
	}
	if f.Group != store.GroupUser {
		return nil, store.Invalid("feed", "only user feeds have a visibility (%s is its owner's alone): use user:%s", f.ID, f.OwnerID)
	}
	switch visibility {
	case store.VisibilityPublic, store.VisibilityFollowers, store.VisibilityPrivate:
	default:
		return nil, store.Invalid("visibility", "must be PUBLIC, FOLLOWERS or PRIVATE, got %q", visibility)
	}
	if u, err := s.lookup(lookup).LoadUser(ctx, f.OwnerID); err != nil || u == nil {
		if err == nil {
			err = store.NotFound("user", f.OwnerID)
		}
		return nil, err
	}
	changed := false
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		old, err := tx.SwapFeedVisibility(ctx, f.ID, visibility)
		changed = old != visibility
		if err != nil || (old == store.VisibilityPrivate) == (visibility == store.VisibilityPrivate) {
			return err
		}
		_, err = tx.EnqueueJob(ctx, store.JobFeedVisibility, store.VisibilityJob{Feed: f.ID, Hide: visibility == store.VisibilityPrivate})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feeds: set feed visibility: %w", err)
	}
	s.wakeWorkers(ctx)
	if changed {
		s.accessChanged(ctx, f.ID, "") // its readers' streams check again
	}
	// The answer reads the feed after the change, not a loaded copy.
	out, err := s.store.FeedsByID(ctx, []string{f.ID})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// requestFeeds checks the feeds of a follow request's answer: target is a
// user feed of the caller's (any, for an admin), source a timeline.
func requestFeeds(ctx context.Context, source, target string) (*store.Feed, *store.Feed, error) {
	dst, _, err := ownFeed(ctx, "target", target)
	if err != nil {
		return nil, nil, err
	}
	if dst.Group != store.GroupUser {
		return nil, nil, store.Invalid("target", "only user feeds are followed: use user:%s", dst.OwnerID)
	}
	src, err := store.ParseFeedID("source", source)
	if err != nil {
		return nil, nil, err
	}
	if src.Group != store.GroupTimeline {
		return nil, nil, store.Invalid("source", "only timeline feeds follow others: use timeline:%s", src.OwnerID)
	}
	return src, dst, nil
}

// AcceptFollow accepts source's request to follow target, a feed of the
// caller's: the follow starts as follow would have started it now, with
// the backfill of the activityCopyLimit the request asked for. Accepting
// a follow already in effect returns it; with neither, NOT_FOUND.
func (s *Service) AcceptFollow(ctx context.Context, source, target string) (*store.Follow, error) {
	src, dst, err := requestFeeds(ctx, source, target)
	if err != nil {
		return nil, err
	}
	var f *store.Follow
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		limit, ok, err := tx.TakeFollowRequest(ctx, src.ID, dst.ID)
		if err != nil {
			return err
		}
		if !ok {
			if f, err = tx.FollowOf(ctx, src.ID, dst.ID); err == nil && f == nil {
				err = store.NotFound("follow request", src.ID+" -> "+dst.ID)
			}
			return err
		}
		f, err = s.startFollow(ctx, tx, src, dst, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("feeds: accept follow: %w", err)
	}
	s.wakeWorkers(ctx)
	s.followsChanged(ctx, append([]string{src.ID}, f.Remerged...))
	return f, nil
}

// RejectFollow drops source's request to follow target, a feed of the
// caller's, and reports whether there was one. A follow in effect is not
// touched.
func (s *Service) RejectFollow(ctx context.Context, source, target string) (bool, error) {
	src, dst, err := requestFeeds(ctx, source, target)
	if err != nil {
		return false, err
	}
	_, ok, err := s.store.TakeFollowRequest(ctx, src.ID, dst.ID)
	return ok, err
}

// FollowRequests returns a page of the timelines asking to follow f, by
// feed id, to f's owner (and admins).
func (s *Service) FollowRequests(ctx context.Context, f *store.Feed, first *int, after *string) (store.Page[store.FeedLink], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[store.FeedLink]{}, err
	}
	if !me.IsAdmin() && me.UserID != f.OwnerID {
		return store.Page[store.FeedLink]{}, auth.Forbidden("only %s (or an admin) sees the requests to follow %s", f.OwnerID, f.ID)
	}
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[store.FeedLink]{}, err
	}
	return s.store.FollowRequests(ctx, f.ID, pos, n)
}

// FollowRelation returns how f's owner and other's owner follow each
// other (their timelines' follows of their user feeds), for either of
// them or an admin.
func (s *Service) FollowRelation(ctx context.Context, f *store.Feed, other string) (*store.FollowRelation, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := store.ParseFeedID("other", other)
	if err != nil {
		return nil, err
	}
	if !me.IsAdmin() && me.UserID != f.OwnerID && me.UserID != o.OwnerID {
		return nil, auth.Forbidden("only %s, %s (or an admin) see how they follow each other", f.OwnerID, o.OwnerID)
	}
	return s.store.FollowRelationOf(ctx, f.OwnerID, o.OwnerID)
}

// FollowSuggestions returns up to first (default 10, at most 100) user
// feeds for the caller to follow: those the feeds it follows follow, most
// followed by them first, leaving out what it follows or asked to follow,
// its own feed and PRIVATE feeds.
func (s *Service) FollowSuggestions(ctx context.Context, first *int) ([]*store.FollowSuggestion, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	n := 10
	if first != nil {
		if n, err = store.PageSize("first", *first); err != nil {
			return nil, err
		}
	}
	return s.store.FollowSuggestions(ctx, me.UserID, n)
}

// visibilityJob takes a feed that became PRIVATE out of its followers'
// timelines, or puts one that stopped being PRIVATE back, and tells the
// live updates of the timelines that merge it at read time to read their
// sources again.
func (s *Service) visibilityJob(ctx context.Context, tx *store.Store, j store.VisibilityJob) (func(context.Context), error) {
	var pulled []string
	var err error
	if j.Hide {
		pulled, err = tx.HideFromFollowers(ctx, j.Feed)
	} else {
		pulled, err = tx.ShowToFollowers(ctx, j.Feed)
	}
	if err != nil {
		return nil, err
	}
	return s.remerged(pulled), nil
}
