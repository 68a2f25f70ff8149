package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PreviewJob is the payload of a link preview job: the message or
// activity whose text has URL.
type PreviewJob struct {
	ID  uuid.UUID `json:"id"`
	URL string    `json:"url"`
}

// Link preview job kinds (payload PreviewJob). They are run by the
// preview workers, apart from the other jobs, so a slow site delays
// nothing else.
const (
	PreviewMessageKind  = "preview.message"
	PreviewActivityKind = "preview.activity"
)

// HasLink reports whether attachments hold a link preview.
func HasLink(attachments []Attachment) bool {
	for _, a := range attachments {
		if a.Type == AttachmentLink {
			return true
		}
	}
	return false
}

// CachedPreview returns what fetching url gave if it was fetched after
// since: found is false when it was not; a nil attachment with found is a
// page that gives no preview.
func (s *Store) CachedPreview(ctx context.Context, url string, since time.Time) (a *Attachment, found bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT preview FROM link_previews WHERE url = $1 AND fetched_at > $2`, url, since).Scan(&a)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: cached preview: %w", err)
	}
	return a, true, nil
}

// SavePreview records what fetching url gave now (nil: no preview).
func (s *Store) SavePreview(ctx context.Context, url string, a *Attachment) error {
	_, err := s.db.Exec(ctx, `INSERT INTO link_previews (url, fetched_at, preview) VALUES ($1, now(), $2)
		ON CONFLICT (url) DO UPDATE SET fetched_at = now(), preview = EXCLUDED.preview`, url, a)
	if err != nil {
		return fmt.Errorf("store: save preview: %w", err)
	}
	return nil
}

// DeleteOldPreviews deletes up to limit cached previews fetched before
// before, oldest first, and returns how many it deleted.
func (s *Store) DeleteOldPreviews(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM link_previews WHERE url IN (
		SELECT url FROM link_previews WHERE fetched_at < $1 ORDER BY fetched_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("store: delete old previews: %w", err)
	}
	return tag.RowsAffected(), nil
}

// previewCond is the condition under which a preview is added to a row's
// attachments: none is a preview yet, and there is room.
var previewCond = `NOT coalesce(attachments @> '[{"type":"LINK"}]', false)
	AND coalesce(jsonb_array_length(attachments), 0) < ` + strconv.Itoa(MaxAttachments)

// AddMessagePreview appends the link preview a to a message that is not
// deleted, whose text still has a.URL, and that has no preview yet and
// fewer than MaxAttachments attachments. It leaves updated_at alone: a
// preview is no edit. It returns the message, or nil when none changed.
func (s *Store) AddMessagePreview(ctx context.Context, id uuid.UUID, a Attachment) (*Message, error) {
	one, err := json.Marshal([]Attachment{a})
	if err != nil {
		return nil, fmt.Errorf("store: add message preview: %w", err)
	}
	m, err := scanMessage(s.db.QueryRow(ctx, `
		UPDATE messages SET attachments = coalesce(attachments, '[]'::jsonb) || $2::jsonb
		WHERE id = $1 AND deleted_at IS NULL AND strpos(text, $3) > 0 AND `+previewCond+`
		RETURNING `+messageColumns, id, string(one), a.URL))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: add message preview: %w", err)
	}
	return m, nil
}

// AddActivityPreview appends the link preview a to an activity whose
// object or data.text still has a.URL, under the conditions of
// AddMessagePreview. It returns the activity, or nil when none changed.
func (s *Store) AddActivityPreview(ctx context.Context, id uuid.UUID, a Attachment) (*Activity, error) {
	one, err := json.Marshal([]Attachment{a})
	if err != nil {
		return nil, fmt.Errorf("store: add activity preview: %w", err)
	}
	act, err := scanActivity(s.db.QueryRow(ctx, `
		UPDATE activities SET attachments = coalesce(attachments, '[]'::jsonb) || $2::jsonb
		WHERE id = $1 AND (strpos(object, $3) > 0 OR strpos(coalesce(data->>'text', ''), $3) > 0) AND `+previewCond+`
		RETURNING `+activityColumns, id, string(one), a.URL))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: add activity preview: %w", err)
	}
	return act, nil
}
