package chat

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// SetAttachmentThumb writes an uploaded image's thumbnail into the
// attachments of message id, inside tx (the thumbnail job's transaction),
// and returns the step that publishes message.updated after the commit, so
// that open rooms swap the full image for the thumbnail. A message that is
// gone, or already has it, publishes nothing.
func (s *Service) SetAttachmentThumb(ctx context.Context, tx *store.Store, id uuid.UUID, t store.AttachmentThumb) (func(context.Context), error) {
	m, changed, err := tx.SetMessageAttachmentThumb(ctx, id, t)
	if err != nil || !changed || m.DeletedAt != nil {
		return nil, err
	}
	return func(ctx context.Context) {
		s.publishChannel(ctx, EventMessageUpdated, m.ChannelID, m.UserID, s.withReactions(ctx, m))
	}, nil
}
