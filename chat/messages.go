package chat

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
	"github.com/brookhq/brook/workers"
)

// SendMessage sends a message (members, and admins); it marks the channel
// read for the sender. A client-chosen input.id makes a retry return the
// same message. Its subscribers get it at once; its job does the unread
// bookkeeping and the notifications.
func (s *Service) SendMessage(ctx context.Context, channel string, input store.MessageInput) (*store.Message, error) {
	if _, _, _, err := store.CheckMessageInput(input); err != nil {
		return nil, err
	}
	var err error
	if input.Stored, err = store.CheckAttachments("input.attachments", input.Attachments); err != nil {
		return nil, err
	}
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	if input, err = s.beforeSend(ctx, channel, me.UserID, input); err != nil {
		return nil, err
	}
	m, created, err := s.store.SendMessage(ctx, channel, me.UserID, store.SendAs{Member: a.Role != "", Moderator: canModerate(a, me)}, input)
	var cool *store.CooldownError
	switch {
	case errors.Is(err, store.ErrNotChannelMember):
		return nil, auth.Forbidden("you were removed from channel %q", channel)
	case errors.Is(err, store.ErrBanned):
		return nil, auth.Forbidden("you are banned from channel %q", channel)
	case errors.Is(err, store.ErrBlocked):
		return nil, auth.Forbidden("the other member of channel %q blocks you", channel)
	case errors.Is(err, store.ErrChannelFrozen):
		return nil, auth.Forbidden("channel %q is frozen: only its owners and moderators may write", channel)
	case errors.As(err, &cool):
		return nil, &ephemeral.RateLimitedError{What: "messages: the channel is in slow mode", Key: channel, RetryAfter: cool.Wait}
	}
	if err != nil || !created {
		return m, err
	}
	// Its subscribers get it now, not when the message's job has run
	// (which publishes it only if this did not).
	if err := s.publishSent(ctx, m); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: publish message.new; its job will", "message", m.ID, "err", err)
	}
	// Sending marked the channel read for the sender in PostgreSQL; Redis
	// says so now rather than when the job runs, so the sender's count
	// never shows more than the truth meanwhile. (An admin who is no
	// member has no read position.)
	if a.Role != "" {
		totals, err := s.state.RecordRead(ctx, &store.ReadPosition{ChannelID: channel, UserID: me.UserID, Seq: m.Seq, Big: s.big(a.Channel.MemberCount)})
		switch {
		case err != nil:
			s.log.Log(ctx, redisguard.LogLevel(err), "chat: record the sender's read in redis", "err", err)
		case totals.Known:
			// The sender's other devices show the channel read too.
			c := channel
			s.publishUserEvents(ctx, []string{me.UserID}, []*UserEvent{{Type: EventNotificationMarkRead,
				Channel: &c, TotalUnreadCount: totals.Total, UnreadChannels: totals.Channels, CreatedAt: m.CreatedAt}})
		}
	}
	workers.Wake(ctx, s.bus)
	return m, nil
}

// UpdateMessage changes a message's text and data (its author, admins).
func (s *Service) UpdateMessage(ctx context.Context, id, text string, data json.RawMessage) (*store.Message, error) {
	m, a, me, err := s.messageAccess(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err // an author no longer a member edits nothing
	}
	if m.UserID != me.UserID && !me.IsAdmin() {
		return nil, auth.Forbidden("only the author of message %s and admins may edit it", id)
	}
	// An edit that brings a URL to a message without a preview queues its
	// preview job with the edit, in one transaction (only then).
	preview := false
	err = s.inTxIf(ctx, s.previewURL(&store.Message{Text: text, Attachments: m.Attachments}) != "", func(st *store.Store) error {
		return s.hooks.Write(ctx, st, EventMessageUpdated, func(tx *store.Store) (*webhooks.Event, error) {
			if m, err = tx.UpdateMessage(ctx, m.ID, text, data); err != nil {
				return nil, err
			}
			if preview, err = s.queuePreview(ctx, tx, m); err != nil {
				return nil, err
			}
			return &webhooks.Event{Type: EventMessageUpdated, Key: "channel:" + m.ChannelID, At: m.UpdatedAt,
				Payload: messageHook{Channel: m.ChannelID, Message: m, User: me.UserID}}, nil
		})
	})
	if err != nil {
		return nil, err
	}
	if preview {
		s.previews.Wake()
	}
	s.publishChannel(ctx, EventMessageUpdated, m.ChannelID, me.UserID, s.withReactions(ctx, m))
	return m, nil
}

// DeleteMessage soft-deletes a message (its author, the channel's owners,
// admins); a second delete changes nothing.
func (s *Service) DeleteMessage(ctx context.Context, id string) (*store.Message, error) {
	m, a, me, err := s.messageAccess(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	if m.UserID != me.UserID && !canModerate(a, me) {
		return nil, auth.Forbidden("only the author of message %s, the channel's owners and moderators, and admins may delete it", id)
	}
	var deleted bool
	err = s.hooks.Write(ctx, s.store, EventMessageDeleted, func(tx *store.Store) (*webhooks.Event, error) {
		if m, deleted, err = tx.DeleteMessage(ctx, m.ID); err != nil || !deleted {
			return nil, err
		}
		return &webhooks.Event{Type: EventMessageDeleted, Key: "channel:" + m.ChannelID, At: m.UpdatedAt,
			Payload: messageHook{Channel: m.ChannelID, Message: m, User: me.UserID}}, nil
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		s.publishChannel(ctx, EventMessageDeleted, m.ChannelID, me.UserID, s.withReactions(ctx, m))
	}
	return m, nil
}

// SendReaction adds the caller's reaction of a kind to a message.
func (s *Service) SendReaction(ctx context.Context, message, kind string) (*store.Message, error) {
	return s.react(ctx, message, kind, EventReactionNew, (*store.Store).AddMessageReaction)
}

// DeleteReaction removes the caller's reaction of a kind from a message.
func (s *Service) DeleteReaction(ctx context.Context, message, kind string) (*store.Message, error) {
	return s.react(ctx, message, kind, EventReactionDeleted, (*store.Store).DeleteMessageReaction)
}

// react adds or removes the caller's reaction to a message (change reports
// whether anything changed) and announces it on the channel, and to
// webhooks with the change, as typ.
func (s *Service) react(ctx context.Context, message, kind, typ string,
	change func(st *store.Store, ctx context.Context, message uuid.UUID, userID, kind string) (bool, error)) (*store.Message, error) {
	if err := store.CheckReactionKind("kind", kind); err != nil {
		return nil, err
	}
	m, a, me, err := s.messageAccess(ctx, "message", message)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	var changed bool
	err = s.hooks.Write(ctx, s.store, typ, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if changed, err = change(tx, ctx, m.ID, me.UserID, kind); err != nil || !changed {
			return nil, err
		}
		return event(typ, m.ChannelID, channelHook{User: me.UserID, Message: m, Reaction: &reactionHook{Kind: kind, User: me.UserID}}), nil
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.publishChannel(ctx, typ, m.ChannelID, me.UserID, s.withReactions(ctx, m))
	}
	return m, nil
}

// withReactions fills a message's reaction counts for an event, so its
// subscribers need no query for them.
func (s *Service) withReactions(ctx context.Context, m *store.Message) *store.Message {
	counts, err := s.store.MessageReactionCounts(ctx, []uuid.UUID{m.ID})
	if err == nil {
		c := *m
		c.Reactions = counts[0]
		if c.Reactions == nil {
			c.Reactions = []store.ReactionCount{}
		}
		return &c
	}
	return m
}

// SendTypingEvent tells the channel's subscribers the caller is typing (or
// stopped). Not stored.
func (s *Service) SendTypingEvent(ctx context.Context, channel string, typing *bool) (bool, error) {
	a, me, err := s.access(ctx, "channel", channel)
	if err != nil {
		return false, err
	}
	if err := requireWrite(a, me); err != nil {
		return false, err
	}
	typ := EventTypingStart
	if typing != nil && !*typing {
		typ = EventTypingStop
	}
	s.publishChannel(ctx, typ, channel, me.UserID, nil)
	return true, nil
}

// Message returns a message the caller may read, or nil when there is none.
func (s *Service) Message(ctx context.Context, id string) (*store.Message, error) {
	m, a, me, err := s.messageAccess(ctx, "id", id)
	if found, err := readableOrNone(a, me, err); !found {
		return nil, err
	}
	return m, nil
}

// HistoryWindow says which window of a channel's history to read: the
// newest, before or after a cursor, or around a message.
type HistoryWindow struct {
	Last   *int
	Before *string
	After  *string
	Around *string
	// With is what the newest window (or one before a cursor) reads in
	// its messages' statement.
	With store.HistoryExtras
}

// History is a window of a channel's history (top-level messages and
// replies shown in the channel), in the order they were sent: the last
// messages before the cursor before (default: the newest), the first ones
// after the cursor after, or those around a message. The channel was read
// under the caller's access.
func (s *Service) History(ctx context.Context, ch *store.Channel, w HistoryWindow) (store.Page[*store.Message], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	if ContentHidden(ch) {
		return store.Page[*store.Message]{Items: []*store.Message{}}, nil
	}
	n := 50
	if w.Last != nil {
		var err error
		if n, err = store.PageSize("last", *w.Last); err != nil {
			return store.Page[*store.Message]{}, err
		}
	}
	given := 0
	for _, p := range []*string{w.Before, w.After, w.Around} {
		if p != nil && *p != "" {
			given++
		}
	}
	if given > 1 {
		return store.Page[*store.Message]{}, store.Invalid("around", "give at most one of before, after and around")
	}
	switch {
	case w.After != nil && *w.After != "":
		pos, err := store.ParsePos("after", *w.After)
		if err != nil {
			return store.Page[*store.Message]{}, err
		}
		return s.store.ChannelHistoryAfter(ctx, ch.ID, me.UserID, n, pos)
	case w.Around != nil && *w.Around != "":
		pos, err := s.historyPos(ctx, ch, *w.Around)
		if err != nil {
			return store.Page[*store.Message]{}, err
		}
		return s.store.ChannelHistoryAround(ctx, ch.ID, me.UserID, n, pos)
	}
	var pos int64
	if w.Before != nil && *w.Before != "" {
		var err error
		if pos, err = store.ParsePos("before", *w.Before); err != nil {
			return store.Page[*store.Message]{}, err
		}
	}
	return s.store.ChannelHistoryWith(ctx, ch.ID, me.UserID, n, pos, w.With)
}

// historyPos is where a message is in its channel's history: its own
// position, or, for a thread reply not shown in the channel, its thread's.
func (s *Service) historyPos(ctx context.Context, ch *store.Channel, raw string) (int64, error) {
	id, err := store.ParseID("around", raw)
	if err != nil {
		return 0, err
	}
	me, err := auth.Caller(ctx)
	if err != nil {
		return 0, err
	}
	m, err := s.store.Message(ctx, id)
	if err == nil && (m.ChannelID != ch.ID || !s.visible(ctx, m, me.UserID)) {
		err = store.NotFound("message in channel "+ch.ID, raw)
	}
	if err != nil {
		return 0, err
	}
	if !m.InChannel() {
		if m, err = s.store.Message(ctx, *m.ParentID); err != nil {
			return 0, err
		}
	}
	return m.Pos, nil
}

// Replies is a page of a thread's replies in the order they were sent.
func (s *Service) Replies(ctx context.Context, parent *store.Message, first *int, after *string) (store.Page[*store.Message], error) {
	n, pos := 25, int64(0)
	if first != nil {
		var err error
		if n, err = store.PageSize("first", *first); err != nil {
			return store.Page[*store.Message]{}, err
		}
	}
	if after != nil && *after != "" {
		var err error
		if pos, err = store.ParsePos("after", *after); err != nil {
			return store.Page[*store.Message]{}, err
		}
	}
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	return s.store.Replies(ctx, parent.ID, me.UserID, n, pos)
}

// SearchMessages finds messages whose text matches query, newest first, in
// the caller's channels or in one channel the caller may read.
func (s *Service) SearchMessages(ctx context.Context, query string, channel *string, first *int, after *string) (store.Page[*store.Message], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	if channel != nil {
		a, _, err := s.access(ctx, "channel", *channel)
		if err != nil {
			return store.Page[*store.Message]{}, err
		}
		if err := requireRead(a, me); err != nil {
			return store.Page[*store.Message]{}, err
		}
	}
	return s.store.SearchMessages(ctx, me.UserID, query, channel, n, pos)
}

// ChannelWithHistory is Channel(id) and then History of it with w, in one
// round trip where the store can: the page is read alongside the channel
// and returned only when Channel returns the channel, so it is the page
// History would return then. page is nil where it was not read that way
// (a window other than the newest or one before a cursor, a read a replica
// may serve, a failed page statement): call History then, as before.
func (s *Service) ChannelWithHistory(ctx context.Context, id string, w HistoryWindow) (_ *store.Channel, page *store.Page[*store.Message], _ error) {
	n, pos, ok := newestWindow(w)
	if !ok {
		ch, err := s.Channel(ctx, id)
		return ch, nil, err
	}
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := store.ParseChannelID("id", id); err != nil {
		return nil, nil, err
	}
	a, p, ok, err := s.store.ChannelForUserWithHistory(ctx, id, me.UserID, n, pos, w.With)
	if !ok {
		ch, err := s.Channel(ctx, id)
		return ch, nil, err
	}
	ch, err := s.channelFrom(ctx, a, me, err)
	if err != nil || ch == nil || ContentHidden(ch) {
		return ch, nil, err
	}
	return ch, p, nil
}

// newestWindow is History's page size and position for w when it asks for
// the newest messages or those before a cursor, and valid; not ok for any
// other window, left to History (and its errors).
func newestWindow(w HistoryWindow) (n int, pos int64, ok bool) {
	if w.After != nil && *w.After != "" || w.Around != nil && *w.Around != "" {
		return 0, 0, false
	}
	n = 50
	var err error
	if w.Last != nil {
		if n, err = store.PageSize("last", *w.Last); err != nil {
			return 0, 0, false
		}
	}
	if w.Before != nil && *w.Before != "" {
		if pos, err = store.ParsePos("before", *w.Before); err != nil {
			return 0, 0, false
		}
	}
	return n, pos, true
}
