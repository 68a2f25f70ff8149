package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Reactions to comments live beside reactions to activities, with the
// same rules (one per user and kind) and the same Reaction type; their id
// tells which table holds one. A comment's reactions of every kind also
// count in its reaction_count, which ranks the TOP order.

// JobFeedReaction is the job that follows a new reaction to an activity:
// it notifies the activity's actor once per (user, activity, kind).
const JobFeedReaction = "feed.reaction"

// ReactionJob is the payload of JobFeedReaction.
type ReactionJob struct {
	Reaction uuid.UUID `json:"reaction"`
	Activity uuid.UUID `json:"activity"`
	User     string    `json:"user"`
	Kind     string    `json:"kind"`
}

const commentReactionColumns = `id, activity_id, user_id, kind, data, created_at, comment_id`

func scanCommentReaction(row pgx.Row) (*Reaction, error) {
	var r Reaction
	var comment uuid.UUID
	if err := row.Scan(&r.ID, &r.ActivityID, &r.UserID, &r.Kind, &r.Data, &r.CreatedAt, &comment); err != nil {
		return nil, err
	}
	r.CommentID = &comment
	return &r, nil
}

func scanCommentReactionRow(row pgx.CollectableRow) (*Reaction, error) {
	return scanCommentReaction(row)
}

// AddCommentReaction adds userID's reaction of kind to a comment. Reacting
// with the same kind again returns the existing reaction unchanged.
//
// The comment's row is locked first: a deleteComment in flight (which
// holds it, then deletes the comment's reactions) finishes before, and the
// reaction finds the comment gone, instead of being written beside a
// comment that no longer exists; the lock order (comment, then its
// reactions and counts) is deleteComment's.
func (s *Store) AddCommentReaction(ctx context.Context, c *Comment, userID, kind string, data json.RawMessage) (*Reaction, error) {
	if err := CheckReactionKind("kind", kind); err != nil {
		return nil, err
	}
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	var out *Reaction
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.lockComment(ctx, c.ID); err != nil {
			return err
		}
		r, err := scanCommentReaction(tx.db.QueryRow(ctx, `
			INSERT INTO comment_reactions (id, comment_id, activity_id, user_id, kind, data)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (comment_id, user_id, kind) DO NOTHING
			RETURNING `+commentReactionColumns, NewID(), c.ID, c.ActivityID, userID, kind, data))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = scanCommentReaction(tx.db.QueryRow(ctx, `SELECT `+commentReactionColumns+` FROM comment_reactions
				WHERE comment_id = $1 AND user_id = $2 AND kind = $3`, c.ID, userID, kind))
			if errors.Is(err, pgx.ErrNoRows) {
				return NotFound("comment", c.ID.String())
			}
			return err
		}
		if err != nil {
			return err
		}
		out = r
		if _, err := tx.db.Exec(ctx, `INSERT INTO comment_reaction_counts (comment_id, kind, count) VALUES ($1, $2, 1)
			ON CONFLICT (comment_id, kind) DO UPDATE SET count = comment_reaction_counts.count + 1`, c.ID, kind); err != nil {
			return err
		}
		_, err = tx.db.Exec(ctx, `UPDATE comments SET reaction_count = reaction_count + 1 WHERE id = $1`, c.ID)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("store: add comment reaction: %w", err)
	}
	return out, err
}

// lockComment locks a comment's row for the transaction: NOT_FOUND when
// it is gone (or a deleteComment that held it has committed).
func (s *Store) lockComment(ctx context.Context, id uuid.UUID) error {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM comments WHERE id = $1 FOR UPDATE`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return NotFound("comment", id.String())
	}
	return err
}

// AnyReaction returns a reaction to an activity or to a comment.
func (s *Store) AnyReaction(ctx context.Context, id uuid.UUID) (*Reaction, error) {
	r, err := s.ReactionByID(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return r, err
	}
	r, err = scanCommentReaction(s.db.QueryRow(ctx, `SELECT `+commentReactionColumns+` FROM comment_reactions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("reaction", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: reaction: %w", err)
	}
	return r, nil
}

// RemoveCommentReaction deletes a reaction to a comment and reports
// whether it existed. Like AddCommentReaction, it locks the comment's row
// before it touches the reaction.
func (s *Store) RemoveCommentReaction(ctx context.Context, id uuid.UUID) (bool, error) {
	var removed bool
	err := s.InTx(ctx, func(tx *Store) error {
		var comment uuid.UUID
		err := tx.db.QueryRow(ctx, `SELECT comment_id FROM comment_reactions WHERE id = $1`, id).Scan(&comment)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.lockComment(ctx, comment); errors.Is(err, ErrNotFound) {
			return nil // deleted with its comment meanwhile
		} else if err != nil {
			return err
		}
		var kind string
		err = tx.db.QueryRow(ctx, `DELETE FROM comment_reactions WHERE id = $1 RETURNING comment_id, kind`, id).Scan(&comment, &kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		removed = true
		if _, err := tx.db.Exec(ctx, `UPDATE comment_reaction_counts SET count = greatest(count - 1, 0)
			WHERE comment_id = $1 AND kind = $2`, comment, kind); err != nil {
			return err
		}
		_, err = tx.db.Exec(ctx, `UPDATE comments SET reaction_count = greatest(reaction_count - 1, 0) WHERE id = $1`, comment)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: remove comment reaction: %w", err)
	}
	return removed, nil
}

// UpdateReaction replaces the data of a reaction, to an activity or to a
// comment.
func (s *Store) UpdateReaction(ctx context.Context, r *Reaction, data json.RawMessage) (*Reaction, error) {
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	var out *Reaction
	var err error
	if r.CommentID == nil {
		out, err = scanReaction(s.db.QueryRow(ctx, `UPDATE reactions SET data = $2 WHERE id = $1 RETURNING `+reactionColumns, r.ID, data))
	} else {
		out, err = scanCommentReaction(s.db.QueryRow(ctx, `UPDATE comment_reactions SET data = $2 WHERE id = $1 RETURNING `+commentReactionColumns, r.ID, data))
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("reaction", r.ID.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: update reaction: %w", err)
	}
	return out, nil
}

// CommentReactionCounts returns each comment's reaction counts by kind, in
// the order of ids.
func (s *Store) CommentReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]ReactionCount, error) {
	rows, err := s.db.Query(ctx, `SELECT comment_id, kind, count FROM comment_reaction_counts
		WHERE comment_id = ANY($1) AND count > 0 ORDER BY comment_id, kind`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: comment reaction counts: %w", err)
	}
	defer rows.Close()
	by := map[uuid.UUID][]ReactionCount{}
	for rows.Next() {
		var id uuid.UUID
		var c ReactionCount
		if err := rows.Scan(&id, &c.Kind, &c.Count); err != nil {
			return nil, fmt.Errorf("store: comment reaction counts: %w", err)
		}
		by[id] = append(by[id], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: comment reaction counts: %w", err)
	}
	out := make([][]ReactionCount, len(ids))
	for i, id := range ids {
		if out[i] = by[id]; out[i] == nil {
			out[i] = []ReactionCount{}
		}
	}
	return out, nil
}

// OwnCommentReactions returns userID's reactions to each comment, in the
// order of ids.
func (s *Store) OwnCommentReactions(ctx context.Context, userID string, ids []uuid.UUID) ([][]*Reaction, error) {
	rows, err := s.db.Query(ctx, `SELECT `+commentReactionColumns+` FROM comment_reactions
		WHERE comment_id = ANY($1) AND user_id = $2 ORDER BY id`, ids, userID)
	if err != nil {
		return nil, fmt.Errorf("store: own comment reactions: %w", err)
	}
	reactions, err := pgx.CollectRows(rows, scanCommentReactionRow)
	if err != nil {
		return nil, fmt.Errorf("store: own comment reactions: %w", err)
	}
	return groupBy(ids, reactions, func(r *Reaction) uuid.UUID { return *r.CommentID }), nil
}

// Reactions returns a page of an activity's reactions (of kind, unless it
// is empty), newest first, after the reaction id after (uuid.Nil: the
// first page).
func (s *Store) Reactions(ctx context.Context, activityID uuid.UUID, kind string, after uuid.UUID, first int) (Page[*Reaction], error) {
	if after == uuid.Nil {
		after = maxID
	}
	rows, err := s.db.Query(ctx, `SELECT `+reactionColumns+` FROM reactions
		WHERE activity_id = $1 AND ($2 = '' OR kind = $2) AND id < $3 ORDER BY id DESC LIMIT $4`, activityID, kind, after, first+1)
	if err != nil {
		return Page[*Reaction]{}, fmt.Errorf("store: reactions: %w", err)
	}
	rs, err := pgx.CollectRows(rows, scanReactionRow)
	if err != nil {
		return Page[*Reaction]{}, fmt.Errorf("store: reactions: %w", err)
	}
	return PageOf(rs, first), nil
}

// NotifyOnce records, in the caller's transaction, that key notified
// feed f: false when it did before, and the notification must not be
// written again.
func (s *Store) NotifyOnce(ctx context.Context, f *Feed, key string) (bool, error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO feed_notified (feed_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, f.ID, key)
	if err != nil {
		return false, fmt.Errorf("store: notify once: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
