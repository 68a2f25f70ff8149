package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Comments. Whoever may read an activity comments on it and reads its
// comments; a comment's author (or an admin) edits it; its author, the
// activity's actor (moderating their own post) or an admin deletes it,
// with its replies. Replies nest up to the Service's comment depth. The
// comment's job notifies the activity's actor (verb comment) and the
// mentioned users (verb mention) in their notification feeds, and
// announces the comment to commentAdded, after its commit.

// DefaultCommentDepth is FEED_COMMENT_DEPTH's default: a comment, a reply
// and a reply to the reply.
const DefaultCommentDepth = 3

// MaxCommentDepth caps FEED_COMMENT_DEPTH.
const MaxCommentDepth = 10

// CommentInput is addComment's arguments past the activity.
type CommentInput struct {
	Text             string
	ParentID         *string
	MentionedUserIDs []string
	Data             json.RawMessage
}

// AddComment comments on an activity the caller may read, or replies to
// one of its comments (parentID). In one transaction it writes the
// comment, counts it on the activity (and the parent) and writes the job
// that notifies and announces it.
func (s *Service) AddComment(ctx context.Context, activity string, in CommentInput, lookup Lookup) (*store.Comment, error) {
	a, me, err := s.readableActivity(ctx, "activity", activity, lookup)
	if err != nil {
		return nil, err
	}
	input := store.CommentInput{Text: in.Text, Mentions: in.MentionedUserIDs, Data: in.Data}
	if in.ParentID != nil {
		p, err := store.ParseID("parentId", *in.ParentID)
		if err != nil {
			return nil, err
		}
		input.ParentID = &p
	}
	if err := store.CheckCommentInput(&input); err != nil {
		return nil, err
	}
	c, err := s.store.AddComment(ctx, a.ID, me.UserID, input, s.commentDepth)
	if err != nil {
		return nil, err
	}
	s.wakeWorkers(ctx)
	// The comment's job announces the new count too, once for both.
	s.activityChanged(ctx, a.ID, commentChangeKey(c.ID))
	return c, nil
}

// UpdateComment replaces the text (and the data, when given) of a comment
// the caller wrote (any, for an admin).
func (s *Service) UpdateComment(ctx context.Context, id string, text *string, data json.RawMessage, lookup Lookup) (*store.Comment, error) {
	c, a, me, err := s.readableComment(ctx, "id", id, lookup)
	if err != nil {
		return nil, err
	}
	if c.UserID != me.UserID && !me.IsAdmin() {
		return nil, auth.Forbidden("only its author (or an admin) may edit comment %s", id)
	}
	if text == nil && data == nil {
		return nil, store.Invalid("text", "give text, data or both")
	}
	if text != nil {
		if err := store.CheckCommentInput(&store.CommentInput{Text: *text}); err != nil {
			return nil, err
		}
	}
	if err := store.CheckData("data", data); err != nil {
		return nil, err
	}
	var out *store.Comment
	err = s.hooks.Write(ctx, s.store, "comment.updated", func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if out, err = tx.UpdateComment(ctx, c.ID, text, data); err != nil {
			return nil, err
		}
		return &webhooks.Event{Type: "comment.updated", Key: "feed:" + a.FeedID, At: out.UpdatedAt,
			Payload: map[string]any{"feed": a.FeedID, "activity": a.ID, "comment": commentHookOf(out), "user": me.UserID}}, nil
	})
	return out, err
}

// DeleteComment deletes a comment and its replies: its author, the
// activity's actor or an admin may. It reports whether the comment
// existed.
func (s *Service) DeleteComment(ctx context.Context, id string, lookup Lookup) (bool, error) {
	c, a, me, err := s.readableComment(ctx, "id", id, lookup)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if c.UserID != me.UserID && a.ActorID != me.UserID && !me.IsAdmin() {
		return false, auth.Forbidden("only its author, the activity's actor (or an admin) may delete comment %s", id)
	}
	err = s.hooks.Write(ctx, s.store, "comment.deleted", func(tx *store.Store) (*webhooks.Event, error) {
		n, err := tx.DeleteComment(ctx, c)
		if err != nil {
			return nil, err
		}
		return &webhooks.Event{Type: "comment.deleted", Key: "feed:" + a.FeedID, At: time.Now(),
			Payload: map[string]any{"feed": a.FeedID, "activity": a.ID, "comment": commentHookOf(c), "user": me.UserID, "deleted": n}}, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err == nil {
		s.activityChanged(ctx, c.ActivityID, "") // its comment count
	}
	return err == nil, err
}

// commentChangeKey is the key that lets a new comment's request and its
// job announce the activity's new comment count once.
func commentChangeKey(id uuid.UUID) string { return "comment:" + id.String() }

// readableComment loads a comment whose activity the caller may read, with
// the activity.
func (s *Service) readableComment(ctx context.Context, field, id string, lookup Lookup) (*store.Comment, *store.Activity, auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, nil, me, err
	}
	cid, err := store.ParseID(field, id)
	if err != nil {
		return nil, nil, me, err
	}
	cs, err := s.store.CommentsByID(ctx, []uuid.UUID{cid})
	if err != nil {
		return nil, nil, me, err
	}
	if cs[0] == nil {
		return nil, nil, me, store.NotFound("comment", id)
	}
	a, _, err := s.readableActivity(ctx, field, cs[0].ActivityID.String(), lookup)
	if errors.Is(err, store.ErrNotFound) {
		err = store.NotFound("comment", id) // its activity is being removed
	}
	if err != nil {
		return nil, nil, me, err
	}
	return cs[0], a, me, nil
}

// Comment returns a comment whose activity the caller may read, or nil
// when there is none.
func (s *Service) Comment(ctx context.Context, id string, lookup Lookup) (*store.Comment, error) {
	c, _, _, err := s.readableComment(ctx, "id", id, lookup)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// Comments returns a page of an activity's comments (parent nil) or of a
// comment's replies, in sort order (NEWEST when empty). The activity or
// comment was read under the caller's access.
func (s *Service) Comments(ctx context.Context, activityID uuid.UUID, parent *uuid.UUID, sort store.CommentSort, first *int, after *string) (store.Page[*store.Comment], error) {
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[*store.Comment]{}, err
	}
	if sort == "" {
		sort = store.CommentsNewest
	}
	p := store.CommentPage{Sort: sort, First: n}
	if pos != "" {
		if p.After, p.Score, err = store.ParseCommentCursor(sort, pos); err != nil {
			return store.Page[*store.Comment]{}, err
		}
	}
	return s.store.Comments(ctx, activityID, parent, p)
}

// CommentsByID reads comments.
func (s *Service) CommentsByID(ctx context.Context, ids []uuid.UUID) ([]*store.Comment, error) {
	return s.store.CommentsByID(ctx, ids)
}

// CommentReactionCounts reads comments' reaction counts by kind.
func (s *Service) CommentReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]store.ReactionCount, error) {
	return s.store.CommentReactionCounts(ctx, ids)
}

// OwnCommentReactions reads the caller's reactions to comments.
func (s *Service) OwnCommentReactions(ctx context.Context, ids []uuid.UUID) ([][]*store.Reaction, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.OwnCommentReactions(ctx, me.UserID, ids)
}

// CommentsTopic is the bus topic of an activity's new comments.
func CommentsTopic(activity uuid.UUID) string { return "comments:" + activity.String() }

// CommentAdded streams the new comments and replies of an activity the
// caller may read, live only (a client that reconnects reads the comments
// again).
func (s *Service) CommentAdded(ctx context.Context, activity string, lookup Lookup) (<-chan *store.Comment, error) {
	a, _, err := s.readableActivity(ctx, "activity", activity, lookup)
	if err != nil {
		return nil, err
	}
	ctx = stream.Context(ctx) // kept by the stream for its life
	sub, err := s.bus.Subscribe(ctx, CommentsTopic(a.ID))
	if err != nil {
		return nil, fmt.Errorf("feeds: comment stream: %w", err)
	}
	out := stream.New[store.Comment](ctx)
	go stream.Relay(ctx, s.log, sub, out, func(data []byte) (*store.Comment, error) {
		c := new(store.Comment)
		return c, json.Unmarshal(data, c)
	}, nil)
	return out.C, nil
}

// FirstComments returns the first page (of first, in sort order) of each
// thread, in one statement: what a page of activities shows of their
// comments, or a page of comments of their replies. The activities were
// read under the caller's access.
func (s *Service) FirstComments(ctx context.Context, threads []store.CommentThread, sort store.CommentSort, first int) ([]store.Page[*store.Comment], error) {
	return s.store.FirstComments(ctx, threads, sort, first)
}
