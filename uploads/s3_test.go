package uploads_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/blob"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/uploads"
)

// The whole path with files in a real S3-compatible server (SeaweedFS):
// presigned PUT and GET URLs straight to it.
func TestUploadRoundTripS3(t *testing.T) {
	t.Parallel()
	s3 := brooktest.StartS3(t)
	bucket := s3.NewBucket(t)
	t.Run("blob", func(t *testing.T) { s3Blob(t, bucket) })
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.Uploads = uploads.Options{Blob: bucket} }})
	if n.Uploads.Handler() != nil {
		t.Fatal("an S3 node serves files itself")
	}
	roundTrip(t, n)
}

// s3Blob checks the S3 store's own contract: the presigned PUT takes only
// the signed type and size, Stat, Open, Put and Delete work, and a
// download URL answers with the signed headers.
func s3Blob(t *testing.T, st *blob.S3) {
	ctx := context.Background()
	body := []byte("hello, S3")
	req, err := st.SignPut(ctx, "u/test/a.txt", int64(len(body)), "text/plain", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	send := func(typ string, b []byte) int {
		r, _ := http.NewRequest(req.Method, req.URL, bytes.NewReader(b))
		r.Header.Set("Content-Type", typ)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("image/png", body); code != http.StatusForbidden {
		t.Fatalf("PUT with another type: %d", code)
	}
	if code := send("text/plain", append(body, '!')); code != http.StatusForbidden {
		t.Fatalf("PUT of another size: %d", code)
	}
	if _, err := st.Stat(ctx, "u/test/a.txt"); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("stat after refused PUTs: %v", err)
	}
	// An expired URL is refused by the S3 server itself (presigned with
	// the shortest lifetime S3 has, 1 s, and sent 2 s later).
	short, err := st.SignPut(ctx, "u/test/a.txt", int64(len(body)), "text/plain", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if r, err := http.NewRequest(short.Method, short.URL, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	} else {
		r.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("PUT to an expired URL: %d", resp.StatusCode)
		}
	}
	if _, err := st.Stat(ctx, "u/test/a.txt"); !errors.Is(err, blob.ErrNotExist) {
		t.Fatalf("stat after a PUT to an expired URL: %v", err)
	}
	if code := send("text/plain", body); code != http.StatusOK {
		t.Fatalf("PUT: %d", code)
	}
	if info, err := st.Stat(ctx, "u/test/a.txt"); err != nil || info.Size != int64(len(body)) {
		t.Fatalf("stat: %+v %v", info, err)
	}
	rc, err := st.Open(ctx, "u/test/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("open: %q", got)
	}
	url, err := st.SignGet(ctx, "u/test/a.txt", blob.GetOptions{ContentType: "text/plain", Filename: "a.txt", Attachment: true}, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != "text/plain" ||
		resp.Header.Get("Content-Disposition") != "attachment; filename=a.txt" {
		t.Fatalf("GET: %d %v %q", resp.StatusCode, resp.Header, got)
	}
	resp, err = http.Get(strings.Replace(url, "a.txt?", "b.txt?", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered GET: %d", resp.StatusCode)
	}
	if err := st.Put(ctx, "t/test/b.jpg", bytes.NewReader(body), int64(len(body)), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"u/test/a.txt", "t/test/b.jpg"} {
		if err := st.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Open(ctx, k); !errors.Is(err, blob.ErrNotExist) {
			t.Fatalf("open %s after delete: %v", k, err)
		}
	}
}
