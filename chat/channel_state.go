package chat

import (
	"context"
	"errors"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// MarkUnread moves the caller's read position in a channel to just before
// a message, so that message and those after it count as unread again.
// Redis counters only ever move forwards (see store/unread.go), so the
// caller's are thrown away and rebuilt from PostgreSQL at once.
func (s *Service) MarkUnread(ctx context.Context, channel, message string) (*store.ChannelUnread, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireMember(a); err != nil {
		return nil, err
	}
	m, _, _, err := s.messageAccess(ctx, "message", message)
	if err == nil && m.ChannelID != channel {
		err = store.NotFound("message in channel "+channel, message)
	}
	if err != nil {
		return nil, err
	}
	if !m.Counts() {
		return nil, store.Invalid("message", "message %s counts as no unread message (a thread reply, a system message): mark unread from one in the channel's history", message)
	}
	p, err := s.store.MarkUnread(ctx, channel, me.UserID, m.Pos, m.Seq)
	if errors.Is(err, store.ErrNotChannelMember) {
		return nil, auth.Forbidden("you are not a member of channel %q", channel)
	}
	if err != nil {
		return nil, err
	}
	if err := s.state.DiscardUnread(ctx, []string{me.UserID}); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: discard unread counters", "err", err)
	}
	counts, err := s.UnreadCounts(ctx, me.UserID) // rebuilds them
	if err != nil {
		return nil, err
	}
	c := channel
	s.publishUserEvents(ctx, []string{me.UserID}, []*UserEvent{{Type: EventNotificationMarkUnread, Channel: &c,
		TotalUnreadCount: counts.TotalUnreadCount, UnreadChannels: counts.UnreadChannels, CreatedAt: p.At}})
	return &store.ChannelUnread{ChannelID: channel, UserID: me.UserID, UnreadCount: p.Unread, ReadAt: &p.At}, nil
}

// HideChannel hides (hide false: shows) a channel from the caller's
// channel list until a new message comes, and tells the caller's other
// connections (channel.hidden, channel.visible). It reports whether
// anything changed.
func (s *Service) HideChannel(ctx context.Context, channel string, hide bool) (bool, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return false, err
	}
	if err := requireMember(a); err != nil {
		return false, err
	}
	changed, err := s.store.HideChannel(ctx, channel, me.UserID, hide)
	if errors.Is(err, store.ErrNotChannelMember) {
		return false, auth.Forbidden("you are not a member of channel %q", channel)
	}
	if err != nil || !changed {
		return changed, err
	}
	typ := EventChannelHidden
	if !hide {
		typ = EventChannelVisible
	}
	s.notifyMembership(ctx, typ, channel, []string{me.UserID})
	return true, nil
}

// DeleteChannel deletes a channel (owners and admins): it reads as none
// from then on, for everyone. Its members get channel.deleted on the
// channel and on myEvents, and their open subscriptions to it end.
func (s *Service) DeleteChannel(ctx context.Context, channel string) (*store.Channel, error) {
	a, me, err := s.access(ctx, "id", channel)
	if err != nil {
		return nil, err
	}
	if err := requireOwner(a, me); err != nil {
		return nil, err
	}
	var members []string
	err = s.hooks.Write(ctx, s.store, EventChannelDeleted, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if members, err = tx.DeleteChannel(ctx, channel, me.UserID); err != nil {
			return nil, err
		}
		return event(EventChannelDeleted, channel, channelHook{User: me.UserID, Info: infoOf(a.Channel)}), nil
	})
	if err != nil {
		return nil, err
	}
	// Their counts leave the channel out from now: rebuilt on next read.
	if err := s.state.InvalidateUnread(ctx, members); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "err", err)
	}
	s.publishChannel(ctx, EventChannelDeleted, channel, me.UserID, nil)
	s.notifyMembership(ctx, EventChannelDeleted, channel, members)
	return a.Channel, nil
}

// TruncateChannel deletes every message of a channel (owners and admins)
// and marks it read for every member. Members get channel.truncated on
// the channel, and notification.mark_read with their new totals.
func (s *Service) TruncateChannel(ctx context.Context, channel string) (*store.Channel, error) {
	a, me, err := s.access(ctx, "id", channel)
	if err != nil {
		return nil, err
	}
	if err := requireOwner(a, me); err != nil {
		return nil, err
	}
	var ch *store.Channel
	var members []string
	err = s.hooks.Write(ctx, s.store, EventChannelTruncated, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if ch, members, err = tx.TruncateChannel(ctx, channel, me.UserID); err != nil {
			return nil, err
		}
		return event(EventChannelTruncated, channel, channelHook{User: me.UserID, Info: infoOf(ch)}), nil
	})
	if err != nil {
		return nil, err
	}
	// Read positions moved forward to the channel's last sequence number:
	// a rebuild (max of Redis and PostgreSQL) lands on exactly that.
	if err := s.state.InvalidateUnread(ctx, members); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: invalidate unread counters", "err", err)
	}
	s.publishChannel(ctx, EventChannelTruncated, channel, me.UserID, nil)
	s.notifyMembership(ctx, EventNotificationMarkRead, channel, members)
	return ch, nil
}
