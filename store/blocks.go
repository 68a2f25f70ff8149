package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Blocks: a user blocks another for good (until it unblocks). The blocker
// sees none of the blocked user's messages, anywhere, and they count as
// unread for it not; the blocked user cannot send to a channel where the
// two are the only members, nor open a distinct channel with the blocker.
// Mutes (see mutes.go) are the milder kind: counts and notifications only.

// blockedBy is an SQL condition: the sender of message (column sender) is
// blocked by user u.
func blockedBy(u, sender string) string {
	return `EXISTS (SELECT 1 FROM user_blocks WHERE blocker_id = ` + u + ` AND blocked_id = ` + sender + `)`
}

// blockedInPair is an SQL condition, for a send of user u to channel c: c
// has two members, and the other one blocked u. It rides on a statement
// the send runs anyway. CASE looks at the blocks only in a two-member
// channel, and they are read from the sender's blockers (an index range,
// empty for most senders), never from the channel's members.
func blockedInPair(c, u string) string {
	return `CASE WHEN (SELECT member_count FROM channels WHERE id = ` + c + `) = 2 THEN EXISTS (
		SELECT 1 FROM user_blocks b JOIN channel_members o ON o.channel_id = ` + c + ` AND o.user_id = b.blocker_id
		WHERE b.blocked_id = ` + u + `) ELSE false END`
}

// ErrBlocked means a message or a distinct channel found its sender
// blocked by the only other member.
var ErrBlocked = errors.New("store: blocked by the other member")

// BlockUser records that blocker blocks blocked (again: no change). Both
// must exist.
func (s *Store) BlockUser(ctx context.Context, blocker, blocked string) error {
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkUsersExist(ctx, "user", []string{blocked}); err != nil {
			return err
		}
		_, err := tx.db.Exec(ctx, `INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, blocker, blocked)
		return err
	})
	if err != nil && !errors.Is(err, ErrInvalid) {
		return fmt.Errorf("store: block user: %w", err)
	}
	return err
}

// UnblockUser lifts a block and reports whether there was one.
func (s *Store) UnblockUser(ctx context.Context, blocker, blocked string) (bool, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2`, blocker, blocked)
	if err != nil {
		return false, fmt.Errorf("store: unblock user: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// BlockedUsers lists the users a user blocks, by id.
func (s *Store) BlockedUsers(ctx context.Context, blocker string) ([]*User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+prefixed("u.", userColumns)+` FROM user_blocks b JOIN users u ON u.id = b.blocked_id
		WHERE b.blocker_id = $1 ORDER BY u.id`, blocker)
	if err != nil {
		return nil, fmt.Errorf("store: blocked users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("store: blocked users: %w", err)
	}
	return out, nil
}

// BlockedIDs returns the ids of the users a user blocks.
func (s *Store) BlockedIDs(ctx context.Context, blocker string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT blocked_id FROM user_blocks WHERE blocker_id = $1`, blocker)
	if err != nil {
		return nil, fmt.Errorf("store: blocked ids: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: blocked ids: %w", err)
	}
	return out, nil
}
