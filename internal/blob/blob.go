// Package blob stores the bytes of uploaded files behind one interface,
// with two implementations: a directory on local disk (the zero
// configuration default; Brook itself serves its signed URLs) and any
// S3-compatible service (AWS S3, Cloudflare R2, MinIO, SeaweedFS) through
// minio-go's presigned URLs. Clients move file bytes straight to and from
// storage with those URLs; Brook's API never carries them.
package blob

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"time"
)

// ErrNotExist means no object is stored under the key.
var ErrNotExist = errors.New("blob: no such object")

// Store holds objects by key.
type Store interface {
	// SignPut returns a URL the client uploads one object to, with one
	// request, before expires: exactly size bytes of contentType.
	SignPut(ctx context.Context, key string, size int64, contentType string, expires time.Time) (Request, error)
	// SignGet returns a URL that downloads the object until expires, with
	// the given response headers.
	SignGet(ctx context.Context, key string, opts GetOptions, expires time.Time) (string, error)
	// Stat returns the object's size, or ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)
	// Open reads the object from its start, or returns ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores an object of size bytes (a thumbnail Brook made).
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Delete removes the object; a missing one is no error.
	Delete(ctx context.Context, key string) error
}

// Request is how a client makes a signed request: its method, URL and the
// headers it must send as they are.
type Request struct {
	Method  string
	URL     string
	Headers http.Header
}

// GetOptions are the headers a download is answered with.
type GetOptions struct {
	// ContentType is the type the file is served as.
	ContentType string
	// Filename, with Attachment, makes the browser save the file under
	// that name rather than show it.
	Filename   string
	Attachment bool
}

// Info describes a stored object.
type Info struct {
	Size int64
}

// keyPattern is what a key may look like: slash-separated segments of
// safe characters, no dot segments, so a key is also a safe path.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$`)

// ValidKey reports whether key may name an object.
func ValidKey(key string) bool { return len(key) <= 512 && keyPattern.MatchString(key) }

// errBadKey refuses keys outside keyPattern.
var errBadKey = errors.New("blob: invalid key")
