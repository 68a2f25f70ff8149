package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/brookhq/brook/bus"
)

// Chat events travel on the event bus: channel events on the channel's
// topic (messageAdded and channelEvents both read it), notifications on
// each user's topic (myEvents). Both the API and the workers publish them.

// Types of channel events.
const (
	EventMessageNew      = "message.new"
	EventMessageUpdated  = "message.updated"
	EventMessageDeleted  = "message.deleted"
	EventReactionNew     = "reaction.new"
	EventReactionDeleted = "reaction.deleted"
	EventTypingStart     = "typing.start"
	EventTypingStop      = "typing.stop"
	EventMessageRead     = "message.read"
	EventMemberAdded     = "member.added"
	EventMemberRemoved   = "member.removed"
	EventChannelUpdated  = "channel.updated"
)

// Types of user events.
const (
	EventNotificationMessageNew  = "notification.message_new"
	EventNotificationMarkRead    = "notification.mark_read"
	EventNotificationAdded       = "notification.added_to_channel"
	EventNotificationRemovedFrom = "notification.removed_from_channel"
)

// ChannelEvent is one event of a channel, as channelEvents delivers it.
// It carries everything its subscribers need (the message with its
// author, the user), so delivering it costs no query.
type ChannelEvent struct {
	Type      string    `json:"type"`
	Channel   string    `json:"channel"`
	User      *User     `json:"user,omitempty"`
	Message   *Message  `json:"message,omitempty"`
	CreatedAt time.Time `json:"at"`
	// Removals is the channel's MemberRemovals when the event was made,
	// on message.new and member.removed (0: not carried). Removed lists
	// everyone a member.removed event's removal took out.
	Removals int64    `json:"rm,omitempty"`
	Removed  []string `json:"removed,omitempty"`
}

// UserEvent is one notification for a user, as myEvents delivers it.
type UserEvent struct {
	Type             string    `json:"type"`
	Channel          *string   `json:"channel,omitempty"`
	Message          *Message  `json:"message,omitempty"`
	TotalUnreadCount int       `json:"total"`
	UnreadChannels   int       `json:"channels"`
	CreatedAt        time.Time `json:"at"`
}

// ChannelTopic is the bus topic of a channel's events.
func ChannelTopic(channelID string) string { return "chat:c:" + channelID }

// UserChatTopic is the bus topic of a user's chat notifications.
func UserChatTopic(userID string) string { return "chat:u:" + userID }

// PublishChannelEvent publishes ev on its channel's topic.
func (s *Store) PublishChannelEvent(ctx context.Context, b *bus.Bus, ev *ChannelEvent) error {
	data, err := json.Marshal(ev)
	if err == nil {
		err = b.PublishRaw(ctx, ChannelTopic(ev.Channel), data)
	}
	if err != nil {
		return fmt.Errorf("store: publish %s on channel %s: %w", ev.Type, ev.Channel, err)
	}
	return nil
}

// PublishUserEvents publishes notifications, one per user, in one round trip.
func (s *Store) PublishUserEvents(ctx context.Context, b *bus.Bus, users []string, evs []*UserEvent) {
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
	if err := b.PublishBatch(ctx, msgs); err != nil {
		s.log.Warn("chat: publish notifications", "users", len(users), "err", err)
	}
}

// userEventEncoder encodes user events as encoding/json would, but encodes
// each message once: the notifications of one message to a thousand
// members all carry it, and encoding it for each was 11% of the server's
// CPU while it delivered that message.
type userEventEncoder struct {
	message *Message
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
