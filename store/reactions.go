package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Reaction is a user's reaction of one kind (like, comment, ...) to an
// activity; a user has at most one of each kind per activity.
type Reaction struct {
	ID         uuid.UUID
	ActivityID uuid.UUID
	UserID     string
	Kind       string
	Data       json.RawMessage
	CreatedAt  time.Time
	// CommentID is the comment reacted to; nil for the activity itself.
	CommentID *uuid.UUID
}

const reactionColumns = `id, activity_id, user_id, kind, data, created_at`

func scanReaction(row pgx.Row) (*Reaction, error) {
	var r Reaction
	if err := row.Scan(&r.ID, &r.ActivityID, &r.UserID, &r.Kind, &r.Data, &r.CreatedAt); err != nil {
		return nil, err
	}
	return &r, nil
}

func scanReactionRow(row pgx.CollectableRow) (*Reaction, error) { return scanReaction(row) }

// AddReaction adds userID's reaction of kind to an activity, with the job
// that notifies the activity's actor (JobFeedReaction) in the same
// transaction. Reacting with the same kind again returns the existing
// reaction unchanged and writes nothing.
func (s *Store) AddReaction(ctx context.Context, activityID uuid.UUID, userID, kind string, data json.RawMessage) (*Reaction, error) {
	if err := CheckReactionKind("kind", kind); err != nil {
		return nil, err
	}
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	var out *Reaction
	err := s.InTx(ctx, func(tx *Store) error {
		r, err := scanReaction(tx.db.QueryRow(ctx, `
			INSERT INTO reactions (id, activity_id, user_id, kind, data)
			SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM activities WHERE id = $2)
			ON CONFLICT (activity_id, user_id, kind) DO NOTHING
			RETURNING `+reactionColumns, NewID(), activityID, userID, kind, data))
		if errors.Is(err, pgx.ErrNoRows) {
			out, err = scanReaction(tx.db.QueryRow(ctx, `SELECT `+reactionColumns+` FROM reactions
				WHERE activity_id = $1 AND user_id = $2 AND kind = $3`, activityID, userID, kind))
			if errors.Is(err, pgx.ErrNoRows) {
				return NotFound("activity", activityID.String())
			}
			return err
		}
		if err != nil {
			return err
		}
		out = r
		if _, err = tx.db.Exec(ctx, `INSERT INTO reaction_counts (activity_id, kind, count) VALUES ($1, $2, 1)
			ON CONFLICT (activity_id, kind) DO UPDATE SET count = reaction_counts.count + 1`, activityID, kind); err != nil {
			return err
		}
		_, err = tx.EnqueueJob(ctx, JobFeedReaction, ReactionJob{Reaction: r.ID, Activity: activityID, User: userID, Kind: kind})
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("store: add reaction: %w", err)
	}
	return out, err
}

// ReactionByID returns one reaction.
func (s *Store) ReactionByID(ctx context.Context, id uuid.UUID) (*Reaction, error) {
	r, err := scanReaction(s.db.QueryRow(ctx, `SELECT `+reactionColumns+` FROM reactions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("reaction", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: reaction: %w", err)
	}
	return r, nil
}

// RemoveReaction deletes a reaction and reports whether it existed.
func (s *Store) RemoveReaction(ctx context.Context, id uuid.UUID) (bool, error) {
	var removed bool
	err := s.InTx(ctx, func(tx *Store) error {
		var activityID uuid.UUID
		var kind string
		err := tx.db.QueryRow(ctx, `DELETE FROM reactions WHERE id = $1 RETURNING activity_id, kind`, id).Scan(&activityID, &kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		removed = true
		_, err = tx.db.Exec(ctx, `UPDATE reaction_counts SET count = greatest(count - 1, 0)
			WHERE activity_id = $1 AND kind = $2`, activityID, kind)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: remove reaction: %w", err)
	}
	return removed, nil
}

// ReactionCounts returns each activity's reaction counts by kind, in the
// order of ids.
func (s *Store) ReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]ReactionCount, error) {
	rows, err := s.db.Query(ctx, `SELECT activity_id, kind, count FROM reaction_counts
		WHERE activity_id = ANY($1) AND count > 0 ORDER BY activity_id, kind`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: reaction counts: %w", err)
	}
	defer rows.Close()
	by := map[uuid.UUID][]ReactionCount{}
	for rows.Next() {
		var id uuid.UUID
		var c ReactionCount
		if err := rows.Scan(&id, &c.Kind, &c.Count); err != nil {
			return nil, fmt.Errorf("store: reaction counts: %w", err)
		}
		by[id] = append(by[id], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reaction counts: %w", err)
	}
	out := make([][]ReactionCount, len(ids))
	for i, id := range ids {
		out[i] = by[id]
		if out[i] == nil {
			out[i] = []ReactionCount{}
		}
	}
	return out, nil
}

// OwnReactions returns userID's reactions to each activity, in the order
// of ids.
func (s *Store) OwnReactions(ctx context.Context, userID string, ids []uuid.UUID) ([][]*Reaction, error) {
	rows, err := s.db.Query(ctx, `SELECT `+reactionColumns+` FROM reactions
		WHERE activity_id = ANY($1) AND user_id = $2 ORDER BY id`, ids, userID)
	if err != nil {
		return nil, fmt.Errorf("store: own reactions: %w", err)
	}
	reactions, err := pgx.CollectRows(rows, scanReactionRow)
	if err != nil {
		return nil, fmt.Errorf("store: own reactions: %w", err)
	}
	return groupReactions(ids, reactions), nil
}

// LatestReactions returns up to first newest reactions to each activity
// (of kind, unless kind is empty), in the order of ids.
func (s *Store) LatestReactions(ctx context.Context, ids []uuid.UUID, kind string, first int) ([][]*Reaction, error) {
	rows, err := s.db.Query(ctx, `SELECT r.id, r.activity_id, r.user_id, r.kind, r.data, r.created_at
		FROM unnest($1::uuid[]) AS a(id) CROSS JOIN LATERAL (
			SELECT `+reactionColumns+` FROM reactions
			WHERE activity_id = a.id AND ($2 = '' OR kind = $2) ORDER BY id DESC LIMIT $3) r
		ORDER BY r.activity_id, r.id DESC`, ids, kind, first)
	if err != nil {
		return nil, fmt.Errorf("store: latest reactions: %w", err)
	}
	reactions, err := pgx.CollectRows(rows, scanReactionRow)
	if err != nil {
		return nil, fmt.Errorf("store: latest reactions: %w", err)
	}
	return groupReactions(ids, reactions), nil
}

func groupReactions(ids []uuid.UUID, reactions []*Reaction) [][]*Reaction {
	return groupBy(ids, reactions, func(r *Reaction) uuid.UUID { return r.ActivityID })
}
