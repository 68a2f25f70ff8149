package blob_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/blob"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func newLocal(t *testing.T) (*blob.Local, *httptest.Server) {
	t.Helper()
	l, err := blob.NewLocal(t.TempDir(), secret, "")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(blob.FilesPath, l.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	l.SetBaseURL(srv.URL)
	return l, srv
}

func do(t *testing.T, method, url string, h http.Header, body []byte) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The signed URLs do exactly what they were signed for, and nothing else.
func TestLocalSignedURLs(t *testing.T) {
	ctx := context.Background()
	l, _ := newLocal(t)
	data := []byte("hello, file")
	put, err := l.SignPut(ctx, "u/a/b.txt", int64(len(data)), "text/plain", time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// A wrong type, a wrong size: refused, nothing stored.
	if code, _, body := do(t, put.Method, put.URL, http.Header{"Content-Type": {"image/png"}}, data); code != 400 || !strings.Contains(body, "Content-Type") {
		t.Fatalf("wrong type: %d %s", code, body)
	}
	if code, _, _ := do(t, put.Method, put.URL, put.Headers, append(data, 'x')); code != 400 {
		t.Fatalf("wrong size: %d", code)
	}
	if _, err := l.Stat(ctx, "u/a/b.txt"); err != blob.ErrNotExist {
		t.Fatalf("stat after refusals: %v", err)
	}
	// A tampered size: the signature no longer matches.
	if code, _, body := do(t, put.Method, strings.Replace(put.URL, "n=11", "n=12", 1), put.Headers, append(data, 'x')); code != 403 || !strings.Contains(body, "signature") {
		t.Fatalf("tampered: %d %s", code, body)
	}
	if code, _, body := do(t, put.Method, put.URL, put.Headers, data); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	// Once stored, the URL cannot replace it.
	if code, _, _ := do(t, put.Method, put.URL, put.Headers, data); code != 409 {
		t.Fatalf("second put: %d", code)
	}
	if info, err := l.Stat(ctx, "u/a/b.txt"); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("stat: %+v %v", info, err)
	}
	get, err := l.SignGet(ctx, "u/a/b.txt", blob.GetOptions{ContentType: "text/plain", Filename: "b.txt", Attachment: true}, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	code, h, body := do(t, "GET", get, nil, nil)
	if code != 200 || body != string(data) || h.Get("Content-Type") != "text/plain" ||
		h.Get("Content-Disposition") != `attachment; filename=b.txt` || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("get: %d %q %v", code, body, h)
	}
	if code, _, body := do(t, "GET", strings.Replace(get, "t=text%2Fplain", "t=text%2Fhtml", 1), nil, nil); code != 403 || !strings.Contains(body, "signature") {
		t.Fatalf("tampered get: %d %s", code, body)
	}
	expired, _ := l.SignGet(ctx, "u/a/b.txt", blob.GetOptions{ContentType: "text/plain"}, time.Now().Add(-time.Second))
	if code, _, body := do(t, "GET", expired, nil, nil); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("expired get: %d %s", code, body)
	}
	if err := l.Delete(ctx, "u/a/b.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, "u/a/b.txt"); err != blob.ErrNotExist {
		t.Fatalf("open after delete: %v", err)
	}
	if _, err := l.SignPut(ctx, "../etc/passwd", 1, "text/plain", time.Now()); err == nil {
		t.Fatal("a key with dot segments was signed")
	}
}
