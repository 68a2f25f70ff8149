package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Mutes: a user mutes another (their messages count no unread and notify
// nothing for the muter) or a channel it is a member of (the channel
// keeps its own unread count but leaves the totals, and notifies
// nothing), until a time or for good. An expired mute reads as none, as
// every reader compares it with now(): expiry is exact without a sweeper.

// channelMuted is an SQL condition: the membership m mutes its channel.
const channelMuted = `(m.muted AND (m.muted_until IS NULL OR m.muted_until > now()))`

// silencedSenders is an SQL query of the users whose messages count for
// user u not: those it blocks, and those it mutes.
func silencedSenders(u string) string {
	return `SELECT blocked_id FROM user_blocks WHERE blocker_id = ` + u + `
		UNION ALL SELECT muted_id FROM user_mutes WHERE muter_id = ` + u + ` AND (until IS NULL OR until > now())`
}

// silencersAmong is an SQL query of the users of the array us who block
// or mute anyone now.
func silencersAmong(us string) string {
	return `SELECT blocker_id AS u FROM user_blocks WHERE blocker_id = ANY(` + us + `)
		UNION SELECT muter_id FROM user_mutes WHERE muter_id = ANY(` + us + `) AND (until IS NULL OR until > now())`
}

// silencedUnread is an SQL expression: how many of membership m's unread
// messages (m joined with its channel c) come from users its member
// blocks or mutes, which count for it not. It looks at messages only when
// the member has unread ones and silences someone.
var silencedUnread = `(CASE WHEN c.last_seq > m.last_read_seq THEN (
	SELECT count(*) FROM messages g WHERE g.user_id IN (` + silencedSenders("m.user_id") + `)
	  AND g.channel_id = m.channel_id AND g.seq > m.last_read_seq
	  AND (g.parent_id IS NULL OR g.show_in_channel) AND g.type <> 'system' AND NOT g.shadowed) ELSE 0 END)`

// unreadOf is an SQL expression: membership m's unread count in channel c.
var unreadOf = `greatest(c.last_seq - m.last_read_seq - ` + silencedUnread + `, 0)`

// checkUntil refuses an end that is not ahead.
func checkUntil(until *time.Time) error {
	if until != nil && !until.After(time.Now()) {
		return Invalid("until", "%s is past: give a time to come, or none for good", until.UTC().Format(time.RFC3339))
	}
	return nil
}

// MuteUser records that muter mutes muted until a time (nil: for good),
// replacing an earlier mute.
func (s *Store) MuteUser(ctx context.Context, muter, muted string, until *time.Time) error {
	if err := checkUntil(until); err != nil {
		return err
	}
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkUsersExist(ctx, "user", []string{muted}); err != nil {
			return err
		}
		_, err := tx.db.Exec(ctx, `INSERT INTO user_mutes (muter_id, muted_id, until) VALUES ($1, $2, $3)
			ON CONFLICT (muter_id, muted_id) DO UPDATE SET until = $3, created_at = now()`, muter, muted, until)
		return err
	})
	if err != nil && !errors.Is(err, ErrInvalid) {
		return fmt.Errorf("store: mute user: %w", err)
	}
	return err
}

// UnmuteUser lifts a mute and reports whether one was in force.
func (s *Store) UnmuteUser(ctx context.Context, muter, muted string) (bool, error) {
	var live bool
	err := s.db.QueryRow(ctx, `DELETE FROM user_mutes WHERE muter_id = $1 AND muted_id = $2 RETURNING until IS NULL OR until > now()`,
		muter, muted).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: unmute user: %w", err)
	}
	return live, nil
}

// Mute is a mute in force: of a user, or of a channel.
type Mute struct {
	UserID    string
	ChannelID string
	Until     *time.Time
	CreatedAt time.Time
}

// MutedUsers lists the mutes in force of a user's, by muted user id.
func (s *Store) MutedUsers(ctx context.Context, muter string) ([]*Mute, error) {
	rows, err := s.db.Query(ctx, `SELECT muted_id, until, created_at FROM user_mutes
		WHERE muter_id = $1 AND (until IS NULL OR until > now()) ORDER BY muted_id`, muter)
	if err != nil {
		return nil, fmt.Errorf("store: muted users: %w", err)
	}
	out := []*Mute{}
	var m Mute
	if _, err := pgx.ForEachRow(rows, []any{&m.UserID, &m.Until, &m.CreatedAt}, func() error { c := m; out = append(out, &c); return nil }); err != nil {
		return nil, fmt.Errorf("store: muted users: %w", err)
	}
	return out, nil
}

// MuteChannel mutes (or, mute false, unmutes) a channel for one of its
// members until a time (nil: for good), and reports whether the member
// had a mute in force before. ErrNotChannelMember when it is none.
func (s *Store) MuteChannel(ctx context.Context, channelID, userID string, mute bool, until *time.Time) (bool, error) {
	if mute {
		if err := checkUntil(until); err != nil {
			return false, err
		}
	}
	var was bool
	err := s.db.QueryRow(ctx, `
		UPDATE channel_members m SET muted = $3, muted_until = CASE WHEN $3 THEN $4::timestamptz END
		FROM (SELECT `+channelMuted+` AS was FROM channel_members m WHERE channel_id = $1 AND user_id = $2) old
		WHERE m.channel_id = $1 AND m.user_id = $2 RETURNING old.was`, channelID, userID, mute, until).Scan(&was)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ErrNotChannelMember
	}
	if err != nil {
		return false, fmt.Errorf("store: mute channel: %w", err)
	}
	return was, nil
}

// Silences says whether a user blocks or mutes anyone, or mutes one of
// its channels, now: its unread counts are then read from PostgreSQL,
// where those exceptions are applied, rather than from Redis counters,
// which count every message.
func (s *Store) Silences(ctx context.Context, user string) (bool, error) {
	var any bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (`+silencedSenders("$1")+`)
		OR EXISTS (SELECT 1 FROM channel_members m WHERE m.user_id = $1 AND `+channelMuted+`)`, user).Scan(&any)
	if err != nil {
		return false, fmt.Errorf("store: silences: %w", err)
	}
	return any, nil
}

// SilencedBy returns which of a channel's members a sender's message must
// not notify: those who mute the channel, or block or mute the sender.
func (s *Store) SilencedBy(ctx context.Context, channelID, sender string) (map[string]bool, error) {
	// Each part starts from an index: the channel's muted members, and the
	// sender's blockers and muters; a big channel's members are not read.
	rows, err := s.db.Query(ctx, `
		SELECT m.user_id FROM channel_members m WHERE m.channel_id = $1 AND m.muted AND `+channelMuted+`
		UNION SELECT b.blocker_id FROM user_blocks b JOIN channel_members m ON m.channel_id = $1 AND m.user_id = b.blocker_id
			WHERE b.blocked_id = $2
		UNION SELECT u.muter_id FROM user_mutes u JOIN channel_members m ON m.channel_id = $1 AND m.user_id = u.muter_id
			WHERE u.muted_id = $2 AND (u.until IS NULL OR u.until > now())`,
		channelID, sender)
	if err != nil {
		return nil, fmt.Errorf("store: silenced members: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: silenced members: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
