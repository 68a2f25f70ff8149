package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brookhq/brook/store"
)

// The pending limit counts the owner's own pending uploads in the window,
// and completing one makes it READY with its thumbnail job for images.
func TestUploadsPendingLimitAndReady(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	owner := "upl-" + store.NewID().String()[:8]
	if _, err := s.UpsertUsers(ctx, []store.UserChange{{ID: owner}}); err != nil {
		t.Fatal(err)
	}
	mk := func() (*store.Upload, error) {
		id := store.NewID()
		return s.CreateUpload(ctx, &store.Upload{ID: id, OwnerID: owner, Filename: "a.png", ContentType: "image/png",
			Size: 10, Kind: store.AttachmentImage, Key: "u/" + id.String()}, 2, time.Hour)
	}
	first, err := mk()
	if err != nil || first.Status != store.UploadPending || first.OwnerID != owner {
		t.Fatalf("create: %+v %v", first, err)
	}
	if _, err := mk(); err != nil {
		t.Fatal(err)
	}
	if _, err := mk(); !errors.Is(err, store.ErrTooManyUploads) {
		t.Fatalf("third pending upload: %v", err)
	}
	w, h := 3, 4
	var ready *store.Upload
	err = s.InTx(ctx, func(tx *store.Store) error {
		var err error
		ready, err = tx.MarkUploadReady(ctx, first.ID, "image/png", &w, &h)
		return err
	})
	if err != nil || ready.Status != store.UploadReady || *ready.MimeType != "image/png" || *ready.Width != 3 || ready.CompletedAt == nil {
		t.Fatalf("ready: %+v %v", ready, err)
	}
	var jobs int
	if err := s.DB().QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = $1 AND payload->>'uploadId' = $2`,
		store.UploadThumbnailKind, first.ID.String()).Scan(&jobs); err != nil || jobs != 1 {
		t.Fatalf("thumbnail jobs: %d %v", jobs, err)
	}
	// Completing frees a pending slot.
	if _, err := mk(); err != nil {
		t.Fatalf("after completing one: %v", err)
	}
	if _, err := s.Upload(ctx, store.NewID(), false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown upload: %v", err)
	}
	_, _ = s.DB().Exec(ctx, `DELETE FROM jobs WHERE kind = $1 AND payload->>'uploadId' = $2`, store.UploadThumbnailKind, first.ID.String())
}
