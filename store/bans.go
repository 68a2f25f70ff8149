package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bans: a user banned from a channel, or from the whole app (channel
// ''), until a time or for good. A hard ban refuses its user's messages,
// reactions and joins; a shadow ban lets it write, but its messages are
// visible to it alone. An expired ban reads as none.

// maxBanReason caps a ban's reason, in characters.
const maxBanReason = 500

// banOf is an SQL expression for the ban of user u in channel c: NULL for
// none, false for a hard ban (which wins over a shadow ban), true for a
// shadow ban alone. Reading it rides on a statement the caller runs
// anyway.
func banOf(c, u string) string {
	return `(SELECT bool_and(shadow) FROM bans WHERE user_id = ` + u + ` AND channel_id IN (` + c + `, '')
		AND (until IS NULL OR until > now()))`
}

// Ban is a user's ban from a channel or the app.
type Ban struct {
	UserID string
	// ChannelID is "" for an app-wide ban.
	ChannelID string
	Until     *time.Time
	Shadow    bool
	Reason    *string
	BannedBy  string
}

// BanUser bans a user (again: the new ban replaces the old). The user
// must exist.
func (s *Store) BanUser(ctx context.Context, b Ban) error {
	if b.Reason != nil {
		if err := CheckText("reason", *b.Reason, maxBanReason); err != nil {
			return err
		}
	}
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkUsersExist(ctx, "user", []string{b.UserID}); err != nil {
			return err
		}
		_, err := tx.db.Exec(ctx, `
			INSERT INTO bans (user_id, channel_id, until, shadow, reason, banned_by) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id, channel_id) DO UPDATE SET until = $3, shadow = $4, reason = $5, banned_by = $6, created_at = now()`,
			b.UserID, b.ChannelID, b.Until, b.Shadow, b.Reason, b.BannedBy)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("store: ban user: %w", err)
	}
	return nil
}

// UnbanUser lifts a user's ban from a channel ("" for the app-wide one)
// and returns the ban lifted, nil when there was none in force.
func (s *Store) UnbanUser(ctx context.Context, user, channel string) (*Ban, error) {
	b := Ban{UserID: user, ChannelID: channel}
	err := s.db.QueryRow(ctx, `
		DELETE FROM bans WHERE user_id = $1 AND channel_id = $2
		RETURNING until, shadow, reason, banned_by`, user, channel).
		Scan(&b.Until, &b.Shadow, &b.Reason, &b.BannedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: unban user: %w", err)
	}
	if b.Until != nil && !b.Until.After(time.Now()) {
		return nil, nil // it had expired
	}
	return &b, nil
}
