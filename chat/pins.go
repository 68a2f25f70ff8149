package chat

import (
	"context"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// Pins: members pin and unpin messages of their channels; a pin may
// expire, and an expired pin reads as none.

// PinMessage pins a message until expires (nil: for good); members and
// admins. Pinning again moves the pin to now.
func (s *Service) PinMessage(ctx context.Context, id string, expires *time.Time) (*store.Message, error) {
	m, a, me, err := s.messageAccess(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	if expires != nil {
		if !expires.After(time.Now()) {
			return nil, store.Invalid("expiresAt", "%s is past: give a time to come, or none to pin for good", expires.UTC().Format(time.RFC3339))
		}
	}
	pinned, err := s.store.PinMessage(ctx, m.ID, me.UserID, expires)
	if err != nil {
		return nil, err
	}
	s.publishChannel(ctx, EventMessagePinned, m.ChannelID, me.UserID, pinned)
	return pinned, nil
}

// UnpinMessage removes a message's pin; members and admins.
func (s *Service) UnpinMessage(ctx context.Context, id string) (*store.Message, error) {
	m, a, me, err := s.messageAccess(ctx, "id", id)
	if err != nil {
		return nil, err
	}
	if err := requireWrite(a, me); err != nil {
		return nil, err
	}
	unpinned, was, err := s.store.UnpinMessage(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	if was {
		s.publishChannel(ctx, EventMessageUnpinned, m.ChannelID, me.UserID, unpinned)
	}
	return unpinned, nil
}

// PinnedMessages lists a channel's pinned messages, the latest pinned
// first. The channel was read under the caller's access.
func (s *Service) PinnedMessages(ctx context.Context, ch *store.Channel, first *int, after *string) (store.Page[*store.Message], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	if ContentHidden(ch) {
		return store.Page[*store.Message]{Items: []*store.Message{}}, nil
	}
	n, pos, err := store.PageArgs(first, after, 25)
	if err != nil {
		return store.Page[*store.Message]{}, err
	}
	return s.store.PinnedMessages(ctx, ch.ID, me.UserID, n, pos)
}
