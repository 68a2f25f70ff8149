package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// MemberStatus says whether a user is in a channel or invited to it.
type MemberStatus string

// Member statuses.
const (
	// StatusMember: in the channel.
	StatusMember MemberStatus = "MEMBER"
	// StatusInvited: invited, not yet accepted.
	StatusInvited MemberStatus = "INVITED"
)

// MarshalGQL writes the status as its GraphQL enum value.
func (s MemberStatus) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *MemberStatus) UnmarshalGQL(v any) error {
	return UnmarshalEnum(s, v, "status", "member status", StatusMember, StatusInvited)
}

const inviteColumns = `i.channel_id, i.user_id, i.invited_by, i.created_at`

// scanInvite reads an invitation as a Member with status INVITED: its
// JoinedAt is when it was invited.
func scanInvite(row pgx.Row) (*Member, error) {
	m := Member{Status: StatusInvited, Role: ChannelRoleMember}
	var by string
	if err := row.Scan(&m.ChannelID, &m.UserID, &by, &m.JoinedAt); err != nil {
		return nil, err
	}
	m.InvitedByID = &by
	return &m, nil
}

// InviteMembers invites users to a channel and returns those newly
// invited: users already in it or invited are left alone. Users must
// exist.
func (s *Store) InviteMembers(ctx context.Context, channelID, inviter string, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, Invalid("userIds", "give at least one user")
	}
	if err := checkUserList("userIds", users); err != nil {
		return nil, err
	}
	var invited []string
	err := s.InTx(ctx, func(tx *Store) error {
		if err := tx.checkUsersExist(ctx, "userIds", users); err != nil {
			return err
		}
		rows, err := tx.db.Query(ctx, `
			INSERT INTO channel_invites (channel_id, user_id, invited_by)
			SELECT $1, u, $3 FROM unnest($2::text[]) AS u
			WHERE NOT EXISTS (SELECT 1 FROM channel_members WHERE channel_id = $1 AND user_id = u)
			ON CONFLICT (channel_id, user_id) DO NOTHING
			RETURNING user_id`, channelID, users, inviter)
		if err != nil {
			return err
		}
		invited, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("store: invite members: %w", err)
	}
	return invited, nil
}

// AcceptInvite turns a user's invitation to a channel into membership.
// NotFound when there is no invitation.
func (s *Store) AcceptInvite(ctx context.Context, channelID, userID string) (*MemberChange, error) {
	var out *MemberChange
	err := s.InTx(ctx, func(tx *Store) error {
		found, err := tx.deleteInvites(ctx, channelID, []string{userID})
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return NotFound("invitation to channel", channelID)
		}
		out, err = tx.AddMembers(ctx, channelID, found)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: accept invite: %w", err)
	}
	return out, nil
}

// DeleteInvites withdraws (or, for the invitee, rejects) invitations and
// returns the users whose invitation it deleted.
func (s *Store) DeleteInvites(ctx context.Context, channelID string, users []string) ([]string, error) {
	found, err := s.deleteInvites(ctx, channelID, users)
	if err != nil {
		return nil, fmt.Errorf("store: delete invites: %w", err)
	}
	return found, nil
}

func (s *Store) deleteInvites(ctx context.Context, channelID string, users []string) ([]string, error) {
	rows, err := s.db.Query(ctx, `DELETE FROM channel_invites WHERE channel_id = $1 AND user_id = ANY($2) RETURNING user_id`, channelID, users)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Invites lists a channel's pending invitations, oldest first, first+1
// rows after the cursor position (MemberCursor; "" for the start).
func (s *Store) Invites(ctx context.Context, channelID string, first int, after string) (Page[*Member], error) {
	afterAt, afterUser, err := parseMemberCursor(after)
	if err != nil {
		return Page[*Member]{}, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT `+inviteColumns+` FROM channel_invites i
		WHERE i.channel_id = $1 AND ($2::timestamptz IS NULL OR (i.created_at, i.user_id) > ($2, $3))
		ORDER BY i.created_at, i.user_id LIMIT $4`, channelID, nilTime(afterAt), afterUser, first+1)
	if err != nil {
		return Page[*Member]{}, fmt.Errorf("store: invites: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Member, error) { return scanInvite(r) })
	if err != nil {
		return Page[*Member]{}, fmt.Errorf("store: invites: %w", err)
	}
	return PageOf(found, first), nil
}

// InvitationsOf returns one user's invitation to each channel, in order,
// nil where it has none.
func (s *Store) InvitationsOf(ctx context.Context, userID string, channelIDs []string) ([]*Member, error) {
	rows, err := s.db.Query(ctx, `SELECT `+inviteColumns+` FROM channel_invites i WHERE i.user_id = $1 AND i.channel_id = ANY($2)`, userID, channelIDs)
	if err != nil {
		return nil, fmt.Errorf("store: invitations: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Member, error) { return scanInvite(r) })
	if err != nil {
		return nil, fmt.Errorf("store: invitations: %w", err)
	}
	return inOrder(channelIDs, found, func(m *Member) string { return m.ChannelID }), nil
}

// parseMemberCursor reads a MemberCursor: a time and a user id.
func parseMemberCursor(after string) (time.Time, string, error) {
	if after == "" {
		return time.Time{}, "", nil
	}
	var micros int64
	var user string
	n, err := fmt.Sscanf(after, "%d|%s", &micros, &user)
	if err != nil || n != 2 {
		return time.Time{}, "", Invalid("after", "is not a valid cursor")
	}
	return time.UnixMicro(micros), user, nil
}
