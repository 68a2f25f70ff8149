package chat

import (
	"context"
	"errors"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// CreateChannel creates a channel with the caller as its owner. With an id
// that exists it returns the channel unchanged (get-or-create), when the
// caller may read it.
func (s *Service) CreateChannel(ctx context.Context, input store.ChannelInput) (*store.Channel, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	var ch *store.Channel
	var created bool
	err = s.hooks.Write(ctx, s.store, EventChannelCreated, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if ch, created, err = tx.CreateChannel(ctx, me.UserID, input); err != nil || !created {
			return nil, err
		}
		return event(EventChannelCreated, ch.ID, channelHook{User: me.UserID, Info: infoOf(ch)}), nil
	})
	if errors.Is(err, store.ErrBlocked) {
		return nil, auth.Forbidden("a member you named blocks you: no conversation with it")
	}
	if err != nil {
		return nil, err
	}
	if !created {
		a, err := s.store.ChannelForUser(ctx, ch.ID, me.UserID)
		if err != nil {
			return nil, err
		}
		if input.Distinct && a.Role == "" {
			// The caller's own conversation: it comes back to it.
			if err := requireNotBanned(a, me); err != nil {
				return nil, err
			}
			return s.rejoin(ctx, ch.ID, me.UserID)
		}
		if err := requireRead(a, me); err != nil {
			return nil, auth.Forbidden("channel %q already exists and you are not a member of it", ch.ID)
		}
		return ch, nil
	}
	members, err := s.store.ChannelMemberIDs(ctx, ch.ID)
	if err == nil {
		s.afterMembership(ctx, &store.MemberChange{Channel: ch, Users: members}, EventMemberAdded)
	}
	return ch, nil
}

// rejoin makes a user a member of a channel again, as if it joined.
func (s *Service) rejoin(ctx context.Context, channel, user string) (*store.Channel, error) {
	ch, err := s.systemChange(ctx, channel, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		ch, err := tx.AddMembers(ctx, channel, []string{user})
		return ch, joinedEvent(ch, user), err
	}, s.announce(ctx, EventMemberJoined))
	if err != nil {
		return nil, err
	}
	return ch.Channel, nil
}

// joinedEvent is the system event of a user's join, nil when it was in
// the channel already.
func joinedEvent(ch *store.MemberChange, user string) *systemEvent {
	if ch == nil || len(ch.Users) == 0 {
		return nil
	}
	return &systemEvent{typ: EventMemberJoined, actor: user, users: ch.Users}
}

// UpdateChannel changes a channel: its name, image, data and join policy
// (owners, admins), whether it is frozen and its slow mode (owners,
// moderators, admins). A freeze is recorded by a system message.
func (s *Service) UpdateChannel(ctx context.Context, id string, u store.ChannelUpdate) (*store.Channel, error) {
	a, me, err := s.access(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	profile := u.Name != nil || u.Image != nil || u.Data != nil || u.JoinPolicy != nil
	if profile {
		if err := requireOwner(a, me); err != nil {
			return nil, err
		}
	} else if !canModerate(a, me) {
		return nil, auth.Forbidden("only the owners and moderators of channel %q and admins may freeze it or set its slow mode", id)
	}
	var before, after *store.Channel
	_, err = s.systemChange(ctx, id, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		var err error
		if before, after, err = tx.UpdateChannel(ctx, id, u); err != nil {
			return nil, nil, err
		}
		ch := &store.MemberChange{Channel: after}
		if err := s.emit(ctx, tx, EventChannelUpdated, id, channelHook{User: me.UserID, Info: infoOf(after)}); err != nil {
			return nil, nil, err
		}
		switch {
		case !before.Frozen && after.Frozen:
			return ch, &systemEvent{typ: EventChannelFrozen, actor: me.UserID}, nil
		case before.Frozen && !after.Frozen:
			return ch, &systemEvent{typ: EventChannelUnfrozen, actor: me.UserID}, nil
		}
		return ch, nil, nil
	}, func(*store.MemberChange) {
		s.publishChannel(ctx, EventChannelUpdated, id, me.UserID, nil)
		if before.Frozen != after.Frozen {
			typ := EventChannelFrozen
			if !after.Frozen {
				typ = EventChannelUnfrozen
			}
			s.publishChannel(ctx, typ, id, me.UserID, nil)
		}
	})
	if err != nil {
		return nil, err
	}
	return after, nil
}

// AddMembers adds users to a channel (owners, admins).
func (s *Service) AddMembers(ctx context.Context, channel string, userIDs []string) (*store.Channel, error) {
	return s.changeMembers(ctx, channel, userIDs, true)
}

// RemoveMembers removes users from a channel (owners, admins).
func (s *Service) RemoveMembers(ctx context.Context, channel string, userIDs []string) (*store.Channel, error) {
	return s.changeMembers(ctx, channel, userIDs, false)
}

func (s *Service) changeMembers(ctx context.Context, channel string, userIDs []string, add bool) (*store.Channel, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireOwner(a, me); err != nil {
		return nil, err
	}
	ch, err := s.systemChange(ctx, channel, func(tx *store.Store) (*store.MemberChange, *systemEvent, error) {
		change, typ := tx.RemoveMembers, EventMemberRemoved
		if add {
			change, typ = tx.AddMembers, EventMemberAdded
		}
		ch, err := change(ctx, channel, userIDs)
		if err != nil || len(ch.Users) == 0 {
			return ch, nil, err
		}
		return ch, &systemEvent{typ: typ, actor: me.UserID, users: ch.Users}, nil
	}, func(ch *store.MemberChange) {
		typ := EventMemberRemoved
		if add {
			typ = EventMemberAdded
		}
		s.afterMembership(ctx, ch, typ)
		// A removal withdraws invitations too: the channel leaves their lists.
		s.notifyMembership(ctx, EventNotificationRemovedFrom, channel, ch.Withdrawn)
	})
	if err != nil {
		return nil, err
	}
	return ch.Channel, nil
}

// announce returns what follows a committed membership change announced
// as typ (see afterMembership).
func (s *Service) announce(ctx context.Context, typ string) func(*store.MemberChange) {
	return func(ch *store.MemberChange) { s.afterMembership(ctx, ch, typ) }
}

// membershipEvents, when set (by tests), runs after a membership change
// has committed and before its events are published.
var membershipEvents func(channel string)

// afterMembership follows a committed membership change, announced as
// typ (member.added, member.joined, member.removed or member.left):
// counters of the users concerned (of every member, when the channel
// crossed the push limit) are rebuilt on their next read, and everyone
// hears of it.
func (s *Service) afterMembership(ctx context.Context, ch *store.MemberChange, typ string) {
	if len(ch.Users) == 0 {
		return
	}
	users := ch.Users
	if s.big(ch.Before) != s.big(ch.Channel.MemberCount) {
		// Across the push limit: every member's counters change kind.
		all, err := s.store.ChannelMemberIDs(ctx, ch.Channel.ID)
		if err == nil {
			users = append(append([]string{}, users...), all...)
		}
	}
	if err := s.state.InvalidateUnread(ctx, users); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "err", err)
	}
	note := EventNotificationAdded
	if isRemoval(typ) {
		note = EventNotificationRemovedFrom
	}
	if membershipEvents != nil {
		membershipEvents(ch.Channel.ID)
	}
	profiles := s.profiles(ctx, ch.Users)
	for _, u := range ch.Users {
		// The change's own transaction read the removal count: no read
		// per user.
		ev := &ChannelEvent{Type: typ, Channel: ch.Channel.ID, Removals: ch.Channel.MemberRemovals, User: profiles[u]}
		if isRemoval(typ) {
			ev.Removed = ch.Users
		}
		s.sendChannelEvent(ctx, ev)
	}
	s.notifyMembership(ctx, note, ch.Channel.ID, ch.Users)
}

// notifyMembership tells users they were added to or removed from a
// channel, with their totals.
func (s *Service) notifyMembership(ctx context.Context, typ, channel string, users []string) {
	if len(users) == 0 {
		return
	}
	totals, err := s.store.UnreadTotalsFromDB(ctx, users)
	if err != nil {
		s.log.Warn("chat: membership notification totals", "err", err)
		return
	}
	evs := make([]*UserEvent, len(users))
	now := time.Now().UTC()
	for i, u := range users {
		c := channel
		evs[i] = &UserEvent{Type: typ, Channel: &c, TotalUnreadCount: totals[u].Total, UnreadChannels: totals[u].Channels, CreatedAt: now}
	}
	s.publishUserEvents(ctx, users, evs)
}

// profiles reads users' profiles for events, by id; a failure leaves the
// events without them.
func (s *Service) profiles(ctx context.Context, ids []string) map[string]*store.User {
	out := make(map[string]*store.User, len(ids))
	users, err := s.store.UsersByID(ctx, ids)
	if err != nil {
		return out
	}
	for _, u := range users {
		if u != nil {
			out[u.ID] = u
		}
	}
	return out
}

// Channel returns a channel the caller may read, or is invited to, or nil
// when there is none.
func (s *Service) Channel(ctx context.Context, id string) (*store.Channel, error) {
	a, me, err := s.access(ctx, "id", id)
	return s.channelFrom(ctx, a, me, err)
}

// channelFrom is Channel's answer from the caller's access as read.
func (s *Service) channelFrom(ctx context.Context, a *store.ChannelAccess, me auth.Identity, err error) (*store.Channel, error) {
	found, err := readableOrNone(a, me, err)
	if errors.Is(err, auth.ErrForbidden) {
		ok, ierr := s.invited(ctx, a, me)
		if ierr != nil {
			return nil, ierr
		}
		if ok {
			return a.Channel, nil
		}
	}
	if !found {
		return nil, err
	}
	return a.Channel, nil
}

// Channels lists the caller's channels (memberships and invitations), or
// with filter.joined false those it could join, in the given order
// (latest top-level message first when none). A channel listed for
// joining that the caller may not read shows its profile alone
// (ContentHidden).
func (s *Service) Channels(ctx context.Context, filter *store.ChannelFilter, sort []*store.ChannelSort, first *int, after *string) (store.Page[*store.ListedChannel], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.ListedChannel]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.ListedChannel]{}, err
	}
	var f store.ChannelFilter
	if filter != nil {
		f = *filter
	}
	order := make([]store.ChannelSort, len(sort))
	for i, o := range sort {
		order[i] = *o
	}
	page, err := s.store.UserChannels(ctx, me.UserID, f, order, n, pos)
	if err != nil {
		return page, err
	}
	for _, l := range page.Items {
		if l.Outsider && !CanRead(&store.ChannelAccess{Channel: l.Channel}, me) {
			l.Channel.ProfileOnly = true
		}
	}
	return page, nil
}

// Members lists a channel's members in join order (100 by default), or
// with status INVITED its pending invitations, oldest first. The channel
// was read under the caller's access to it.
func (s *Service) Members(ctx context.Context, ch *store.Channel, first *int, after *string, status *store.MemberStatus) (store.Page[*store.Member], error) {
	if ContentHidden(ch) {
		return store.Page[*store.Member]{Items: []*store.Member{}}, nil
	}
	n, pos, err := store.PageArgs(first, after, 100)
	if err != nil {
		return store.Page[*store.Member]{}, err
	}
	if status != nil && *status == store.StatusInvited {
		return s.store.Invites(ctx, ch.ID, n, pos)
	}
	return s.store.Members(ctx, ch.ID, n, pos)
}
