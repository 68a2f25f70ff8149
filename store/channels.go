package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Channel is a chat channel, addressed as "type:id".
type Channel struct {
	ID            string
	Type          string
	Name          *string
	Image         *string
	Data          json.RawMessage
	CreatedByID   string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastSeq       int64
	LastPos       int64
	LastMessageID *uuid.UUID
	LastMessageAt *time.Time
	MemberCount   int
	// MemberRemovals counts the transactions that removed members: events
	// carry it so that subscriptions notice a removal they missed.
	MemberRemovals int64
	// JoinPolicy is who may join by themselves, as set; "" is the
	// channel type's default (the chat product's rule).
	JoinPolicy JoinPolicy
	// Frozen: only owners, moderators and admins may send.
	Frozen bool
	// CooldownSeconds is slow mode: one message per member per that many
	// seconds (0: off).
	CooldownSeconds int
	// ProfileOnly: the channel was listed to a caller who may join it but
	// not read it (an open messaging channel it is not in): its profile is
	// the caller's to see, its messages and members are not.
	ProfileOnly bool
}

// JoinPolicy says who may join a channel by themselves.
type JoinPolicy string

// Join policies.
const (
	// JoinOpen: anyone signed in may join.
	JoinOpen JoinPolicy = "OPEN"
	// JoinInvite: only those an owner adds.
	JoinInvite JoinPolicy = "INVITE"
)

// MarshalGQL writes the policy as its GraphQL enum value.
func (p JoinPolicy) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(p))) }

// UnmarshalGQL reads a GraphQL enum value.
func (p *JoinPolicy) UnmarshalGQL(v any) error {
	return UnmarshalEnum(p, v, "joinPolicy", "join policy", JoinOpen, JoinInvite)
}

// Channel types: who may read and write.
const (
	// ChannelMessaging channels are read, written and followed by members only.
	ChannelMessaging = "messaging"
	// ChannelLivestream channels are read by any signed-in user; members write.
	ChannelLivestream = "livestream"
)

// Roles of channel members: the creator is an owner.
const (
	ChannelRoleOwner     = "owner"
	ChannelRoleModerator = "moderator"
	ChannelRoleMember    = "member"
)

// ChannelInput creates a channel.
type ChannelInput struct {
	Type string
	// ID is the id part of "type:id"; empty generates one.
	ID      string
	Name    *string
	Image   *string
	Data    json.RawMessage
	Members []string
	// JoinPolicy, when set, overrides the type's default.
	JoinPolicy *JoinPolicy
	// Distinct makes the channel the one of its exact member set: its id
	// is derived from the members (DistinctChannelID), so creating it
	// again, concurrently or not, returns the same channel.
	Distinct bool
}

// distinctPrefix starts the id part of every distinct channel. A chosen id
// cannot start with "!", so the two never collide.
const distinctPrefix = "!members-"

// DistinctChannelID is the id part of the distinct channel of a member set
// (the creator included): a hash of the sorted, unique user ids.
func DistinctChannelID(members []string) string {
	set := slices.Clone(members)
	slices.Sort(set)
	set = slices.Compact(set)
	sum := sha256.Sum256([]byte(strings.Join(set, "\x00")))
	return distinctPrefix + hex.EncodeToString(sum[:16])
}

// isDistinctID reports whether a channel id part is a distinct channel's.
func isDistinctID(id string) bool {
	h, ok := strings.CutPrefix(id, distinctPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// ParseChannelID checks a full channel id, "type:id", and returns its type.
func ParseChannelID(field, cid string) (string, error) {
	typ, id, ok := strings.Cut(cid, ":")
	if !ok {
		return "", Invalid(field, "%q is not a channel id: channel ids are \"type:id\", like \"messaging:general\"", truncate(cid, 80))
	}
	if err := checkChannelType(field, typ); err != nil {
		return "", err
	}
	if err := CheckUserID(field, id); err != nil && !isDistinctID(id) {
		return "", Invalid(field, "the id part of a channel id must be 1 to %d letters, digits or _-@.", MaxUserIDLen)
	}
	return typ, nil
}

func checkChannelType(field, t string) error {
	if t != ChannelMessaging && t != ChannelLivestream {
		return Invalid(field, "%q is not a channel type: use messaging or livestream", truncate(t, 40))
	}
	return nil
}

func checkUserList(field string, ids []string) error {
	if len(ids) > MaxBatch {
		return Invalid(field, "at most %d users at once, got %d", MaxBatch, len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for i, m := range ids {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := CheckUserID(f, m); err != nil {
			return err
		}
		if seen[m] {
			return Invalid(f, "user %q appears more than once", m)
		}
		seen[m] = true
	}
	return nil
}

func checkChannelProfile(name, image *string, data json.RawMessage) error {
	if name != nil {
		if err := CheckText("name", *name, maxUserName); err != nil {
			return err
		}
	}
	if image != nil {
		if err := CheckText("image", *image, maxUserImage); err != nil {
			return err
		}
	}
	return CheckData("data", data)
}

const channelColumns = `id, type, name, image, data, created_by, created_at, updated_at, last_seq, last_pos, last_message_id, last_message_at, member_count, member_removals, join_policy, frozen, cooldown_seconds`

func scanChannel(row pgx.Row, extra ...any) (*Channel, error) {
	var c Channel
	var policy *string
	dest := append([]any{&c.ID, &c.Type, &c.Name, &c.Image, &c.Data, &c.CreatedByID, &c.CreatedAt, &c.UpdatedAt,
		&c.LastSeq, &c.LastPos, &c.LastMessageID, &c.LastMessageAt, &c.MemberCount, &c.MemberRemovals, &policy,
		&c.Frozen, &c.CooldownSeconds}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if policy != nil {
		c.JoinPolicy = JoinPolicy(*policy)
	}
	return &c, nil
}

// CreateChannel creates a channel with the creator as owner and the given
// members, or, when a channel with the given id exists, returns it
// unchanged (created is false). Members must be existing users.
func (s *Store) CreateChannel(ctx context.Context, creator string, in ChannelInput) (ch *Channel, created bool, err error) {
	if err := checkChannelType("input.type", in.Type); err != nil {
		return nil, false, err
	}
	if in.ID != "" {
		if in.Distinct {
			return nil, false, Invalid("input.id", "a distinct channel's id is made from its members: leave id out")
		}
		if err := CheckUserID("input.id", in.ID); err != nil {
			return nil, false, Invalid("input.id", "the id part of a channel id must be 1 to %d letters, digits or _-@.", MaxUserIDLen)
		}
	}
	if err := checkUserList("input.members", in.Members); err != nil {
		return nil, false, err
	}
	if in.Distinct && !slices.ContainsFunc(in.Members, func(m string) bool { return m != creator }) {
		return nil, false, Invalid("input.members", "a distinct channel needs at least one member besides you")
	}
	if err := checkChannelProfile(in.Name, in.Image, in.Data); err != nil {
		return nil, false, err
	}
	id := in.ID
	switch {
	case in.Distinct:
		id = DistinctChannelID(append([]string{creator}, in.Members...))
	case id == "":
		id = NewID().String()
	}
	cid := in.Type + ":" + id
	users := []string{creator}
	roles := []string{ChannelRoleOwner}
	for _, m := range in.Members {
		if m != creator {
			users = append(users, m)
			roles = append(roles, ChannelRoleMember)
		}
	}
	err = s.InTx(ctx, func(tx *Store) error {
		ch, created = nil, false
		if in.Distinct {
			// A blocked user opens no conversation with its blocker.
			var blocked bool
			if err := tx.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_blocks WHERE blocker_id = ANY($1) AND blocked_id = $2)`,
				users[1:], creator).Scan(&blocked); err != nil {
				return err
			}
			if blocked {
				return ErrBlocked
			}
		}
		c, err := scanChannel(tx.db.QueryRow(ctx, `
			INSERT INTO channels (id, type, name, image, data, created_by, member_count, join_policy) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO NOTHING
			RETURNING `+channelColumns, cid, in.Type, in.Name, in.Image, in.Data, creator, len(users), policyValue(in.JoinPolicy)))
		if errors.Is(err, pgx.ErrNoRows) {
			ch, err = scanChannel(tx.db.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels WHERE id = $1 AND deleted_at IS NULL`, cid))
			if errors.Is(err, pgx.ErrNoRows) {
				return Conflict("channel %q was deleted: its id is not free again", cid)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := tx.checkUsersExist(ctx, "input.members", users); err != nil {
			return err
		}
		if _, err := tx.db.Exec(ctx, `
			INSERT INTO channel_members (channel_id, user_id, role)
			SELECT $1, u, r FROM unnest($2::text[], $3::text[]) AS m (u, r)`, cid, users, roles); err != nil {
			return err
		}
		ch, created = c, true
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrBlocked) || errors.Is(err, ErrConflict) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("store: create channel: %w", err)
	}
	return ch, created, nil
}

// checkUsersExist fails with an InputError naming the first user that does not exist.
func (s *Store) checkUsersExist(ctx context.Context, field string, users []string) error {
	var missing *string
	if err := s.db.QueryRow(ctx, `
		SELECT u FROM unnest($1::text[]) AS u WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = u) LIMIT 1`,
		users).Scan(&missing); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if missing != nil {
		return Invalid(field, "user %q does not exist; create it first with upsertUsers", *missing)
	}
	return nil
}

// ChannelAccess is a channel with the caller's membership in it.
type ChannelAccess struct {
	Channel *Channel
	// Role is the caller's role, "" when not a member.
	Role string
	// Banned: a hard ban from the channel or the app is in force;
	// Shadowed: a shadow ban alone.
	Banned, Shadowed bool
}

// ChannelForUser returns a channel and the user's role in it, or NotFound.
func (s *Store) ChannelForUser(ctx context.Context, channelID, userID string) (*ChannelAccess, error) {
	return scanChannelAccess(s.db.QueryRow(ctx, channelForUserSQL, channelID, userID), channelID)
}

// channelForUserSQL reads a channel ($1) and a user's ($2) membership and ban.
var channelForUserSQL = `
		SELECT ` + prefixed("c.", channelColumns) + `, m.role, ` + banOf("c.id", "$2") + ` FROM channels c
		LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $2
		WHERE c.id = $1 AND c.deleted_at IS NULL`

// scanChannelAccess reads the row of channelForUserSQL.
func scanChannelAccess(row pgx.Row, channelID string) (*ChannelAccess, error) {
	var role *string
	var ban *bool
	c, err := scanChannel(row, &role, &ban)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("channel", channelID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: channel: %w", err)
	}
	a := &ChannelAccess{Channel: c, Banned: ban != nil && !*ban, Shadowed: ban != nil && *ban}
	if role != nil {
		a.Role = *role
	}
	return a, nil
}

// ChannelsByID returns channels by id, in order, with nil where none exists.
func (s *Store) ChannelsByID(ctx context.Context, ids []string) ([]*Channel, error) {
	rows, err := s.db.Query(ctx, `SELECT `+channelColumns+` FROM channels WHERE id = ANY($1) AND deleted_at IS NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: channels by id: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Channel, error) { return scanChannel(r) })
	if err != nil {
		return nil, fmt.Errorf("store: channels by id: %w", err)
	}
	return inOrder(ids, found, func(c *Channel) string { return c.ID }), nil
}

// ChannelMemberRemovals returns a channel's MemberRemovals now (0 for a
// channel that does not exist).
func (s *Store) ChannelMemberRemovals(ctx context.Context, id string) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT member_removals FROM channels WHERE id = $1`, id).Scan(&n)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("store: channel member removals: %w", err)
	}
	return n, nil
}

// policyValue is a join policy as stored: NULL for the type's default.
func policyValue(p *JoinPolicy) *string {
	if p == nil {
		return nil
	}
	v := string(*p)
	return &v
}

// MaxCooldownSeconds caps slow mode: an hour between a member's messages.
const MaxCooldownSeconds = 3600

// ChannelUpdate changes a channel; nil fields keep their value.
type ChannelUpdate struct {
	Name, Image     *string
	Data            json.RawMessage
	JoinPolicy      *JoinPolicy
	Frozen          *bool
	CooldownSeconds *int
}

// UpdateChannel changes a channel and returns it as it was before and as
// it is after.
func (s *Store) UpdateChannel(ctx context.Context, id string, u ChannelUpdate) (before, after *Channel, err error) {
	if err := checkChannelProfile(u.Name, u.Image, u.Data); err != nil {
		return nil, nil, err
	}
	if c := u.CooldownSeconds; c != nil && (*c < 0 || *c > MaxCooldownSeconds) {
		return nil, nil, Invalid("cooldownSeconds", "%d is out of range: give 0 (off) to %d seconds", *c, MaxCooldownSeconds)
	}
	err = s.InTx(ctx, func(tx *Store) error {
		before, err = scanChannel(tx.db.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return NotFound("channel", id)
		}
		if err != nil {
			return err
		}
		after, err = scanChannel(tx.db.QueryRow(ctx, `
			UPDATE channels SET name = coalesce($2, name), image = coalesce($3, image), data = coalesce($4, data),
				join_policy = coalesce($5, join_policy), frozen = coalesce($6, frozen),
				cooldown_seconds = coalesce($7, cooldown_seconds), updated_at = now()
			WHERE id = $1 RETURNING `+channelColumns, id, u.Name, u.Image, u.Data, policyValue(u.JoinPolicy), u.Frozen, u.CooldownSeconds))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("store: update channel: %w", err)
	}
	return before, after, nil
}
