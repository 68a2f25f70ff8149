package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
)

// Chat events travel on the event bus: channel events on the channel's
// topic (messageAdded and channelEvents both read it), notifications on
// each user's topic (myEvents). Requests and jobs publish them through the
// Service.

// Types of channel events.
const (
	EventMessageNew       = "message.new"
	EventMessageUpdated   = "message.updated"
	EventMessageDeleted   = "message.deleted"
	EventMessagePinned    = "message.pinned"
	EventMessageUnpinned  = "message.unpinned"
	EventReactionNew      = "reaction.new"
	EventReactionDeleted  = "reaction.deleted"
	EventTypingStart      = "typing.start"
	EventTypingStop       = "typing.stop"
	EventMessageRead      = "message.read"
	EventMemberAdded      = "member.added"
	EventMemberRemoved    = "member.removed"
	EventMemberJoined     = "member.joined"
	EventMemberLeft       = "member.left"
	EventMemberRole       = "member.role_changed"
	EventMemberInvited    = "member.invited"
	EventInviteRejected   = "member.invite_rejected"
	EventChannelUpdated   = "channel.updated"
	EventChannelFrozen    = "channel.frozen"
	EventChannelUnfrozen  = "channel.unfrozen"
	EventUserBanned       = "user.banned"
	EventUserUnbanned     = "user.unbanned"
	EventChannelDeleted   = "channel.deleted"
	EventChannelTruncated = "channel.truncated"
)

// Types of user events.
const (
	EventNotificationMessageNew  = "notification.message_new"
	EventNotificationMarkRead    = "notification.mark_read"
	EventNotificationAdded       = "notification.added_to_channel"
	EventNotificationRemovedFrom = "notification.removed_from_channel"
	EventNotificationInvited     = "notification.invited"
	EventNotificationMarkUnread  = "notification.mark_unread"
	EventChannelHidden           = "channel.hidden"
	EventChannelVisible          = "channel.visible"
	// EventNotificationThreadRead: the user read a thread (the event's
	// message is its parent) on another connection.
	EventNotificationThreadRead = "notification.thread_read"
)

// ChannelEvent is one event of a channel, as channelEvents delivers it.
// It carries everything its subscribers need (the message with its
// author, the user), so delivering it costs no query.
type ChannelEvent struct {
	Type      string         `json:"type"`
	Channel   string         `json:"channel"`
	User      *store.User    `json:"user,omitempty"`
	Message   *store.Message `json:"message,omitempty"`
	CreatedAt time.Time      `json:"at"`
	// Removals is the channel's MemberRemovals when the event was made
	// (0: not carried, in events published before every event carried
	// it). Removed lists everyone a member.removed event's removal took
	// out.
	Removals int64    `json:"rm,omitempty"`
	Removed  []string `json:"removed,omitempty"`
}

// UserEvent is one notification for a user, as myEvents delivers it.
type UserEvent struct {
	Type             string         `json:"type"`
	Channel          *string        `json:"channel,omitempty"`
	Message          *store.Message `json:"message,omitempty"`
	TotalUnreadCount int            `json:"total"`
	UnreadChannels   int            `json:"channels"`
	CreatedAt        time.Time      `json:"at"`
}

// ChannelTopic is the bus topic of a channel's events.
func ChannelTopic(channelID string) string { return "chat:c:" + channelID }

// UserChatTopic is the bus topic of a user's chat notifications.
func UserChatTopic(userID string) string { return "chat:u:" + userID }

// isRemoval reports whether a member event takes members out of the
// channel: an owner removed them, or they left.
func isRemoval(typ string) bool { return typ == EventMemberRemoved || typ == EventMemberLeft }

// publishChannelEvent publishes ev on its channel's topic.
func (s *Service) publishChannelEvent(ctx context.Context, ev *ChannelEvent) error {
	data, err := json.Marshal(ev)
	if err == nil {
		err = s.bus.PublishRaw(ctx, ChannelTopic(ev.Channel), data)
	}
	if err != nil {
		return fmt.Errorf("chat: publish %s on channel %s: %w", ev.Type, ev.Channel, err)
	}
	return nil
}

// messageNewOnce is how long a message.new stays marked published, so that
// the message's job, which normally runs within a second, does not publish
// it again. A job later than that (workers down for ten minutes) publishes
// it a second time: messageAdded skips it, channelEvents delivers it twice.
const messageNewOnce = 10 * time.Minute

// publishMessageNew publishes a new message's message.new event, with the
// channel's member removals when it was sent, unless it was published
// already: the request that sent the message publishes it at once, and the
// message's durable job again in case that request's node stopped first.
// It reports whether this call published it.
func (s *Service) publishMessageNew(ctx context.Context, m *store.Message, removals int64) (bool, error) {
	ev := &ChannelEvent{Type: EventMessageNew, Channel: m.ChannelID, User: m.Sender, Message: m, CreatedAt: m.CreatedAt, Removals: removals}
	data, err := json.Marshal(ev)
	published := false
	if err == nil {
		published, err = s.bus.PublishOnce(ctx, ChannelTopic(m.ChannelID), "message.new:"+m.ID.String(), messageNewOnce, data)
	}
	if err != nil {
		return false, fmt.Errorf("chat: publish message.new on channel %s: %w", m.ChannelID, err)
	}
	return published, nil
}

// publishSent publishes the message.new event of a message
// store.SendMessage has just sent (see publishMessageNew).
func (s *Service) publishSent(ctx context.Context, m *store.Message) error {
	if !m.Sent || m.Sender == nil {
		return nil // not just sent, or its author could not be read: the job publishes it
	}
	_, err := s.publishMessageNew(ctx, m, m.SentRemovals)
	return err
}

// publishUserEvents publishes notifications, one per user, in one round trip.
func (s *Service) publishUserEvents(ctx context.Context, users []string, evs []*UserEvent) {
	msgs := make([]bus.Message, 0, len(users))
	var enc userEventEncoder
	for i, u := range users {
		data, err := enc.encode(evs[i])
		if err != nil {
			s.log.Warn("chat: encode notification", "user", u, "err", err)
			continue
		}
		msgs = append(msgs, bus.Message{Topic: UserChatTopic(u), Data: data})
	}
	if err := s.bus.PublishBatch(ctx, msgs); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: publish notifications", "users", len(users), "err", err)
	}
}

// userEventEncoder encodes user events as encoding/json would, but encodes
// each message once: the notifications of one message to a thousand
// members all carry it, and encoding it for each was 11% of the server's
// CPU while it delivered that message.
type userEventEncoder struct {
	message *store.Message
	encoded []byte
}

// userEventHead is a UserEvent without its message.
type userEventHead struct {
	Type             string    `json:"type"`
	Channel          *string   `json:"channel,omitempty"`
	TotalUnreadCount int       `json:"total"`
	UnreadChannels   int       `json:"channels"`
	CreatedAt        time.Time `json:"at"`
}

func (e *userEventEncoder) encode(ev *UserEvent) ([]byte, error) {
	head, err := json.Marshal(userEventHead{ev.Type, ev.Channel, ev.TotalUnreadCount, ev.UnreadChannels, ev.CreatedAt})
	if err != nil || ev.Message == nil {
		return head, err
	}
	if ev.Message != e.message {
		if e.encoded, err = json.Marshal(ev.Message); err != nil {
			return nil, err
		}
		e.message = ev.Message
	}
	data := make([]byte, 0, len(head)+len(e.encoded)+len(`"message":,`))
	data = append(data, `{"message":`...)
	data = append(data, e.encoded...)
	data = append(data, ',')
	return append(data, head[1:]...), nil
}

// publishChannel publishes an event of a channel, with userID as its user.
// These events (edits, deletions, reactions, typing, reads) are not
// replayed: one lost while Redis is away is logged, and clients re-read on
// reconnect.
func (s *Service) publishChannel(ctx context.Context, typ, channel, userID string, msg *store.Message) {
	ev := &ChannelEvent{Type: typ, Channel: channel, Message: msg}
	// Every event carries the channel's count of member removals, read
	// after the change it reports committed: a subscriber's readGuard then
	// refuses it to a member removed before, whose own member.removed
	// event may come later or be lost.
	n, err := s.store.ChannelMemberRemovals(ctx, ev.Channel)
	if err != nil {
		// Not published, like an event the bus could not take: without
		// the count a removed member could get it, and asking every
		// subscriber to check its membership would send them all to
		// the database that just failed.
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: event not published", "type", ev.Type, "channel", ev.Channel, "err", err)
		return
	}
	ev.Removals = n
	ev.User = s.profiles(ctx, []string{userID})[userID]
	s.sendChannelEvent(ctx, ev)
}

// sendChannelEvent publishes ev, which carries its removal count and user.
func (s *Service) sendChannelEvent(ctx context.Context, ev *ChannelEvent) {
	ev.CreatedAt = time.Now().UTC()
	if err := s.publishChannelEvent(ctx, ev); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "chat: event not published", "type", ev.Type, "channel", ev.Channel, "err", err)
	}
}
