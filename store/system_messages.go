package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SystemMessage records a change to a channel (a join, a removal, a role
// change, a freeze) in its history. It counts as unread for nobody.
type SystemMessage struct {
	// Actor is who made the change: the message's user.
	Actor string
	Text  string
	// Data says what happened, for apps that write their own text.
	Data json.RawMessage
	// PublishAt is when the message's job may publish it, if the change's
	// own request has not (zero: at once).
	PublishAt time.Time
}

// AddSystemMessage adds a system message to a channel, in the transaction
// of the change it records: it takes the channel's next position but no
// sequence number, and leaves the chat.message job that publishes it
// (from sm.PublishAt).
func (s *Store) AddSystemMessage(ctx context.Context, channelID string, sm SystemMessage) (*Message, error) {
	var pos, seq, removals int64
	if err := s.db.QueryRow(ctx, `UPDATE channels SET last_pos = last_pos + 1 WHERE id = $1 RETURNING last_pos, last_seq, member_removals`,
		channelID).Scan(&pos, &seq, &removals); err != nil {
		return nil, fmt.Errorf("store: system message: %w", err)
	}
	m, err := scanMessage(s.db.QueryRow(ctx, `
		INSERT INTO messages (id, channel_id, pos, seq, user_id, text, type, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+messageColumns,
		NewID(), channelID, pos, seq, sm.Actor, sm.Text, MessageSystem, sm.Data))
	if err != nil {
		return nil, fmt.Errorf("store: system message: %w", err)
	}
	if _, err := s.EnqueueJobAt(ctx, ChatMessageKind, ChatMessageJob{MessageID: m.ID}, sm.PublishAt); err != nil {
		return nil, err
	}
	m.Sent, m.SentRemovals = true, removals
	m.Reactions = []ReactionCount{}
	return m, nil
}
