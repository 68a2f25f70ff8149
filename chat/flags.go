package chat

import (
	"context"
	"errors"
	"strings"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Flags: anyone flags what it may read (a message, an activity) or
// another user. Admins handle every flag; a channel's owners and
// moderators (not banned from it) those of its messages; others see none.
// Acting on a flag calls the same methods a moderator would
// (DeleteMessage, BanUser), so their checks, events and counts follow.

// Flag reports exactly one of a message, a user or an activity, with an
// optional reason. Flagging a target again while the caller's first flag
// of it is open returns that flag, unchanged.
func (s *Service) Flag(ctx context.Context, target store.FlagTarget, reason *string) (*store.Flag, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	given := 0
	for _, p := range []*string{target.Message, target.User, target.Activity} {
		if p != nil {
			given++
		}
	}
	if given != 1 {
		return nil, store.Invalid("target", "give exactly one of message, user and activity")
	}
	if reason != nil && *reason == "" {
		reason = nil
	}
	if reason != nil {
		if err := store.CheckText("reason", *reason, store.MaxFlagReason); err != nil {
			return nil, err
		}
	}
	f := store.Flag{ID: store.NewID(), FlaggedByID: me.UserID, Reason: reason}
	var flagged *store.Message
	switch {
	case target.Message != nil:
		// What message(id) would say: unknown (or another's shadowed
		// message) NOT_FOUND, a channel the caller may not read FORBIDDEN.
		m, a, _, err := s.messageAccess(ctx, "target.message", *target.Message)
		if err == nil {
			err = requireRead(a, me)
		}
		if err != nil {
			return nil, err
		}
		f.TargetKind, f.TargetID, f.ChannelID, f.SubjectID = store.FlagMessage, m.ID.String(), m.ChannelID, m.UserID
		flagged = m
	case target.User != nil:
		user := *target.User
		if err := store.CheckUserID("target.user", user); err != nil {
			return nil, err
		}
		if user == me.UserID {
			return nil, store.Invalid("target.user", "you cannot flag yourself")
		}
		if _, err := s.store.User(ctx, user); err != nil {
			return nil, err
		}
		f.TargetKind, f.TargetID, f.SubjectID = store.FlagUser, user, user
	default:
		id, err := store.ParseID("target.activity", *target.Activity)
		if err != nil {
			return nil, err
		}
		if s.readActivity == nil {
			return nil, errors.New("chat: flag: no activity reader configured")
		}
		// The feeds product's own read rule: as activity(id) would say.
		act, err := s.readActivity(ctx, id.String())
		if err != nil {
			return nil, err
		}
		if act == nil {
			return nil, store.NotFound("activity", *target.Activity)
		}
		f.TargetKind, f.TargetID, f.SubjectID = store.FlagActivity, act.ID.String(), act.ActorID
	}
	if f.TargetKind != store.FlagMessage {
		return s.store.AddFlag(ctx, f)
	}
	var added *store.Flag
	err = s.hooks.Write(ctx, s.store, EventMessageFlagged, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if added, err = tx.AddFlag(ctx, f); err != nil || added.ID != f.ID {
			return nil, err // or flagged already: no new flag
		}
		return event(EventMessageFlagged, f.ChannelID, channelHook{User: me.UserID, Message: flagged,
			Flag: &flagHook{ID: f.ID.String(), By: me.UserID, Reason: f.Reason}}), nil
	})
	return added, err
}

// Flags lists the flags of a status (nil: open ones) the caller handles,
// newest first: every flag for an admin, those of the messages of the
// channels it owns or moderates for anyone else (none for most users).
func (s *Service) Flags(ctx context.Context, status *store.FlagStatus, first *int, after *string) (store.Page[*store.Flag], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Flag]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.Flag]{}, err
	}
	st := store.FlagOpen
	if status != nil {
		st = *status
	}
	if me.IsAdmin() {
		return s.store.Flags(ctx, st, n, pos)
	}
	return s.store.ModeratedFlags(ctx, me.UserID, st, n, pos)
}

// ResolveFlag closes an open flag the caller handles: DISMISS leaves its
// target alone; DELETE_MESSAGE (message flags) deletes the message as
// deleteMessage does; BAN_USER bans the flag's subject as banUser does,
// from the message's channel for a message flag, from the app for the
// others (which only admins handle). If the action is refused, the flag
// stays open.
func (s *Service) ResolveFlag(ctx context.Context, id string, action store.FlagAction) (*store.Flag, error) {
	f, me, err := s.flagAccess(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	if f.Status != store.FlagOpen {
		return nil, closedFlag(f)
	}
	if action == store.FlagDeleteMessage && f.TargetKind != store.FlagMessage {
		return nil, store.Invalid("action", "DELETE_MESSAGE is for message flags; flag %s is about a %s", id, strings.ToLower(string(f.TargetKind)))
	}
	var closed *store.Flag
	// The flag's row stays locked while the action runs (on connections
	// of its own), so two resolutions of one flag run one after the
	// other: the second finds it closed and acts on nothing.
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		locked, err := tx.FlagForUpdate(ctx, f.ID)
		if err != nil {
			return err
		}
		if locked.Status != store.FlagOpen {
			return closedFlag(locked)
		}
		if err := s.actOnFlag(ctx, locked, action); err != nil {
			return err
		}
		closed, err = tx.CloseFlag(ctx, f.ID, action, me.UserID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return closed, nil
}

// actOnFlag does what action says to a flag's target, through the same
// methods the matching mutations call.
func (s *Service) actOnFlag(ctx context.Context, f *store.Flag, action store.FlagAction) error {
	switch action {
	case store.FlagDeleteMessage:
		_, err := s.DeleteMessage(ctx, f.TargetID)
		return err
	case store.FlagBanUser:
		var channel *string
		if f.TargetKind == store.FlagMessage {
			channel = &f.ChannelID
		}
		_, err := s.BanUser(ctx, f.SubjectID, channel, nil, false, f.Reason)
		return err
	}
	return nil
}

// flagAccess loads a flag the caller handles: any, for an admin; a
// message flag, for the owners and moderators of its channel who are not
// banned from it.
func (s *Service) flagAccess(ctx context.Context, field, raw string) (*store.Flag, auth.Identity, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, me, err
	}
	id, err := store.ParseID(field, raw)
	if err != nil {
		return nil, me, err
	}
	f, err := s.store.Flag(ctx, id)
	if err != nil || me.IsAdmin() {
		return f, me, err
	}
	if f.TargetKind == store.FlagMessage {
		a, err := s.store.ChannelForUser(ctx, f.ChannelID, me.UserID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, me, err
		}
		if err == nil && canModerate(a, me) {
			return f, me, nil
		}
		return nil, me, auth.Forbidden("only admins, and the owners and moderators of channel %q, may handle flag %s", f.ChannelID, raw)
	}
	return nil, me, auth.Forbidden("only admins may handle flag %s", raw)
}

// closedFlag is the CONFLICT of acting on a flag that is closed.
func closedFlag(f *store.Flag) error {
	return store.Conflict("flag %s is %s already", f.ID, strings.ToLower(string(f.Status)))
}
