package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AttachmentThumb is what the thumbnail worker learned of an uploaded
// image, written into the attachments that carry it.
type AttachmentThumb struct {
	UploadID uuid.UUID
	ThumbKey string
	// Width and Height are the image's, upright (EXIF orientation applied).
	Width, Height int
}

// setThumb puts t into the attachment of its upload in list, and reports
// whether anything changed (a retried job changes nothing).
func setThumb(list []Attachment, t AttachmentThumb) bool {
	changed := false
	for i := range list {
		a := &list[i]
		if a.UploadID == nil || *a.UploadID != t.UploadID {
			continue
		}
		if a.ThumbKey != t.ThumbKey {
			a.ThumbKey, changed = t.ThumbKey, true
		}
		if a.Width == nil || *a.Width != t.Width || a.Height == nil || *a.Height != t.Height {
			w, h := t.Width, t.Height
			a.Width, a.Height, changed = &w, &h, true
		}
	}
	return changed
}

// SetMessageAttachmentThumb writes an upload's thumbnail into the
// attachments of message id, under the message's row lock (so that two
// jobs updating two images of one message keep both). It returns the
// message and whether it changed; a message that is gone is (nil, false).
// updated_at stays: a thumbnail is no edit.
func (s *Store) SetMessageAttachmentThumb(ctx context.Context, id uuid.UUID, t AttachmentThumb) (*Message, bool, error) {
	m, err := scanMessage(s.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: lock message %s: %w", id, err)
	}
	if !setThumb(m.Attachments, t) {
		return m, false, nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE messages SET attachments = $2 WHERE id = $1`, id, m.Attachments); err != nil {
		return nil, false, fmt.Errorf("store: set thumbnail of message %s: %w", id, err)
	}
	return m, true, nil
}

// SetActivityAttachmentThumb is SetMessageAttachmentThumb for an activity.
func (s *Store) SetActivityAttachmentThumb(ctx context.Context, id uuid.UUID, t AttachmentThumb) (*Activity, bool, error) {
	a, err := scanActivity(s.db.QueryRow(ctx, `SELECT `+activityColumns+` FROM activities WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: lock activity %s: %w", id, err)
	}
	if !setThumb(a.Attachments, t) {
		return a, false, nil
	}
	if _, err := s.db.Exec(ctx, `UPDATE activities SET attachments = $2 WHERE id = $1`, id, a.Attachments); err != nil {
		return nil, false, fmt.Errorf("store: set thumbnail of activity %s: %w", id, err)
	}
	return a, true, nil
}

// SetUploadThumbnail records an upload's thumbnail key and the image's
// upright size (the thumbnail worker's, which applied the EXIF
// orientation that completeUpload's header read could not). Call it with
// the upload's row locked.
func (s *Store) SetUploadThumbnail(ctx context.Context, id uuid.UUID, key string, width, height int) error {
	if _, err := s.db.Exec(ctx, `UPDATE uploads SET thumb_key = $2, width = $3, height = $4 WHERE id = $1`, id, key, width, height); err != nil {
		return fmt.Errorf("store: set upload thumbnail: %w", err)
	}
	return nil
}

// UploadObjectsJob is the payload of the job that deletes storage objects
// whose upload rows are gone: written in the transaction that deleted the
// rows, so that objects are never left behind by a crash between the two.
type UploadObjectsJob struct {
	Keys []string `json:"keys"`
}

// UploadObjectsKind deletes the objects of an UploadObjectsJob.
const UploadObjectsKind = "upload.objects.delete"

// DeleteOrphanUploads deletes up to limit uploads never attached and
// created before cutoff (pending ones never completed included), oldest
// first, and in the same statement's transaction enqueues the deletion of
// their objects and thumbnails. Rows another transaction holds (an attach
// under way) are skipped. It returns how many rows it deleted; call it
// inside a transaction.
func (s *Store) DeleteOrphanUploads(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	rows, err := s.db.Query(ctx, `
		DELETE FROM uploads WHERE id IN (
			SELECT id FROM uploads WHERE attached_at IS NULL AND created_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING storage_key, thumb_key`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("store: delete orphan uploads: %w", err)
	}
	var keys []string
	n := 0
	for rows.Next() {
		var key string
		var thumb *string
		if err := rows.Scan(&key, &thumb); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: delete orphan uploads: %w", err)
		}
		n++
		keys = append(keys, key)
		if thumb != nil {
			keys = append(keys, *thumb)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: delete orphan uploads: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := s.EnqueueJob(ctx, UploadObjectsKind, UploadObjectsJob{Keys: keys}); err != nil {
		return 0, err
	}
	return n, nil
}
