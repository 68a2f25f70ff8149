package chat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Webhook events of channels and their members. Each is emitted on the
// transaction of its change, keyed by the channel so that a receiver gets
// one channel's events in the order of their changes. With no webhook
// wanting a type, emitting it costs nothing (webhooks.Service.Emit); the
// changes that have no transaction of their own get one only then
// (webhooks.Service.Write).

// Types of channel events only webhooks receive.
const (
	EventChannelCreated = "channel.created"
	EventMessageFlagged = "message.flagged"
)

// channelHook is the payload of the channel, member and reaction events
// webhooks receive.
type channelHook struct {
	Channel string `json:"channel"`
	// User made the change (the member who joined or left, the owner who
	// added or removed, the reacting user).
	User string `json:"user,omitempty"`
	// Members are the users the change concerns (added, removed,
	// invited, given a role).
	Members  []string       `json:"members,omitempty"`
	Role     string         `json:"role,omitempty"`
	Info     *channelInfo   `json:"channel_info,omitempty"`
	Message  *store.Message `json:"message,omitempty"`
	Reaction *reactionHook  `json:"reaction,omitempty"`
	Flag     *flagHook      `json:"flag,omitempty"`
}

// channelInfo is a channel as webhooks see it.
type channelInfo struct {
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Name            *string         `json:"name,omitempty"`
	Image           *string         `json:"image,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	CreatedBy       string          `json:"created_by"`
	CreatedAt       time.Time       `json:"created_at"`
	MemberCount     int             `json:"member_count"`
	JoinPolicy      string          `json:"join_policy,omitempty"`
	Frozen          bool            `json:"frozen"`
	CooldownSeconds int             `json:"cooldown_seconds"`
}

func infoOf(ch *store.Channel) *channelInfo {
	if ch == nil {
		return nil
	}
	return &channelInfo{ID: ch.ID, Type: ch.Type, Name: ch.Name, Image: ch.Image, Data: ch.Data, CreatedBy: ch.CreatedByID,
		CreatedAt: ch.CreatedAt, MemberCount: ch.MemberCount, JoinPolicy: string(ch.JoinPolicy), Frozen: ch.Frozen,
		CooldownSeconds: ch.CooldownSeconds}
}

// reactionHook is a chat reaction in a webhook payload.
type reactionHook struct {
	Kind string `json:"kind"`
	User string `json:"user"`
}

// flagHook is a flag in a webhook payload.
type flagHook struct {
	ID     string  `json:"id"`
	By     string  `json:"by"`
	Reason *string `json:"reason,omitempty"`
}

// emit writes the webhook deliveries of a change of channel on tx.
func (s *Service) emit(ctx context.Context, tx *store.Store, typ, channel string, p channelHook) error {
	p.Channel = channel
	return s.hooks.Emit(ctx, tx, webhooks.Event{Type: typ, Key: "channel:" + channel, At: time.Now().UTC(), Payload: p})
}

// event is a webhook event of a change of channel, for Write.
func event(typ, channel string, p channelHook) *webhooks.Event {
	p.Channel = channel
	return &webhooks.Event{Type: typ, Key: "channel:" + channel, At: time.Now().UTC(), Payload: p}
}
