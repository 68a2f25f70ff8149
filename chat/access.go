package chat

import (
	"context"
	"errors"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Who may do what in a channel. Type messaging: only members read, write
// and subscribe. Type livestream: any signed-in user reads and
// subscribes, members write. Owners and admins manage the channel and its
// members; admins may do everything members may.

// access loads a channel with the caller's role in it.
func (s *Service) access(ctx context.Context, field, id string) (*store.ChannelAccess, auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, me, err
	}
	if _, err := store.ParseChannelID(field, id); err != nil {
		return nil, me, err
	}
	a, err := s.store.ChannelForUser(ctx, id, me.UserID)
	return a, me, err
}

// messageAccess loads a message and the caller's access to its channel.
func (s *Service) messageAccess(ctx context.Context, field, raw string) (*store.Message, *store.ChannelAccess, auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, nil, me, err
	}
	id, err := store.ParseID(field, raw)
	if err != nil {
		return nil, nil, me, err
	}
	m, err := s.store.Message(ctx, id)
	if err == nil && !s.visible(ctx, m, me.UserID) {
		err = store.NotFound("message", raw) // shadowed, or from a user the caller blocks
	}
	if err != nil {
		return nil, nil, me, err
	}
	a, err := s.store.ChannelForUser(ctx, m.ChannelID, me.UserID)
	if err != nil {
		return nil, nil, me, err
	}
	return m, a, me, nil
}

// CanRead reports whether me may read a channel: members and admins, and
// anyone for livestream channels.
func CanRead(a *store.ChannelAccess, me auth.Identity) bool {
	return a.Role != "" || me.IsAdmin() || a.Channel.Type == store.ChannelLivestream
}

func requireRead(a *store.ChannelAccess, me auth.Identity) error {
	if !CanRead(a, me) {
		return auth.Forbidden("you are not a member of channel %q", a.Channel.ID)
	}
	return nil
}

// readableOrNone follows a lookup for a query that answers null for what
// does not exist: found is false, with no error, when the lookup found
// nothing, and with FORBIDDEN when the caller may not read it.
func readableOrNone(a *store.ChannelAccess, me auth.Identity, err error) (found bool, _ error) {
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err == nil {
		err = requireRead(a, me)
	}
	return err == nil, err
}

// ContentHidden reports whether a channel was listed to the caller by its
// profile alone (one it may join but not read): its messages, pins and
// members read as none, its lastMessage as null, so that a list asking
// for them still answers for every other channel.
func ContentHidden(ch *store.Channel) bool { return ch.ProfileOnly }

func requireWrite(a *store.ChannelAccess, me auth.Identity) error {
	if a.Role == "" && !me.IsAdmin() {
		return auth.Forbidden("only members of channel %q may write to it", a.Channel.ID)
	}
	return requireNotBanned(a, me)
}

// requireNotBanned refuses a user under a hard ban from the channel or
// the app. (A shadow ban refuses nothing: it must not show.)
func requireNotBanned(a *store.ChannelAccess, me auth.Identity) error {
	if a.Banned && !me.IsAdmin() {
		return auth.Forbidden("you are banned from channel %q", a.Channel.ID)
	}
	return nil
}

// requireOwner allows the channel's owners, unless banned from it (an
// admin's ban stops an owner's management too; an admin hands the
// channel over), and admins.
func requireOwner(a *store.ChannelAccess, me auth.Identity) error {
	if me.IsAdmin() {
		return nil
	}
	if a.Role != store.ChannelRoleOwner {
		return auth.Forbidden("only the owners of channel %q and admins may do this", a.Channel.ID)
	}
	return requireNotBanned(a, me)
}

func requireMember(a *store.ChannelAccess) error {
	if a.Role == "" {
		return auth.Forbidden("you are not a member of channel %q", a.Channel.ID)
	}
	return nil
}
