package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Member is a user in a channel. UnreadCount is computed from sequence
// numbers in PostgreSQL: channel.last_seq - last_read_seq, less the unread
// messages of users the member blocks or mutes.
type Member struct {
	ChannelID         string
	UserID            string
	Role              string
	JoinedAt          time.Time
	LastReadSeq       int64
	LastRead          *time.Time
	LastReadMessageID *uuid.UUID
	UnreadCount       int
	// Status is MEMBER, or INVITED for an invitation (then JoinedAt is
	// when the user was invited, by InvitedByID).
	Status      MemberStatus
	InvitedByID *string
	// Muted: the member mutes the channel, until MutedUntil (nil: for good).
	Muted      bool
	MutedUntil *time.Time
	// Banned: a hard ban from the channel or the app is in force (a
	// shadow ban does not show).
	Banned bool
}

var memberColumns = `m.channel_id, m.user_id, m.role, m.joined_at, m.last_read_seq, m.last_read_at, m.last_read_message_id,
	` + unreadOf + `, ` + channelMuted + `, m.muted_until, coalesce(NOT ` + banOf("m.channel_id", "m.user_id") + `, false)`

func scanMember(row pgx.Row) (*Member, error) {
	m := Member{Status: StatusMember}
	err := row.Scan(&m.ChannelID, &m.UserID, &m.Role, &m.JoinedAt, &m.LastReadSeq, &m.LastRead, &m.LastReadMessageID, &m.UnreadCount, &m.Muted, &m.MutedUntil, &m.Banned)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// MemberChange is the result of adding or removing members.
type MemberChange struct {
	Channel *Channel
	// Users are the users actually added or removed.
	Users []string
	// Before is the channel's member count before the change (after it:
	// Channel.MemberCount).
	Before int
	// Withdrawn are the users, of those a removal named, whose pending
	// invitation it withdrew.
	Withdrawn []string
}

// AddMembers adds users to a channel as members, and settles their
// invitations; users already in it are left alone. A new member has read
// everything sent before it joined.
func (s *Store) AddMembers(ctx context.Context, channelID string, users []string) (*MemberChange, error) {
	if len(users) == 0 {
		return nil, Invalid("userIds", "give at least one user")
	}
	if err := checkUserList("userIds", users); err != nil {
		return nil, err
	}
	var out *MemberChange
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkUsersExist(ctx, "userIds", users); err != nil {
			return err
		}
		rows, err := tx.db.Query(ctx, `
			INSERT INTO channel_members (channel_id, user_id, role, last_read_seq, last_read_at, last_read_message_id)
			SELECT c.id, u, 'member', c.last_seq, now(), c.last_message_id
			FROM channels c, unnest($2::text[]) AS u WHERE c.id = $1
			ON CONFLICT (channel_id, user_id) DO NOTHING
			RETURNING user_id`, channelID, users)
		if err != nil {
			return err
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := tx.deleteInvites(ctx, channelID, users); err != nil {
			return err
		}
		out, err = tx.bumpMemberCount(ctx, channelID, len(added))
		if err != nil || len(added) == 0 {
			return err
		}
		out.Users = added
		// The insert read the channel before this transaction locked its
		// row; messages that committed in between came before the join,
		// so the new members have read them too.
		_, err = tx.db.Exec(ctx, `UPDATE channel_members SET last_read_seq = $3, last_read_message_id = $4
			WHERE channel_id = $1 AND user_id = ANY($2) AND last_read_seq < $3`,
			channelID, added, out.Channel.LastSeq, out.Channel.LastMessageID)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: add members: %w", err)
	}
	return out, nil
}

// RemoveMembers removes users from a channel and withdraws their
// invitations to it.
func (s *Store) RemoveMembers(ctx context.Context, channelID string, users []string) (*MemberChange, error) {
	if len(users) == 0 {
		return nil, Invalid("userIds", "give at least one user")
	}
	if err := checkUserList("userIds", users); err != nil {
		return nil, err
	}
	var out *MemberChange
	err := s.InTx(ctx, func(tx *Store) error {
		rows, err := tx.db.Query(ctx, `DELETE FROM channel_members WHERE channel_id = $1 AND user_id = ANY($2) RETURNING user_id`, channelID, users)
		if err != nil {
			return err
		}
		removed, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		out, err = tx.bumpMemberCount(ctx, channelID, -len(removed))
		if err != nil {
			return err
		}
		out.Users = removed
		out.Withdrawn, err = tx.deleteInvites(ctx, channelID, users)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: remove members: %w", err)
	}
	return out, nil
}

func (s *Store) bumpMemberCount(ctx context.Context, channelID string, delta int) (*MemberChange, error) {
	c, err := scanChannel(s.db.QueryRow(ctx, `
		UPDATE channels SET member_count = member_count + $2, updated_at = CASE WHEN $2 <> 0 THEN now() ELSE updated_at END,
			member_removals = member_removals + CASE WHEN $2 < 0 THEN 1 ELSE 0 END
		WHERE id = $1 RETURNING `+channelColumns, channelID, delta))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("channel", channelID)
	}
	if err != nil {
		return nil, err
	}
	return &MemberChange{Channel: c, Before: c.MemberCount - delta}, nil
}

// ChannelMemberIDs lists every member of a channel.
func (s *Store) ChannelMemberIDs(ctx context.Context, channelID string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT user_id FROM channel_members WHERE channel_id = $1`, channelID)
	if err != nil {
		return nil, fmt.Errorf("store: channel members: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Members lists a channel's members in join order, first+1 rows after the
// cursor position ("" for the start).
func (s *Store) Members(ctx context.Context, channelID string, first int, after string) (Page[*Member], error) {
	afterJoined, afterUser, err := parseMemberCursor(after)
	if err != nil {
		return Page[*Member]{}, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT `+memberColumns+` FROM channel_members m JOIN channels c ON c.id = m.channel_id
		WHERE m.channel_id = $1 AND ($2::timestamptz IS NULL OR (m.joined_at, m.user_id) > ($2, $3))
		ORDER BY m.joined_at, m.user_id LIMIT $4`, channelID, nilTime(afterJoined), afterUser, first+1)
	if err != nil {
		return Page[*Member]{}, fmt.Errorf("store: members: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Member, error) { return scanMember(r) })
	if err != nil {
		return Page[*Member]{}, fmt.Errorf("store: members: %w", err)
	}
	return PageOf(found, first), nil
}

func nilTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// MemberCursor is a member's position in Members.
func MemberCursor(m *Member) string { return fmt.Sprintf("%d|%s", m.JoinedAt.UnixMicro(), m.UserID) }

// MembershipsOf returns one user's membership in each channel, in order,
// nil where the user is not a member.
func (s *Store) MembershipsOf(ctx context.Context, userID string, channelIDs []string) ([]*Member, error) {
	rows, err := s.db.Query(ctx, `
		SELECT `+memberColumns+` FROM channel_members m JOIN channels c ON c.id = m.channel_id
		WHERE m.user_id = $1 AND m.channel_id = ANY($2)`, userID, channelIDs)
	if err != nil {
		return nil, fmt.Errorf("store: memberships: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("store: memberships: %w", err)
	}
	byID := make(map[string]*Member, len(found))
	for _, m := range found {
		byID[m.ChannelID] = m
	}
	out := make([]*Member, len(channelIDs))
	for i, id := range channelIDs {
		out[i] = byID[id]
	}
	return out, nil
}

// ReadPosition is where a member has read up to after MarkRead.
type ReadPosition struct {
	ChannelID string
	UserID    string
	Seq       int64
	// Unread is the member's unread count in PostgreSQL after the change.
	Unread int
	At     time.Time
	// MessageID is the message read up to, nil when the channel is empty.
	MessageID *uuid.UUID
	// Members is the channel's member count.
	Members int
	// Big is true for channels above the push limit (the chat product
	// says which are).
	Big bool
	// Gen, when set, is the generation of the user's Redis counters read
	// before Seq was read from PostgreSQL: the position is recorded only
	// if they are still of it (a markUnread since may have moved the
	// position back, and discarded them).
	Gen string
}

// ReadSeq returns a member's read position in a channel (its last read
// sequence number). ErrNotChannelMember when the user is none.
func (s *Store) ReadSeq(ctx context.Context, channelID, userID string) (int64, error) {
	var seq int64
	err := s.db.QueryRow(ctx, `SELECT last_read_seq FROM channel_members WHERE channel_id = $1 AND user_id = $2`, channelID, userID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotChannelMember
	}
	if err != nil {
		return 0, fmt.Errorf("store: read position: %w", err)
	}
	return seq, nil
}

// MarkRead moves a member's read position to a message of the channel
// (nil: the newest). The position never moves backwards. NotFound when the
// user is not a member or the message is not in the channel.
func (s *Store) MarkRead(ctx context.Context, channelID, userID string, message *uuid.UUID) (*ReadPosition, error) {
	p := &ReadPosition{ChannelID: channelID, UserID: userID}
	var members int
	err := s.db.QueryRow(ctx, `
		WITH target AS (
			SELECT coalesce(msg.seq, c.last_seq) AS seq, coalesce(msg.id, c.last_message_id) AS id
			FROM channels c LEFT JOIN messages msg ON msg.id = $3 AND msg.channel_id = c.id
			WHERE c.id = $1 AND ($3::uuid IS NULL OR msg.id IS NOT NULL)
		)
		UPDATE channel_members m SET
			last_read_message_id = CASE WHEN t.seq >= m.last_read_seq THEN t.id ELSE m.last_read_message_id END,
			last_read_at = now(),
			last_read_seq = greatest(m.last_read_seq, t.seq)
		FROM target t, channels c
		WHERE m.channel_id = $1 AND m.user_id = $2 AND c.id = m.channel_id
		RETURNING m.last_read_seq, m.last_read_at, m.last_read_message_id, `+unreadOf+`, c.member_count`,
		channelID, userID, message).Scan(&p.Seq, &p.At, &p.MessageID, &p.Unread, &members)
	if errors.Is(err, pgx.ErrNoRows) {
		if message != nil {
			return nil, NotFound("message in the channel, or membership of", channelID)
		}
		return nil, NotFound("membership of channel", channelID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: mark read: %w", err)
	}
	p.Members = members
	return p, nil
}

// MarkAllRead marks every channel of the user read.
func (s *Store) MarkAllRead(ctx context.Context, userID string) error {
	_, err := s.db.Exec(ctx, `
		UPDATE channel_members m SET last_read_seq = c.last_seq, last_read_at = now(), last_read_message_id = c.last_message_id
		FROM channels c WHERE m.user_id = $1 AND c.id = m.channel_id AND m.last_read_seq < c.last_seq`, userID)
	if err != nil {
		return fmt.Errorf("store: mark all read: %w", err)
	}
	return nil
}

// OwnersForUpdate locks a channel's row, so that changes to its owners
// are serialized, and counts its owners and members. NotFound when the
// channel does not exist.
func (s *Store) OwnersForUpdate(ctx context.Context, channelID string) (owners, members int, err error) {
	err = s.db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM channel_members WHERE channel_id = c.id AND role = 'owner'), c.member_count
		FROM channels c WHERE c.id = $1 FOR UPDATE`, channelID).Scan(&owners, &members)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, NotFound("channel", channelID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: channel owners: %w", err)
	}
	return owners, members, nil
}

// SetMemberRole changes a member's role and returns the role it had.
// NotFound when the user is no member of the channel.
func (s *Store) SetMemberRole(ctx context.Context, channelID, userID, role string) (before string, err error) {
	err = s.db.QueryRow(ctx, `
		UPDATE channel_members m SET role = $3 FROM channel_members old
		WHERE m.channel_id = $1 AND m.user_id = $2 AND old.channel_id = m.channel_id AND old.user_id = m.user_id
		RETURNING old.role`, channelID, userID, role).Scan(&before)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", NotFound("member of channel "+channelID, userID)
	}
	if err != nil {
		return "", fmt.Errorf("store: set member role: %w", err)
	}
	return before, nil
}
