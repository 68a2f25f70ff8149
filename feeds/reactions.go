package feeds

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// AddReaction adds the caller's reaction of kind to an activity it may
// read. Reacting with the same kind again returns the existing reaction
// unchanged.
func (s *Service) AddReaction(ctx context.Context, activity, kind string, data json.RawMessage, lookup Lookup) (*store.Reaction, error) {
	a, me, err := s.readableActivity(ctx, "activity", activity, lookup)
	if err != nil {
		return nil, err
	}
	return s.store.AddReaction(ctx, a.ID, me.UserID, kind, data)
}

// RemoveReaction removes a reaction of the caller's (anyone's, for an
// admin) and reports whether it existed.
func (s *Service) RemoveReaction(ctx context.Context, id string) (bool, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	rid, err := store.ParseID("id", id)
	if err != nil {
		return false, err
	}
	reaction, err := s.store.ReactionByID(ctx, rid)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if reaction.UserID != me.UserID && !me.IsAdmin() {
		return false, auth.Forbidden("only its author (or an admin) may remove reaction %s", id)
	}
	return s.store.RemoveReaction(ctx, rid)
}

// LatestReactionsArgs checks latestReactions' arguments and returns the
// kind asked for ("" for any) and how many (5 when first is left out).
func (s *Service) LatestReactionsArgs(kind *string, first *int) (string, int, error) {
	n := 5
	if first != nil {
		var err error
		if n, err = store.PageSize("first", *first); err != nil {
			return "", 0, err
		}
	}
	if kind == nil {
		return "", n, nil
	}
	if err := store.CheckReactionKind("kind", *kind); err != nil {
		return "", 0, err
	}
	return *kind, n, nil
}
