package feeds

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// SetAttachmentThumb writes an uploaded image's thumbnail into the
// attachments of activity id, inside tx (the thumbnail job's transaction),
// and returns the step that announces the change after the commit:
// feedUpdated streams showing the activity send it as updated.
func (s *Service) SetAttachmentThumb(ctx context.Context, tx *store.Store, id uuid.UUID, t store.AttachmentThumb) (func(context.Context), error) {
	_, changed, err := tx.SetActivityAttachmentThumb(ctx, id, t)
	if err != nil || !changed {
		return nil, err
	}
	return func(ctx context.Context) { s.publishActivityChanged(ctx, id, "") }, nil
}
