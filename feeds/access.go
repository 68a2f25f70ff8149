package feeds

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Who may do what. Anyone signed in reads PUBLIC user feeds, followers
// FOLLOWERS ones; timelines, notifications and PRIVATE feeds only their
// owner (and admins). An activity is read by its
// actor, by whoever may read its origin, and by the owners of the feeds it
// was copied to; only its actor (or an admin) changes it. A feed's owner
// (or an admin) posts to it, follows from it and marks it.

// Lookup reads what the feeds product reads for a request through the
// request's loaders, so that what it reads is there for the response
// (resolvers pass one; nil reads from the store).
type Lookup interface {
	// FetchFeeds reads feeds with their counts now, in one batch: nil
	// where there is none.
	FetchFeeds(ctx context.Context, ids []string) ([]*store.Feed, error)
	// LoadFeed reads a feed with its counts, batched with the loads of
	// sibling fields: nil when there is none.
	LoadFeed(ctx context.Context, id string) (*store.Feed, error)
	// FetchActivities reads activities now, in one batch: nil where there
	// is none.
	FetchActivities(ctx context.Context, ids []uuid.UUID) ([]*store.Activity, error)
	// LoadUser reads a user, batched with the loads of sibling fields:
	// nil when there is none.
	LoadUser(ctx context.Context, id string) (*store.User, error)
}

// storeLookup reads from the store, for callers without loaders.
type storeLookup struct{ s *store.Store }

func (l storeLookup) FetchFeeds(ctx context.Context, ids []string) ([]*store.Feed, error) {
	return l.s.FeedsByID(ctx, ids)
}

func (l storeLookup) LoadFeed(ctx context.Context, id string) (*store.Feed, error) {
	return first(l.s.FeedsByID(ctx, []string{id}))
}

func (l storeLookup) FetchActivities(ctx context.Context, ids []uuid.UUID) ([]*store.Activity, error) {
	return l.s.ActivitiesByID(ctx, ids)
}

func (l storeLookup) LoadUser(ctx context.Context, id string) (*store.User, error) {
	return first(l.s.UsersByID(ctx, []string{id}))
}

// first is the one value of a batch of one.
func first[V any](values []V, err error) (V, error) {
	var zero V
	if err != nil || len(values) == 0 {
		return zero, err
	}
	return values[0], nil
}

// lookup is l, or the store when l is nil.
func (s *Service) lookup(l Lookup) Lookup {
	if l == nil {
		return storeLookup{s.store}
	}
	return l
}

// checkFeedRead is FORBIDDEN when id may not read f's content: its owner
// and admins read any feed; others read a PUBLIC user feed, and a
// FOLLOWERS one when their timeline follows it (a pending request is not
// enough). Timelines and notification feeds are PRIVATE. f's visibility
// is read when f has none yet (a parsed user feed id).
func (s *Service) checkFeedRead(ctx context.Context, id auth.Identity, f *store.Feed) error {
	if id.IsAdmin() || f.OwnerID == id.UserID {
		return nil
	}
	vis := f.Visibility
	if vis == "" {
		var err error
		if vis, err = s.store.FeedVisibilityOf(ctx, f.ID); err != nil {
			return err
		}
	}
	switch vis {
	case store.VisibilityPublic:
		return nil
	case store.VisibilityFollowers:
		ok, err := s.store.IsFollowing(ctx, store.GroupTimeline+":"+id.UserID, f.ID)
		if err != nil || ok {
			return err
		}
		return auth.Forbidden("%s is for its followers only: follow it, and read it once %s accepts", f.ID, f.OwnerID)
	}
	return auth.Forbidden("only %s (or an admin) may read %s", f.OwnerID, f.ID)
}

// callerFeed returns the caller and a feed id, parsed.
func callerFeed(ctx context.Context, field, feedID string) (*store.Feed, auth.Identity, error) {
	id, err := auth.Caller(ctx)
	if err != nil {
		return nil, id, err
	}
	f, err := store.ParseFeedID(field, feedID)
	return f, id, err
}

// readableFeed parses a feed id and checks that the caller may read it.
func (s *Service) readableFeed(ctx context.Context, field, feedID string) (*store.Feed, auth.Identity, error) {
	f, id, err := callerFeed(ctx, field, feedID)
	if err == nil {
		err = s.checkFeedRead(ctx, id, f)
	}
	if err != nil {
		return nil, id, err
	}
	return f, id, nil
}

// RequireRead checks that the caller may read f's content: the check
// feed(id) makes, for a feed reached inside another object (a follower, an
// activity's to or origin, a follow's source).
func (s *Service) RequireRead(ctx context.Context, f *store.Feed) error {
	id, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	return s.checkFeedRead(ctx, id, f)
}

// ownFeed parses a feed id and checks that the caller owns it (or is an admin).
func ownFeed(ctx context.Context, field, feedID string) (*store.Feed, auth.Identity, error) {
	f, id, err := callerFeed(ctx, field, feedID)
	if err == nil && !id.IsAdmin() && f.OwnerID != id.UserID {
		err = auth.Forbidden("%s belongs to %s", f.ID, f.OwnerID)
	}
	if err != nil {
		return nil, id, err
	}
	return f, id, nil
}

// checkActivityRead is FORBIDDEN when id may not read an activity: its
// actor, admins, the owners of the feeds it was copied to, and whoever may
// read its origin read it.
func (s *Service) checkActivityRead(ctx context.Context, id auth.Identity, a *store.Activity, lookup Lookup) error {
	if id.IsAdmin() || a.ActorID == id.UserID {
		return nil
	}
	for _, to := range a.To {
		if f, err := store.ParseFeedID("", to); err == nil && f.OwnerID == id.UserID {
			return nil
		}
	}
	origin, err := store.ParseFeedID("", a.FeedID)
	if err != nil {
		return auth.Forbidden("you may not read activity %s", a.ID)
	}
	if origin.Visibility == "" && origin.OwnerID != id.UserID {
		// Through the loader, so origin { } of the answer reads it once.
		feeds, err := s.lookup(lookup).FetchFeeds(ctx, []string{origin.ID})
		if err != nil {
			return err
		}
		if feeds[0] != nil {
			origin = feeds[0]
		}
	}
	if err := s.checkFeedRead(ctx, id, origin); err != nil {
		if errors.Is(err, auth.ErrForbidden) {
			return auth.Forbidden("you may not read activity %s: %v", a.ID, err)
		}
		return err
	}
	return nil
}

// readableActivity loads an activity the caller may read.
func (s *Service) readableActivity(ctx context.Context, field, activityID string, lookup Lookup) (*store.Activity, auth.Identity, error) {
	id, err := auth.Caller(ctx)
	if err != nil {
		return nil, id, err
	}
	aid, err := store.ParseID(field, activityID)
	if err != nil {
		return nil, id, err
	}
	acts, err := s.lookup(lookup).FetchActivities(ctx, []uuid.UUID{aid})
	if err != nil {
		return nil, id, err
	}
	a := acts[0]
	if a == nil {
		return nil, id, store.NotFound("activity", activityID)
	}
	if err := s.checkActivityRead(ctx, id, a, lookup); err != nil {
		return nil, id, err
	}
	return a, id, nil
}

// ownActivity loads an activity the caller posted (or any, for an admin).
func (s *Service) ownActivity(ctx context.Context, activityID string, lookup Lookup) (*store.Activity, error) {
	a, id, err := s.readableActivity(ctx, "id", activityID, lookup)
	if err != nil {
		return nil, err
	}
	if !id.IsAdmin() && a.ActorID != id.UserID {
		return nil, auth.Forbidden("only its actor (or an admin) may change activity %s", activityID)
	}
	return a, nil
}

// followFeeds checks a follow's feeds: the source is the caller's own
// timeline (any timeline, for an admin), the target a user feed.
func followFeeds(ctx context.Context, source, target string) (*store.Feed, *store.Feed, error) {
	src, _, err := ownFeed(ctx, "source", source)
	if err != nil {
		return nil, nil, err
	}
	if src.Group != store.GroupTimeline {
		return nil, nil, store.Invalid("source", "only timeline feeds follow others: use timeline:%s", src.OwnerID)
	}
	dst, err := store.ParseFeedID("target", target)
	if err != nil {
		return nil, nil, err
	}
	if dst.Group != store.GroupUser {
		return nil, nil, store.Invalid("target", "only user feeds can be followed: use user:%s", dst.OwnerID)
	}
	return src, dst, nil
}
