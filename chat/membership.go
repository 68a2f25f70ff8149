package chat

import (
	"context"
	"slices"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Self-service membership: who may join a channel is its join policy;
// anyone may leave, but a channel's last owner only once nobody else is
// left; owners give roles.

// JoinPolicy is who may join a channel by themselves: the policy it was
// given, or its type's default (livestream channels are open, messaging
// channels by invitation).
func (s *Service) JoinPolicy(ch *store.Channel) store.JoinPolicy { return joinPolicy(ch) }

func joinPolicy(ch *store.Channel) store.JoinPolicy {
	if ch.JoinPolicy != "" {
		return ch.JoinPolicy
	}
	if ch.Type == store.ChannelLivestream {
		return store.JoinOpen
	}
	return store.JoinInvite
}

// JoinChannel makes the caller a member of a channel whose join policy is
// OPEN (admins: any channel). Joining a channel one is in changes nothing.
func (s *Service) JoinChannel(ctx context.Context, channel string) (*store.Channel, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if a.Role != "" {
		return a.Channel, nil
	}
	if err := requireNotBanned(a, me); err != nil {
		return nil, err
	}
	if joinPolicy(a.Channel) != store.JoinOpen && !me.IsAdmin() {
		return nil, auth.Forbidden("channel %q is by invitation: an owner adds its members", channel)
	}
	return s.rejoin(ctx, channel, me.UserID)
}

// LeaveChannel takes the caller out of a channel and reports whether it
// was a member. The last owner of a channel others are still in must first
// make one of them an owner (setMemberRole).
func (s *Service) LeaveChannel(ctx context.Context, channel string) (bool, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return false, err
	}
	if a.Role == "" {
		return false, nil
	}
	ch, err := s.systemChange(ctx, channel, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		owners, members, err := tx.OwnersForUpdate(ctx, channel)
		if err != nil {
			return nil, nil, err
		}
		// The role as it is now that role changes wait for this one.
		m, err := tx.MembershipsOf(ctx, me.UserID, []string{channel})
		if err != nil || m[0] == nil {
			return nil, nil, err
		}
		if err := lastOwner(m[0].Role, owners, members); err != nil {
			return nil, nil, err
		}
		ch, err := tx.RemoveMembers(ctx, channel, []string{me.UserID})
		if err != nil || len(ch.Users) == 0 {
			return ch, nil, err
		}
		return ch, &systemEvent{typ: EventMemberLeft, actor: me.UserID, users: ch.Users}, nil
	}, s.announce(ctx, EventMemberLeft))
	if err != nil {
		return false, err
	}
	if ch == nil || len(ch.Users) == 0 {
		return false, nil // it left meanwhile
	}
	return true, nil
}

// lastOwner refuses to take the owner role from a channel's last owner
// while others are still in it: nobody could manage the channel.
func lastOwner(role string, owners, members int) error {
	if role == store.ChannelRoleOwner && owners <= 1 && members > 1 {
		return store.Conflict("you are the channel's last owner: make another member an owner first (setMemberRole)")
	}
	return nil
}

// Roles a member may be given.
var memberRoles = []string{store.ChannelRoleOwner, store.ChannelRoleModerator, store.ChannelRoleMember}

// SetMemberRole gives a member of a channel a role: owner, moderator or
// member (owners and admins). The last owner cannot step down while others
// are in the channel.
func (s *Service) SetMemberRole(ctx context.Context, channel, user, role string) (*store.Member, error) {
	if !slices.Contains(memberRoles, role) {
		return nil, store.Invalid("role", "%q is not a role: use owner, moderator or member", role)
	}
	if err := store.CheckUserID("user", user); err != nil {
		return nil, err
	}
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireOwner(a, me); err != nil {
		return nil, err
	}
	var before string
	_, err = s.systemChange(ctx, channel, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		owners, members, err := tx.OwnersForUpdate(ctx, channel)
		if err != nil {
			return nil, nil, err
		}
		if before, err = tx.SetMemberRole(ctx, channel, user, role); err != nil {
			return nil, nil, err
		}
		if role != store.ChannelRoleOwner {
			if err := lastOwner(before, owners, members); err != nil {
				return nil, nil, err
			}
		}
		if before == role {
			return nil, nil, nil
		}
		return &store.MemberChange{Channel: a.Channel}, &systemEvent{typ: EventMemberRole, actor: me.UserID, users: []string{user}, role: role}, nil
	}, func(*store.MemberChange) { s.publishChannel(ctx, EventMemberRole, channel, user, nil) })
	if err != nil {
		return nil, err
	}
	m, err := s.store.MembershipsOf(ctx, user, []string{channel})
	if err != nil {
		return nil, err
	}
	if m[0] == nil {
		return nil, store.NotFound("member of channel "+channel, user) // it left meanwhile
	}
	return m[0], nil
}

// canModerate reports whether a member may act on others' messages and
// moderate the channel (invite, ban, freeze): owners and moderators not
// banned from it, and admins.
func canModerate(a *store.ChannelAccess, me auth.Identity) bool {
	return (a.Role == store.ChannelRoleOwner || a.Role == store.ChannelRoleModerator) && !a.Banned || me.IsAdmin()
}
