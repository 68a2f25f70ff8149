package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Pins: a pinned message carries when and by whom, and when the pin
// expires. An expired pin reads as none, so expiry needs no sweeper.

// PinMessage pins a message (again: the pin moves to now), until expires
// (nil: for good). Conflict when the message is deleted.
func (s *Store) PinMessage(ctx context.Context, id uuid.UUID, by string, expires *time.Time) (*Message, error) {
	m, err := scanMessage(s.db.QueryRow(ctx, `
		UPDATE messages SET pinned_at = now(), pinned_by = $2, pin_expires_at = $3
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageColumns, id, by, expires))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Conflict("message %s is deleted", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: pin message: %w", err)
	}
	return m, nil
}

// UnpinMessage removes a message's pin and reports whether it was pinned
// (an expired pin counts as none).
func (s *Store) UnpinMessage(ctx context.Context, id uuid.UUID) (m *Message, was bool, err error) {
	err = s.db.QueryRow(ctx, `
		WITH old AS (SELECT pinned_at IS NOT NULL AND (pin_expires_at IS NULL OR pin_expires_at > now()) AS was
			FROM messages WHERE id = $1 FOR UPDATE)
		UPDATE messages SET pinned_at = NULL, pinned_by = NULL, pin_expires_at = NULL FROM old
		WHERE id = $1 RETURNING old.was`, id).Scan(&was)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, NotFound("message", id.String())
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: unpin message: %w", err)
	}
	m, err = s.Message(ctx, id)
	return m, was, err
}

// PinnedMessages lists a channel's pinned messages, the latest pinned
// first, first+1 rows after the cursor position (PinCursor; "" for the
// start).
func (s *Store) PinnedMessages(ctx context.Context, channelID, viewer string, first int, after string) (Page[*Message], error) {
	afterAt, afterID := int64(1<<62), uuid.Max
	if after != "" {
		at, id, ok := strings.Cut(after, "|")
		parsed, err := uuid.Parse(id)
		if _, serr := fmt.Sscan(at, &afterAt); !ok || err != nil || serr != nil {
			return Page[*Message]{}, Invalid("after", "is not a valid cursor")
		}
		afterID = parsed
	}
	found, err := collectMessages(s.db.Query(ctx, `
		SELECT `+messageColumns+` FROM messages
		WHERE channel_id = $1 AND pinned_at IS NOT NULL AND (pin_expires_at IS NULL OR pin_expires_at > now())
		  AND ((extract(epoch FROM pinned_at) * 1000000)::int8, id) < ($2::int8, $3::uuid) AND `+visibleTo(5)+`
		ORDER BY pinned_at DESC, id DESC LIMIT $4`, channelID, afterAt, afterID, first+1, viewer))
	if err != nil {
		return Page[*Message]{}, fmt.Errorf("store: pinned messages: %w", err)
	}
	return PageOf(found, first), nil
}

// PinCursor is a pinned message's position in PinnedMessages.
func PinCursor(m *Message) string {
	var at int64
	if m.PinnedAt != nil {
		at = m.PinnedAt.UnixMicro()
	}
	return fmt.Sprintf("%d|%s", at, m.ID)
}
