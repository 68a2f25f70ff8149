// Package uploads is where files come into Brook: createUpload hands the
// client a signed URL to put the bytes straight into storage (local disk
// or S3; see internal/blob), completeUpload checks what was stored (size,
// the content type sniffed from the bytes against the kind's allowlist,
// an image's dimensions) and makes it READY, and attachments' URLs are
// signed when a message or activity is read. Attaching an upload is the
// store's rule, inside the send's transaction (store.CheckAttachments,
// then store.SendMessage / store.AddActivity).
package uploads

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers GIF with image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gabriel-vasile/mimetype"
	_ "golang.org/x/image/webp" // registers WebP with image.DecodeConfig

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Options configure the service.
type Options struct {
	Store *store.Store
	// Blob holds the files.
	Blob   blob.Store
	Limits Limits
	// UploadTTL is how long an upload URL is valid (0: 15 minutes).
	UploadTTL time.Duration
	// DownloadTTL is how long a download URL is valid at least (0: an
	// hour); see URL.
	DownloadTTL time.Duration
	Logger      *slog.Logger
}

// Service runs uploads.
type Service struct {
	store  *store.Store
	blob   blob.Store
	limits Limits
	upTTL  time.Duration
	getTTL time.Duration
	log    *slog.Logger
}

// New returns the service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, blob: opts.Blob, limits: opts.Limits.withDefaults(),
		upTTL: opts.UploadTTL, getTTL: opts.DownloadTTL, log: opts.Logger}
	if s.upTTL == 0 {
		s.upTTL = 15 * time.Minute
	}
	if s.getTTL == 0 {
		s.getTTL = time.Hour
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Blob is the store the files are in (the thumbnail and cleanup workers
// use it).
func (s *Service) Blob() blob.Store { return s.blob }

// Handler serves the local store's signed URLs (at blob.FilesPath); nil
// when files are in S3, which serves its own.
func (s *Service) Handler() http.Handler {
	if l, ok := s.blob.(*blob.Local); ok {
		return l.Handler()
	}
	return nil
}

// DeriveSecret derives the local store's URL-signing key from Brook's
// token secret, so that it needs no setting of its own and differs from
// it.
func DeriveSecret(tokenSecret []byte) []byte {
	m := hmac.New(sha256.New, tokenSecret)
	m.Write([]byte("brook uploads: local file URLs"))
	return m.Sum(nil)
}

// thumbnailType is the content type a thumbnail is served as: the
// thumbnail worker writes JPEG, or PNG (key ending .png) for images with
// transparency.
func thumbnailType(key string) string {
	if strings.HasSuffix(key, ".png") {
		return "image/png"
	}
	return "image/jpeg"
}

// Ticket is where and how a client uploads a file's bytes.
type Ticket struct {
	Upload    *store.Upload
	Request   blob.Request
	ExpiresAt time.Time
}

// uploadWindow is how far back the pending-uploads cap counts.
const uploadWindow = time.Hour

// CreateUpload records a PENDING upload of the caller's and returns the
// signed request that uploads its bytes: exactly size bytes of
// contentType, within UploadTTL.
func (s *Service) CreateUpload(ctx context.Context, filename, contentType string, size int) (*Ticket, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkFilename(filename); err != nil {
		return nil, err
	}
	kind, plain, ok := kindOf(contentType)
	if !ok {
		return nil, store.Invalid("contentType", "%q is not a type Brook accepts; use one of %s", truncate(contentType, 100), allowedTypes())
	}
	if limit := s.limits.of(kind); size <= 0 || size > limit {
		return nil, store.Invalid("size", "a %s must be 1 to %d bytes (%s); this one is %d", kindName(kind), limit, megabytes(limit), size)
	}
	id := store.NewID()
	key := "u/" + id.String()
	expires := time.Now().Add(s.upTTL).Truncate(time.Second)
	req, err := s.blob.SignPut(ctx, key, int64(size), plain, expires)
	if err != nil {
		return nil, err
	}
	maxPending := max(s.limits.MaxPending, 0)
	u, err := s.store.CreateUpload(ctx, &store.Upload{ID: id, OwnerID: me.UserID, Filename: filename, ContentType: plain,
		Size: size, Kind: kind, Key: key}, maxPending, uploadWindow)
	if errors.Is(err, store.ErrTooManyUploads) {
		return nil, &ephemeral.RateLimitedError{What: fmt.Sprintf("pending uploads (at most %d within an hour): complete or abandon some", maxPending),
			Key: me.UserID, RetryAfter: time.Minute}
	}
	if err != nil {
		return nil, err
	}
	return &Ticket{Upload: u, Request: req, ExpiresAt: expires}, nil
}

// sniffBytes is how much of a file the sniffer reads (mimetype's default).
const sniffBytes = 3072

// maxPixels bounds an image's area: larger ones would cost a thumbnail
// worker gigabytes to decode.
const maxPixels = 50_000_000

// CompleteUpload checks the caller's upload in storage and makes it
// READY: its size must be the declared one, and the type found in its
// bytes must be of the claimed kind. A file that fails is deleted (its row
// too): the client starts over with a new upload. Completing a READY
// upload returns it as it is.
func (s *Service) CompleteUpload(ctx context.Context, rawID string) (*store.Upload, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	id, err := store.ParseID("id", rawID)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Upload(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if u.OwnerID != me.UserID {
		return nil, auth.Forbidden("upload %s is another user's: only its owner completes it", id)
	}
	if u.Status == store.UploadReady {
		return u, nil
	}
	info, err := s.blob.Stat(ctx, u.Key)
	if errors.Is(err, blob.ErrNotExist) {
		if expired := u.CreatedAt.Add(s.upTTL); time.Now().After(expired) {
			return nil, store.Invalid("id", "nothing was uploaded, and the upload URL expired at %s: create a new upload", expired.UTC().Format(time.RFC3339))
		}
		return nil, store.Invalid("id", "nothing was uploaded yet: send the file's bytes to the uploadUrl first")
	}
	if err != nil {
		return nil, err
	}
	if info.Size != int64(u.Size) {
		return nil, s.refuse(ctx, u, store.Invalid("id", "the stored file is %d bytes, not the %d declared: create a new upload", info.Size, u.Size))
	}
	mimeType, width, height, err := s.inspect(ctx, u)
	if err != nil {
		var input *store.InputError
		if errors.As(err, &input) {
			return nil, s.refuse(ctx, u, err)
		}
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		locked, err := tx.Upload(ctx, id, true)
		if err != nil {
			return err
		}
		if locked.Status == store.UploadReady { // completed meanwhile
			u = locked
			return nil
		}
		u, err = tx.MarkUploadReady(ctx, id, mimeType, width, height)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// inspect sniffs an upload's type from its first bytes, checks it against
// the claimed kind, and reads an image's dimensions.
func (s *Service) inspect(ctx context.Context, u *store.Upload) (mimeType string, width, height *int, err error) {
	rc, err := s.blob.Open(ctx, u.Key)
	if err != nil {
		return "", nil, nil, err
	}
	defer rc.Close()
	head := make([]byte, sniffBytes)
	n, err := io.ReadFull(rc, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", nil, nil, fmt.Errorf("uploads: read %s: %w", u.Key, err)
	}
	head = head[:n]
	m := mimetype.Detect(head)
	if !sniffOK(u.Kind, m) {
		return "", nil, nil, store.Invalid("id", "the file's content is %s, which is not a %s Brook accepts (it was declared %s): create a new upload with its true type",
			m.String(), kindName(u.Kind), u.ContentType)
	}
	if u.Kind != store.AttachmentImage {
		return m.String(), nil, nil, nil
	}
	cfg, _, err := image.DecodeConfig(io.MultiReader(bytes.NewReader(head), rc))
	if err != nil {
		return "", nil, nil, store.Invalid("id", "the image could not be read (%s): create a new upload with a valid image", m.String())
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return "", nil, nil, store.Invalid("id", "the image is %dx%d pixels; at most %d megapixels are accepted", cfg.Width, cfg.Height, maxPixels/1_000_000)
	}
	return m.String(), &cfg.Width, &cfg.Height, nil
}

// refuse deletes an upload that failed its checks, file and row, and
// returns why it failed.
func (s *Service) refuse(ctx context.Context, u *store.Upload, why error) error {
	if err := s.blob.Delete(ctx, u.Key); err != nil {
		// The row stays, so the orphan sweep tries again later.
		s.log.Warn("uploads: delete a refused file", "upload", u.ID, "err", err)
		return why
	}
	if err := s.store.DeleteUpload(ctx, u.ID); err != nil {
		s.log.Warn("uploads: delete a refused upload's row", "upload", u.ID, "err", err)
	}
	return why
}

// URL is where a reader downloads an attachment's file: an uploaded
// file's signed URL, or an external file's address. It is only ever
// asked for inside a message or activity the caller may read, so reading
// a file follows the authorization of what it is attached to. The expiry
// is rounded, so that URLs repeat for a while (browsers cache them): a
// URL is valid for DownloadTTL at least and a quarter more at most.
func (s *Service) URL(ctx context.Context, a *store.Attachment) (string, error) {
	if a.Key == "" {
		return a.URL, nil
	}
	opts := blob.GetOptions{Filename: a.Filename, Attachment: a.Type == store.AttachmentFile}
	if a.MimeType != nil {
		opts.ContentType = *a.MimeType
	}
	return s.blob.SignGet(ctx, a.Key, opts, s.expiry())
}

// ThumbURL is where a reader downloads an attachment's thumbnail, or nil.
func (s *Service) ThumbURL(ctx context.Context, a *store.Attachment) (*string, error) {
	if a.ThumbKey == "" {
		if a.ThumbURL == "" {
			return nil, nil
		}
		return &a.ThumbURL, nil
	}
	u, err := s.blob.SignGet(ctx, a.ThumbKey, blob.GetOptions{ContentType: thumbnailType(a.ThumbKey)}, s.expiry())
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *Service) expiry() time.Time {
	step := s.getTTL / 4
	return time.Now().Truncate(step).Add(s.getTTL + step)
}

// RegisterJobs registers the service's jobs. The thumbnail job that
// completeUpload enqueues (store.UploadThumbnailKind) is the uploadjobs
// package's.
func (s *Service) RegisterJobs(r *workers.Runner) {
	r.Handle(store.UploadDeleteKind, s.deleteFiles)
}

// deleteFiles removes the files of a deleted message or activity, then
// their rows. Run again after a failure, it deletes what is left.
func (s *Service) deleteFiles(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.UploadDeleteJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	for _, id := range p.UploadIDs {
		u, err := tx.Upload(ctx, id, false)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys := []string{u.Key}
		if u.ThumbKey != nil {
			keys = append(keys, *u.ThumbKey)
		}
		for _, k := range keys {
			if err := s.blob.Delete(ctx, k); err != nil {
				return nil, err
			}
		}
		if err := tx.DeleteUpload(ctx, id); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func kindName(k store.AttachmentType) string {
	switch k {
	case store.AttachmentImage:
		return "image"
	case store.AttachmentVideo:
		return "video"
	case store.AttachmentAudio:
		return "audio file"
	}
	return "file"
}

func megabytes(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
