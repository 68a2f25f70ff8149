package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/auth"
)

// UploadStatus says whether an upload's bytes were checked.
type UploadStatus string

// Upload states.
const (
	// UploadPending: created; the client uploads, then completes it.
	UploadPending UploadStatus = "PENDING"
	// UploadReady: completed (checked); it may be attached.
	UploadReady UploadStatus = "READY"
)

// MarshalGQL writes the status as its GraphQL enum value.
func (s UploadStatus) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL reads a GraphQL enum value.
func (s *UploadStatus) UnmarshalGQL(v any) error {
	return UnmarshalEnum(s, v, "status", "upload status", UploadPending, UploadReady)
}

// Upload is a file a user uploads straight to storage.
type Upload struct {
	ID      uuid.UUID
	OwnerID string
	// Filename is the client's name for the file (no path).
	Filename string
	// ContentType is the type the client claimed; MimeType the one Brook
	// found in the bytes at completion.
	ContentType string
	Size        int
	// Kind is IMAGE, VIDEO, AUDIO or FILE.
	Kind   AttachmentType
	Status UploadStatus
	// Key is where storage holds the bytes; ThumbKey the thumbnail's.
	Key      string
	MimeType *string
	Width    *int
	Height   *int
	ThumbKey *string
	// AttachedTo is "message:<id>" or "activity:<id>" once attached.
	AttachedTo  *string
	CreatedAt   time.Time
	CompletedAt *time.Time
	AttachedAt  *time.Time
}

// UploadThumbnailKind is the job completeUpload enqueues, in its
// transaction, for every image: its handler (the thumbnail worker) makes
// the thumbnail, stores it and sets the upload's thumb_key.
const UploadThumbnailKind = "upload.thumbnail"

// UploadThumbnailJob is an UploadThumbnailKind job's payload.
type UploadThumbnailJob struct {
	UploadID uuid.UUID `json:"uploadId"`
}

const uploadColumns = `id, owner_id, filename, content_type, size, kind, status, storage_key, mime_type, width, height,
	thumb_key, attached_to, created_at, completed_at, attached_at`

func scanUpload(row pgx.Row) (*Upload, error) {
	u := &Upload{}
	err := row.Scan(&u.ID, &u.OwnerID, &u.Filename, &u.ContentType, &u.Size, &u.Kind, &u.Status, &u.Key, &u.MimeType,
		&u.Width, &u.Height, &u.ThumbKey, &u.AttachedTo, &u.CreatedAt, &u.CompletedAt, &u.AttachedAt)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ErrTooManyUploads means the owner has as many pending uploads, created
// within the window CreateUpload was given, as it allows.
var ErrTooManyUploads = errors.New("store: too many pending uploads")

// CreateUpload inserts a PENDING upload, unless its owner already has
// maxPending pending uploads created within window (ErrTooManyUploads;
// maxPending 0: no limit). One statement either way.
func (s *Store) CreateUpload(ctx context.Context, u *Upload, maxPending int, window time.Duration) (*Upload, error) {
	row := s.db.QueryRow(ctx, `
		INSERT INTO uploads (id, owner_id, filename, content_type, size, kind, storage_key)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE $8 = 0 OR (SELECT count(*) FROM uploads WHERE owner_id = $2 AND status = 'PENDING'
			AND created_at > now() - make_interval(secs => $9)) < $8
		RETURNING `+uploadColumns,
		u.ID, u.OwnerID, u.Filename, u.ContentType, u.Size, u.Kind, u.Key, maxPending, window.Seconds())
	out, err := scanUpload(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTooManyUploads
	}
	if err != nil {
		return nil, fmt.Errorf("store: create upload: %w", err)
	}
	return out, nil
}

// Upload reads an upload (NotFound when there is none); lock, inside a
// transaction, locks its row until the commit.
func (s *Store) Upload(ctx context.Context, id uuid.UUID, lock bool) (*Upload, error) {
	q := `SELECT ` + uploadColumns + ` FROM uploads WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	u, err := scanUpload(s.db.QueryRow(ctx, q, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("upload", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: read upload: %w", err)
	}
	return u, nil
}

// MarkUploadReady records what completeUpload found in a PENDING upload's
// bytes and makes it READY; images get their thumbnail job in the same
// transaction. Call it inside one.
func (s *Store) MarkUploadReady(ctx context.Context, id uuid.UUID, mimeType string, width, height *int) (*Upload, error) {
	u, err := scanUpload(s.db.QueryRow(ctx, `
		UPDATE uploads SET status = 'READY', mime_type = $2, width = $3, height = $4, completed_at = now()
		WHERE id = $1 AND status = 'PENDING' RETURNING `+uploadColumns, id, mimeType, width, height))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, NotFound("upload", id.String())
	}
	if err != nil {
		return nil, fmt.Errorf("store: complete upload: %w", err)
	}
	if u.Kind == AttachmentImage {
		if _, err := s.EnqueueJob(ctx, UploadThumbnailKind, UploadThumbnailJob{UploadID: id}); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// DeleteUpload deletes an upload's row.
func (s *Store) DeleteUpload(ctx context.Context, id uuid.UUID) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete upload: %w", err)
	}
	return nil
}

// SetUploadThumb records an upload's thumbnail key.
func (s *Store) SetUploadThumb(ctx context.Context, id uuid.UUID, key string) error {
	if _, err := s.db.Exec(ctx, `UPDATE uploads SET thumb_key = $2 WHERE id = $1`, id, key); err != nil {
		return fmt.Errorf("store: set upload thumbnail: %w", err)
	}
	return nil
}

// attachUploads is the one rule for attaching uploads, used by every send
// that stores attachments, inside its transaction: each upload named in
// stored (an element with an UploadID and no Key yet, as CheckAttachments
// left it) must be owner's, READY and attached nowhere; it is marked
// attached to target ("message:<id>", "activity:<id>") on its locked row,
// and its element filled in from what completeUpload found. A send without
// uploads costs no statement; one with uploads, one (a refusal, two).
func (s *Store) attachUploads(ctx context.Context, owner, target, field string, stored []Attachment) error {
	var ids []uuid.UUID
	for _, a := range stored {
		if a.UploadID != nil && a.Key == "" {
			ids = append(ids, *a.UploadID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := s.db.Query(ctx, `
		UPDATE uploads SET attached_at = now(), attached_to = $3
		WHERE id = ANY($1) AND owner_id = $2 AND status = 'READY' AND attached_at IS NULL
		RETURNING `+uploadColumns, ids, owner, target)
	if err != nil {
		return fmt.Errorf("store: attach uploads: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Upload, error) { return scanUpload(r) })
	if err != nil {
		return fmt.Errorf("store: attach uploads: %w", err)
	}
	byID := make(map[uuid.UUID]*Upload, len(found))
	for _, u := range found {
		byID[u.ID] = u
	}
	for i := range stored {
		a := &stored[i]
		if a.UploadID == nil || a.Key != "" {
			continue
		}
		u := byID[*a.UploadID]
		if u == nil {
			return s.refuseAttach(ctx, owner, field+"."+strconv.Itoa(i)+".uploadId", *a.UploadID)
		}
		a.Type, a.Key, a.Filename = u.Kind, u.Key, u.Filename
		if u.ThumbKey != nil {
			a.ThumbKey = *u.ThumbKey
		}
		size := u.Size
		a.MimeType, a.Size, a.Width, a.Height = u.MimeType, &size, u.Width, u.Height
		if a.Title == nil {
			name := u.Filename
			a.Title = &name
		}
	}
	return nil
}

// refuseAttach says why an upload could not be attached (the statement
// that attaches found it wanting).
func (s *Store) refuseAttach(ctx context.Context, owner, field string, id uuid.UUID) error {
	u, err := s.Upload(ctx, id, false)
	switch {
	case errors.Is(err, ErrNotFound):
		return err
	case err != nil:
		return err
	case u.OwnerID != owner:
		return auth.Forbidden("%s: upload %s is another user's: attach your own uploads", field, id)
	case u.Status != UploadReady:
		return Invalid(field, "upload %s is not complete: call completeUpload after uploading its bytes", id)
	default:
		return Invalid(field, "upload %s is attached already: each upload goes in one message or activity", id)
	}
}
