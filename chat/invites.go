package chat

import (
	"context"
	"errors"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Invitations: owners and moderators invite users, who see the channel in
// their list and may read it, but are no members (no unread, no streams,
// no writing) until they accept. Accepting works whatever the channel's
// join policy.

// InviteMembers invites users to a channel (owners, moderators, admins).
// Users already in the channel or invited are left alone.
func (s *Service) InviteMembers(ctx context.Context, channel string, userIDs []string) (*store.Channel, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if !canModerate(a, me) {
		return nil, auth.Forbidden("only the owners and moderators of channel %q and admins may invite", channel)
	}
	var invited []string
	err = s.hooks.Write(ctx, s.store, EventMemberInvited, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if invited, err = tx.InviteMembers(ctx, channel, me.UserID, userIDs); err != nil || len(invited) == 0 {
			return nil, err
		}
		return event(EventMemberInvited, channel, channelHook{User: me.UserID, Members: invited}), nil
	})
	if err != nil {
		return nil, err
	}
	s.publishMemberEvents(ctx, EventMemberInvited, channel, invited)
	s.notifyMembership(ctx, EventNotificationInvited, channel, invited)
	return a.Channel, nil
}

// AcceptInvite makes the caller, invited to a channel, a member of it.
// Accepting again, once a member, changes nothing.
func (s *Service) AcceptInvite(ctx context.Context, channel string) (*store.Channel, error) {
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
	ch, err := s.systemChange(ctx, channel, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		ch, err := tx.AcceptInvite(ctx, channel, me.UserID)
		return ch, joinedEvent(ch, me.UserID), err
	}, s.announce(ctx, EventMemberJoined))
	if errors.Is(err, store.ErrNotFound) {
		return nil, auth.Forbidden("you have no invitation to channel %q", channel)
	}
	if err != nil {
		return nil, err
	}
	return ch.Channel, nil
}

// RejectInvite declines the caller's invitation to a channel and reports
// whether there was one.
func (s *Service) RejectInvite(ctx context.Context, channel string) (bool, error) {
	_, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return false, err
	}
	var found []string
	err = s.hooks.Write(ctx, s.store, EventInviteRejected, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if found, err = tx.DeleteInvites(ctx, channel, []string{me.UserID}); err != nil || len(found) == 0 {
			return nil, err
		}
		return event(EventInviteRejected, channel, channelHook{User: me.UserID, Members: found}), nil
	})
	if err != nil || len(found) == 0 {
		return false, err
	}
	s.publishMemberEvents(ctx, EventInviteRejected, channel, found)
	s.notifyMembership(ctx, EventNotificationRemovedFrom, channel, found)
	return true, nil
}

// MyInvitations reads the caller's invitations to channels.
func (s *Service) MyInvitations(ctx context.Context, channels []string) ([]*store.Member, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.InvitationsOf(ctx, me.UserID, channels)
}

// invited reports whether the caller has an invitation to a channel it is
// no member of: it may then read the channel, to decide.
func (s *Service) invited(ctx context.Context, a *store.ChannelAccess, me auth.Identity) (bool, error) {
	if a.Role != "" {
		return false, nil
	}
	m, err := s.store.InvitationsOf(ctx, me.UserID, []string{a.Channel.ID})
	return err == nil && m[0] != nil, err
}

// publishMemberEvents publishes one event of a channel per user, for
// changes that leave its members as they are: one read of the removal
// count and of the users' profiles for them all.
func (s *Service) publishMemberEvents(ctx context.Context, typ, channel string, users []string) {
	if len(users) == 0 {
		return
	}
	n, err := s.store.ChannelMemberRemovals(ctx, channel)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: events not published", "type", typ, "channel", channel, "err", err)
		return
	}
	profiles := s.profiles(ctx, users)
	for _, u := range users {
		s.sendChannelEvent(ctx, &ChannelEvent{Type: typ, Channel: channel, Removals: n, User: profiles[u]})
	}
}
