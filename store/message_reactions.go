package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MessageReaction is one user's reaction of one kind to a message.
type MessageReaction struct {
	MessageID uuid.UUID
	UserID    string
	Kind      string
	CreatedAt time.Time
}

// AddMessageReaction adds a user's reaction to a message (again is a no-op). A
// message has at most MaxReactionKinds kinds: a new kind past that is an
// InputError with nothing written. It returns whether a reaction was added.
func (s *Store) AddMessageReaction(ctx context.Context, message uuid.UUID, userID, kind string) (bool, error) {
	if err := CheckReactionKind("kind", kind); err != nil {
		return false, err
	}
	var added bool
	err := s.InTx(ctx, func(tx *Store) error {
		added = false
		// Lock the message so concurrent new kinds count one at a time.
		var deleted *time.Time
		err := tx.db.QueryRow(ctx, `SELECT deleted_at FROM messages WHERE id = $1 FOR UPDATE`, message).Scan(&deleted)
		if errors.Is(err, pgx.ErrNoRows) {
			return NotFound("message", message.String())
		}
		if err != nil {
			return err
		}
		if deleted != nil {
			return Conflict("message %s is deleted", message)
		}
		var kinds int
		var known bool
		if err := tx.db.QueryRow(ctx, `
			SELECT count(DISTINCT kind), coalesce(bool_or(kind = $2), false) FROM message_reactions WHERE message_id = $1`,
			message, kind).Scan(&kinds, &known); err != nil {
			return err
		}
		if !known && kinds >= MaxReactionKinds {
			return Invalid("kind", "message %s already has %d reaction kinds, the limit", message, MaxReactionKinds)
		}
		tag, err := tx.db.Exec(ctx, `
			INSERT INTO message_reactions (message_id, user_id, kind) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, message, userID, kind)
		if err != nil {
			return err
		}
		added = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return false, err
		}
		return false, fmt.Errorf("store: add reaction: %w", err)
	}
	return added, nil
}

// DeleteMessageReaction removes a user's reaction; it returns whether there was one.
func (s *Store) DeleteMessageReaction(ctx context.Context, message uuid.UUID, userID, kind string) (bool, error) {
	if err := CheckReactionKind("kind", kind); err != nil {
		return false, err
	}
	tag, err := s.db.Exec(ctx, `DELETE FROM message_reactions WHERE message_id = $1 AND user_id = $2 AND kind = $3`, message, userID, kind)
	if err != nil {
		return false, fmt.Errorf("store: delete reaction: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// MessageReactionCounts returns each message's reaction counts, most first.
func (s *Store) MessageReactionCounts(ctx context.Context, ids []uuid.UUID) ([][]ReactionCount, error) {
	rows, err := s.db.Query(ctx, `
		SELECT message_id, kind, count(*) FROM message_reactions WHERE message_id = ANY($1)
		GROUP BY message_id, kind ORDER BY message_id, count(*) DESC, kind`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: reaction counts: %w", err)
	}
	by := map[uuid.UUID][]ReactionCount{}
	var id uuid.UUID
	var rc ReactionCount
	_, err = pgx.ForEachRow(rows, []any{&id, &rc.Kind, &rc.Count}, func() error {
		by[id] = append(by[id], rc)
		return nil
	})
	if err != nil {
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

// OwnMessageReactions returns one user's reactions to each message.
func (s *Store) OwnMessageReactions(ctx context.Context, userID string, ids []uuid.UUID) ([][]*MessageReaction, error) {
	rows, err := s.db.Query(ctx, `
		SELECT message_id, user_id, kind, created_at FROM message_reactions
		WHERE message_id = ANY($1) AND user_id = $2 ORDER BY created_at, kind`, ids, userID)
	return groupMessageReactions(rows, err, ids)
}

// LatestMessageReactions returns the newest n reactions of each message.
func (s *Store) LatestMessageReactions(ctx context.Context, n int, ids []uuid.UUID) ([][]*MessageReaction, error) {
	rows, err := s.db.Query(ctx, `
		SELECT message_id, user_id, kind, created_at FROM (
			SELECT r.*, row_number() OVER (PARTITION BY message_id ORDER BY created_at DESC, user_id, kind) AS n
			FROM message_reactions r WHERE message_id = ANY($1)
		) ranked WHERE n <= $2 ORDER BY message_id, n`, ids, n)
	return groupMessageReactions(rows, err, ids)
}

func groupMessageReactions(rows pgx.Rows, err error, ids []uuid.UUID) ([][]*MessageReaction, error) {
	if err != nil {
		return nil, fmt.Errorf("store: reactions: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*MessageReaction, error) {
		var mr MessageReaction
		err := r.Scan(&mr.MessageID, &mr.UserID, &mr.Kind, &mr.CreatedAt)
		return &mr, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reactions: %w", err)
	}
	return groupBy(ids, found, func(r *MessageReaction) uuid.UUID { return r.MessageID }), nil
}
