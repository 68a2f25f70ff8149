// Package uploadjobs runs the background work of uploaded files: the
// thumbnail of every image (the upload.thumbnail job completeUpload
// enqueues), and the sweep that deletes uploads never attached. Both are
// outbox jobs, idempotent and retried with backoff by the workers.
//
// It is apart from the product packages because it calls two of them:
// a thumbnail made after its image was attached goes into the message's
// (chat) or the activity's (feeds) attachments, and their live streams
// announce it.
package uploadjobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/thumbnail"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Options configure the jobs.
type Options struct {
	Store *store.Store
	Blob  blob.Store
	Chat  *chat.Service
	Feeds *feeds.Service
	// Logger receives what the jobs decided; nil means slog.Default().
	Logger *slog.Logger
	// Thumbnail bounds thumbnails (zero: thumbnail.DefaultOptions()).
	Thumbnail thumbnail.Options
	// MaxSourceBytes is the largest image read to make a thumbnail (0: 64
	// MB, above any upload limit; a larger object is left without one).
	MaxSourceBytes int64
	// ThumbnailTimeout bounds one thumbnail: reading, decoding, storing
	// (0: one minute; a timeout is retried).
	ThumbnailTimeout time.Duration
	// OrphanAge is BROOK_UPLOAD_ORPHAN_AGE: an upload not attached this
	// long after its creation is deleted (0: 24 hours).
	OrphanAge time.Duration
	// SweepEvery is how often the orphan sweep runs, on one node of the
	// cluster (0: every 10 minutes).
	SweepEvery time.Duration
	// SweepBatch is how many uploads one transaction of the sweep deletes
	// (0: 100).
	SweepBatch int
}

// Service runs the uploads' jobs.
type Service struct {
	opts Options
	log  *slog.Logger
	// lockedHook, in tests, runs once the thumbnail job holds the upload's
	// row lock and has set its thumbnail, before the commit.
	lockedHook func(ctx context.Context, tx *store.Store)
}

// New returns the service; RegisterJobs gives its jobs to the workers.
func New(o Options) *Service {
	if o.Thumbnail == (thumbnail.Options{}) {
		o.Thumbnail = thumbnail.DefaultOptions()
	}
	setDefault(&o.MaxSourceBytes, 64<<20)
	setDefault(&o.ThumbnailTimeout, time.Minute)
	setDefault(&o.OrphanAge, 24*time.Hour)
	setDefault(&o.SweepEvery, 10*time.Minute)
	setDefault(&o.SweepBatch, 100)
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{opts: o, log: log}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// orphansKind is the periodic orphan sweep.
const orphansKind = "upload.orphans"

// sweepBatches caps the batches one sweep deletes; the next run goes on.
const sweepBatches = 100

// RegisterJobs gives the workers the thumbnail job, the deletion of
// objects, and the periodic orphan sweep.
func (s *Service) RegisterJobs(r *workers.Runner) {
	// Alone: a thumbnail reads a file from storage and decodes it, so it
	// is not held in (or does not hold up) a batch of quick jobs.
	r.HandleAlone(store.UploadThumbnailKind, s.thumbnailJob)
	r.Handle(store.UploadObjectsKind, s.deleteObjectsJob)
	r.Every(orphansKind, s.opts.SweepEvery, s.sweepJob)
}

// thumbnailJob makes an image upload's thumbnail and records it. It is
// idempotent: an upload that has one, or is gone, is done; the object is
// written under a key derived from the upload's, so a retry overwrites it.
//
// Order against an attach of the same upload, which runs concurrently in a
// send's transaction: both hold the upload's row lock while they write.
// The attach copies the thumbnail key into the attachment if the row has
// one; this job, after setting it, writes it into the message or activity
// the row says the upload is attached to. Whichever goes second sees what
// the first committed, so the thumbnail is never lost.
func (s *Service) thumbnailJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.UploadThumbnailJob
	if err := job.Decode(&p); err != nil {
		s.log.Error("uploads: thumbnail job with a bad payload; dropped", "job", job.ID, "err", err)
		return nil, nil
	}
	u, err := tx.Upload(ctx, p.UploadID, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // swept or deleted since
	}
	if err != nil {
		return nil, err
	}
	if u.ThumbKey != nil || u.Kind != store.AttachmentImage {
		return nil, nil
	}

	res, err := s.makeThumbnail(ctx, u)
	if errors.Is(err, thumbnail.ErrInvalid) || errors.Is(err, blob.ErrNotExist) {
		// No retry can help: the image stays without a thumbnail (clients
		// show the full one) and the job ends.
		s.log.Warn("uploads: no thumbnail for this image", "upload", u.ID, "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err // storage or a timeout: retried with backoff
	}
	key := u.Key + ".thumb" + res.Ext
	if err := s.put(ctx, key, res); err != nil {
		return nil, err
	}

	u, err = tx.Upload(ctx, p.UploadID, true)
	if errors.Is(err, store.ErrNotFound) {
		// Swept while the thumbnail was made: its object is ours to delete.
		s.deleteQuietly(ctx, key)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := tx.SetUploadThumbnail(ctx, u.ID, key, res.SourceWidth, res.SourceHeight); err != nil {
		return nil, err
	}
	if s.lockedHook != nil {
		s.lockedHook(ctx, tx)
	}
	if u.AttachedTo == nil {
		return nil, nil // the attach copies it
	}
	t := store.AttachmentThumb{UploadID: u.ID, ThumbKey: key, Width: res.SourceWidth, Height: res.SourceHeight}
	return s.intoAttachments(ctx, tx, *u.AttachedTo, t)
}

// makeThumbnail reads the upload's object and makes its thumbnail.
func (s *Service) makeThumbnail(ctx context.Context, u *store.Upload) (thumbnail.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ThumbnailTimeout)
	defer cancel()
	r, err := s.opts.Blob.Open(ctx, u.Key)
	if err != nil {
		return thumbnail.Result{}, fmt.Errorf("uploads: open %s: %w", u.Key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, s.opts.MaxSourceBytes+1))
	if err != nil {
		return thumbnail.Result{}, fmt.Errorf("uploads: read %s: %w", u.Key, err)
	}
	if int64(len(data)) > s.opts.MaxSourceBytes {
		return thumbnail.Result{}, fmt.Errorf("%w: larger than %d bytes", thumbnail.ErrInvalid, s.opts.MaxSourceBytes)
	}
	return thumbnail.Make(data, s.opts.Thumbnail)
}

func (s *Service) put(ctx context.Context, key string, res thumbnail.Result) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ThumbnailTimeout)
	defer cancel()
	if err := s.opts.Blob.Put(ctx, key, bytes.NewReader(res.Data), int64(len(res.Data)), res.ContentType); err != nil {
		return fmt.Errorf("uploads: store thumbnail %s: %w", key, err)
	}
	return nil
}

// intoAttachments writes a thumbnail into the attachments of what the
// upload is attached to ("message:<id>" or "activity:<id>"), through the
// product that owns it, and returns its after-commit announcement.
func (s *Service) intoAttachments(ctx context.Context, tx *store.Store, target string, t store.AttachmentThumb) (func(context.Context), error) {
	kind, raw, _ := strings.Cut(target, ":")
	id, err := uuid.Parse(raw)
	if err != nil {
		s.log.Error("uploads: upload attached to an unknown target; thumbnail not copied", "upload", t.UploadID, "target", target)
		return nil, nil
	}
	switch kind {
	case "message":
		return s.opts.Chat.SetAttachmentThumb(ctx, tx, id, t)
	case "activity":
		return s.opts.Feeds.SetAttachmentThumb(ctx, tx, id, t)
	}
	s.log.Error("uploads: upload attached to an unknown target; thumbnail not copied", "upload", t.UploadID, "target", target)
	return nil, nil
}

// deleteObjectsJob deletes the objects of uploads whose rows are gone; a
// missing object is no error, so a retry after a crash deletes the rest.
func (s *Service) deleteObjectsJob(ctx context.Context, _ *store.Store, job store.Job) (func(context.Context), error) {
	var p store.UploadObjectsJob
	if err := job.Decode(&p); err != nil {
		s.log.Error("uploads: object deletion job with a bad payload; dropped", "job", job.ID, "err", err)
		return nil, nil
	}
	for _, key := range p.Keys {
		if err := s.opts.Blob.Delete(ctx, key); err != nil {
			return nil, fmt.Errorf("uploads: delete object %s: %w", key, err)
		}
	}
	return nil, nil
}

func (s *Service) deleteQuietly(ctx context.Context, key string) {
	if err := s.opts.Blob.Delete(ctx, key); err != nil {
		s.log.Warn("uploads: delete a thumbnail made for a deleted upload", "key", key, "err", err)
	}
}

// sweepJob deletes the uploads never attached within OrphanAge.
func (s *Service) sweepJob(ctx context.Context, _ *store.Store, _ store.Job) (func(context.Context), error) {
	_, err := s.DeleteOrphans(ctx, time.Now().Add(-s.opts.OrphanAge))
	return nil, err
}

// DeleteOrphans deletes the uploads never attached and created before
// cutoff, PENDING ones included, in batches of SweepBatch rows (at most
// sweepBatches of them), each its own transaction that deletes the rows
// and enqueues the deletion of their objects: a sweep killed midway leaves
// neither rows without objects' deletion nor a long transaction, and the
// next run goes on. It returns how many uploads it deleted.
func (s *Service) DeleteOrphans(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for range sweepBatches {
		var n int
		err := s.opts.Store.InTx(ctx, func(tx *store.Store) error {
			var err error
			n, err = tx.DeleteOrphanUploads(ctx, cutoff, s.opts.SweepBatch)
			return err
		})
		total += n
		if err != nil || n < s.opts.SweepBatch {
			if total > 0 {
				s.log.Info("uploads: orphan uploads deleted", "deleted", total)
			}
			return total, err
		}
	}
	s.log.Info("uploads: orphan uploads deleted; more remain for the next run", "deleted", total)
	return total, nil
}
