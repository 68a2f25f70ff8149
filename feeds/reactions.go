package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// AddReaction adds the caller's reaction of kind to an activity it may
// read, or, with comment, to that comment of the activity. Reacting with
// the same kind again returns the existing reaction unchanged. A new
// reaction to an activity notifies its actor (see reactionJob).
func (s *Service) AddReaction(ctx context.Context, activity, kind string, data json.RawMessage, comment *string, lookup Lookup) (*store.Reaction, error) {
	a, me, err := s.readableActivity(ctx, "activity", activity, lookup)
	if err != nil {
		return nil, err
	}
	if comment == nil {
		r, err := s.store.AddReaction(ctx, a.ID, me.UserID, kind, data)
		if err == nil {
			s.wakeWorkers(ctx)
			// The reaction's job announces it too, once for both.
			s.activityChanged(ctx, a.ID, reactionChangeKey(r.ID))
		}
		return r, err
	}
	cid, err := store.ParseID("comment", *comment)
	if err != nil {
		return nil, err
	}
	cs, err := s.store.CommentsByID(ctx, []uuid.UUID{cid})
	if err != nil {
		return nil, err
	}
	if cs[0] == nil || cs[0].ActivityID != a.ID {
		return nil, store.NotFound("comment", *comment)
	}
	return s.store.AddCommentReaction(ctx, cs[0], me.UserID, kind, data)
}

// UpdateReaction replaces the data of a reaction of the caller's (anyone's,
// for an admin), to an activity or a comment.
func (s *Service) UpdateReaction(ctx context.Context, id string, data json.RawMessage) (*store.Reaction, error) {
	r, err := s.ownReaction(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateReaction(ctx, r, data)
	if err == nil && r.CommentID == nil {
		s.activityChanged(ctx, r.ActivityID, "")
	}
	return out, err
}

// reactionChangeKey is the key that lets a new reaction's request and its
// job announce the activity's change once.
func reactionChangeKey(id uuid.UUID) string { return "reaction:" + id.String() }

// ownReaction loads a reaction of the caller's (any, for an admin).
func (s *Service) ownReaction(ctx context.Context, id string) (*store.Reaction, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	rid, err := store.ParseID("id", id)
	if err != nil {
		return nil, err
	}
	r, err := s.store.AnyReaction(ctx, rid)
	if err != nil {
		return nil, err
	}
	if r.UserID != me.UserID && !me.IsAdmin() {
		return nil, auth.Forbidden("only its author (or an admin) may change reaction %s", id)
	}
	return r, nil
}

// Reactions returns a page of an activity's reactions (of kind, unless it
// is nil), newest first. The activity was read under the caller's access.
func (s *Service) Reactions(ctx context.Context, activityID uuid.UUID, kind *string, first *int, after *string) (store.Page[*store.Reaction], error) {
	k := ""
	if kind != nil {
		if err := store.CheckReactionKind("kind", *kind); err != nil {
			return store.Page[*store.Reaction]{}, err
		}
		k = *kind
	}
	n, pos, err := idAfter(first, after)
	if err != nil {
		return store.Page[*store.Reaction]{}, err
	}
	return s.store.Reactions(ctx, activityID, k, pos, n)
}

// RemoveReaction removes a reaction of the caller's (anyone's, for an
// admin), to an activity or a comment, and reports whether it existed.
func (s *Service) RemoveReaction(ctx context.Context, id string) (bool, error) {
	r, err := s.ownReaction(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.CommentID != nil {
		return s.store.RemoveCommentReaction(ctx, r.ID)
	}
	var removed bool
	err = s.hooks.Write(ctx, s.store, "reaction.deleted", func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if removed, err = tx.RemoveReaction(ctx, r.ID); err != nil || !removed || !s.hooks.Wants("reaction.deleted") {
			return nil, err // (not wanted: Write ran this without a transaction, read nothing more)
		}
		acts, err := tx.ActivitiesByID(ctx, []uuid.UUID{r.ActivityID})
		if err != nil || acts[0] == nil {
			return nil, err
		}
		return &webhooks.Event{Type: "reaction.deleted", Key: "feed:" + acts[0].FeedID, At: time.Now(),
			Payload: map[string]any{"feed": acts[0].FeedID, "activity": r.ActivityID,
				"reaction": map[string]any{"id": r.ID, "kind": r.Kind, "user": r.UserID}}}, nil
	})
	if removed {
		s.activityChanged(ctx, r.ActivityID, "")
	}
	return removed, err
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
