package chat

import (
	"context"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// beforeSend asks the app's before-send hook, when one is configured,
// about a message user is sending to channel: it returns the input to
// write (rewritten by the hook, or as it was), FORBIDDEN when the hook
// rejects it, or UNAVAILABLE when the hook failed and fails closed. With
// no hook it costs nothing.
func (s *Service) beforeSend(ctx context.Context, channel, user string, in store.MessageInput) (store.MessageInput, error) {
	if !s.hooks.HasBeforeSend() {
		return in, nil
	}
	d, err := s.hooks.BeforeSend(ctx, webhooks.BeforeSendRequest{Channel: channel, User: user, Message: webhooks.BeforeSendMessage{
		Text: in.Text, Data: in.Data, ParentID: in.ParentID, QuotedMessageID: in.QuotedMessageID, Mentioned: in.MentionedUserIDs}})
	if err != nil {
		return in, err
	}
	switch d.Action {
	case "reject":
		if d.Reason != "" {
			return in, auth.Forbidden("the message was rejected: %s", d.Reason)
		}
		return in, auth.Forbidden("the message was rejected")
	case "rewrite":
		if d.Text != nil {
			in.Text = *d.Text
		}
		if d.Data != nil {
			in.Data = d.Data
		}
		// The hook's text and data meet the same rules as the sender's.
		if _, _, _, err := store.CheckMessageInput(in); err != nil {
			return in, err
		}
	}
	return in, nil
}
