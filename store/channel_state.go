package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// A channel's state for one member (read position moved back, hidden)
// and for all (deleted, truncated).

// countsExpr is the SQL condition of a message g that has a sequence
// number of its own: it counts as unread.
const countsExpr = `(g.parent_id IS NULL OR g.show_in_channel) AND g.type <> 'system' AND NOT g.shadowed`

// MarkUnread moves a member's read position to just before the message
// at pos with sequence number seq (one that counts), backwards or not,
// and returns it. ErrNotChannelMember when the user is none.
func (s *Store) MarkUnread(ctx context.Context, channelID, userID string, pos, seq int64) (*ReadPosition, error) {
	p := &ReadPosition{ChannelID: channelID, UserID: userID}
	err := s.db.QueryRow(ctx, `
		UPDATE channel_members m SET last_read_seq = $4 - 1, last_read_at = now(),
			last_read_message_id = (SELECT g.id FROM messages g WHERE g.channel_id = $1 AND g.pos < $3 AND `+countsExpr+`
				ORDER BY g.pos DESC LIMIT 1)
		FROM channels c WHERE m.channel_id = $1 AND m.user_id = $2 AND c.id = m.channel_id
		RETURNING m.last_read_seq, m.last_read_at, m.last_read_message_id, `+unreadOf+`, c.member_count`,
		channelID, userID, pos, seq).Scan(&p.Seq, &p.At, &p.MessageID, &p.Unread, &p.Members)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotChannelMember
	}
	if err != nil {
		return nil, fmt.Errorf("store: mark unread: %w", err)
	}
	return p, nil
}

// HideChannel hides (hide false: shows) a channel from a member's list
// until a message newer than now, and reports whether it changed
// anything. ErrNotChannelMember when the user is none.
func (s *Store) HideChannel(ctx context.Context, channelID, userID string, hide bool) (bool, error) {
	var was bool
	err := s.db.QueryRow(ctx, `
		UPDATE channel_members m SET hidden_at = CASE WHEN $3 THEN now() END
		FROM (SELECT hidden_at IS NOT NULL AS was FROM channel_members WHERE channel_id = $1 AND user_id = $2) old
		WHERE m.channel_id = $1 AND m.user_id = $2 RETURNING old.was`, channelID, userID, hide).Scan(&was)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrNotChannelMember
	}
	if err != nil {
		return false, fmt.Errorf("store: hide channel: %w", err)
	}
	return hide || was, nil
}

// channelHidden is an SQL condition: membership m hides its channel c,
// and no message came since.
const channelHidden = `(m.hidden_at IS NOT NULL AND coalesce(c.last_message_at, c.created_at) <= m.hidden_at)`

// DeleteChannel deletes a channel (softly: its rows stay, but it reads as
// none) for a user, closes the open flags of its messages, and returns its
// members. NotFound when there is none.
func (s *Store) DeleteChannel(ctx context.Context, channelID, by string) ([]string, error) {
	var members []string
	err := s.InTx(ctx, func(tx *Store) error {
		tag, err := tx.db.Exec(ctx, `UPDATE channels SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL`, channelID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return NotFound("channel", channelID)
		}
		if err := tx.closeChannelFlags(ctx, channelID, by); err != nil {
			return err
		}
		members, err = tx.ChannelMemberIDs(ctx, channelID)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: delete channel: %w", err)
	}
	return members, nil
}

// TruncateChannel deletes every message of a channel (their reactions go
// with them; the open flags of them are closed as acted on, by the user
// truncating) and marks it read for every member, in one transaction, and
// returns the channel and its members.
func (s *Store) TruncateChannel(ctx context.Context, channelID, by string) (*Channel, []string, error) {
	var ch *Channel
	var members []string
	err := s.InTx(ctx, func(tx *Store) error {
		// The channel row first, as a send locks it: no message slips in
		// between the delete and the read positions.
		c, err := scanChannel(tx.db.QueryRow(ctx, `
			UPDATE channels SET last_message_id = NULL, updated_at = now() WHERE id = $1 AND deleted_at IS NULL
			RETURNING `+channelColumns, channelID))
		if errors.Is(err, pgx.ErrNoRows) {
			return NotFound("channel", channelID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.db.Exec(ctx, `DELETE FROM messages WHERE channel_id = $1`, channelID); err != nil {
			return err
		}
		if err := tx.closeChannelFlags(ctx, channelID, by); err != nil {
			return err
		}
		rows, err := tx.db.Query(ctx, `
			UPDATE channel_members SET last_read_seq = $2, last_read_at = now(), last_read_message_id = NULL
			WHERE channel_id = $1 RETURNING user_id`, channelID, c.LastSeq)
		if err != nil {
			return err
		}
		if members, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		ch = c
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("store: truncate channel: %w", err)
	}
	return ch, members, nil
}
