package chat

import (
	"context"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Bans: channel owners and moderators ban from their channel, admins from
// any channel or from the whole app. A hard ban is announced on the
// channel (user.banned, user.unbanned); a shadow ban is not, as it must
// not show.

// BanUser bans a user from a channel (nil: from the app, admins only)
// until a time (nil: for good). Owners and moderators cannot be banned
// from their channel but by an admin.
func (s *Service) BanUser(ctx context.Context, user string, channel *string, until *time.Time, shadow bool, reason *string) (bool, error) {
	b, me, err := s.banTarget(ctx, user, channel)
	if err != nil {
		return false, err
	}
	if until != nil && !until.After(time.Now()) {
		return false, store.Invalid("until", "%s is past: give a time to come, or none to ban for good", until.UTC().Format(time.RFC3339))
	}
	b.Until, b.Shadow, b.Reason, b.BannedBy = until, shadow, reason, me.UserID
	// A channel's hard ban reaches its webhooks; a shadow ban, which
	// must not show, and an app-wide one (no channel to order it by) not.
	err = s.hooks.Write(ctx, s.store, EventUserBanned, func(tx *store.Store) (*webhooks.Event, error) {
		if err := tx.BanUser(ctx, *b); err != nil || b.ChannelID == "" || shadow {
			return nil, err
		}
		return event(EventUserBanned, b.ChannelID, channelHook{User: me.UserID, Members: []string{user}}), nil
	})
	if err != nil {
		return false, err
	}
	if b.ChannelID != "" && !shadow {
		s.publishChannel(ctx, EventUserBanned, b.ChannelID, user, nil)
	}
	return true, nil
}

// UnbanUser lifts a user's ban from a channel (nil: the app-wide one) and
// reports whether one was in force.
func (s *Service) UnbanUser(ctx context.Context, user string, channel *string) (bool, error) {
	b, me, err := s.banTarget(ctx, user, channel)
	if err != nil {
		return false, err
	}
	var lifted *store.Ban
	err = s.hooks.Write(ctx, s.store, EventUserUnbanned, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if lifted, err = tx.UnbanUser(ctx, user, b.ChannelID); err != nil || lifted == nil || b.ChannelID == "" || lifted.Shadow {
			return nil, err
		}
		return event(EventUserUnbanned, b.ChannelID, channelHook{User: me.UserID, Members: []string{user}}), nil
	})
	if err != nil || lifted == nil {
		return false, err
	}
	if b.ChannelID != "" && !lifted.Shadow {
		s.publishChannel(ctx, EventUserUnbanned, b.ChannelID, user, nil)
	}
	return true, nil
}

// banTarget checks that the caller may ban or unban user from channel.
func (s *Service) banTarget(ctx context.Context, user string, channel *string) (*store.Ban, auth.Identity, error) {
	if err := store.CheckUserID("user", user); err != nil {
		return nil, auth.Identity{}, err
	}
	if channel == nil {
		me, err := auth.Caller(ctx)
		if err != nil {
			return nil, me, err
		}
		if !me.IsAdmin() {
			return nil, me, auth.Forbidden("only admins ban from the whole app; give a channel to ban from it")
		}
		return &store.Ban{UserID: user}, me, nil
	}
	a, me, err := s.access(ctx, "channel", *channel)
	if err != nil {
		return nil, me, err
	}
	if !canModerate(a, me) {
		return nil, me, auth.Forbidden("only the owners and moderators of channel %q and admins may ban from it", *channel)
	}
	if !me.IsAdmin() {
		m, err := s.store.MembershipsOf(ctx, user, []string{*channel})
		if err != nil {
			return nil, me, err
		}
		if m[0] != nil && m[0].Role != store.ChannelRoleMember {
			return nil, me, auth.Forbidden("%q is an owner or moderator of channel %q: only an admin may ban it", user, *channel)
		}
	}
	return &store.Ban{UserID: user, ChannelID: *channel}, me, nil
}
