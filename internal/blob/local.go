package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FilesPath is where Brook's HTTP server serves a Local store's signed
// URLs (Local.Handler).
const FilesPath = "/files/"

// Local keeps objects as files under a directory. Its URLs point at
// Brook's own HTTP server (FilesPath) and carry an HMAC-SHA256 signature
// of everything the request may do: the method, the key, the expiry, and
// for an upload the exact size and content type, for a download the
// headers it is answered with. Nothing else authorizes a request.
type Local struct {
	dir    string
	secret []byte
	base   atomic.Pointer[string]
}

// NewLocal stores objects under dir, signing URLs with secret (at least 32
// bytes) for the server at baseURL (like http://localhost:8080; SetBaseURL
// may set it later, once the server listens).
func NewLocal(dir string, secret []byte, baseURL string) (*Local, error) {
	if len(secret) < 32 {
		return nil, errors.New("blob: the local store's signing secret must be at least 32 bytes")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	l := &Local{dir: dir, secret: secret}
	l.SetBaseURL(baseURL)
	return l, nil
}

// SetBaseURL sets the address signed URLs start with.
func (l *Local) SetBaseURL(u string) {
	u = strings.TrimRight(u, "/")
	l.base.Store(&u)
}

// Dir is the directory the objects are in.
func (l *Local) Dir() string { return l.dir }

func (l *Local) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", errBadKey
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// sign is the signature of one request's fields, joined unambiguously
// (no field holds a newline: keys are plain, the rest are checked).
func (l *Local) sign(fields ...string) string {
	m := hmac.New(sha256.New, l.secret)
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{'\n'})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (l *Local) url(key string, q url.Values) string {
	return *l.base.Load() + FilesPath + key + "?" + q.Encode()
}

// SignPut implements Store.
func (l *Local) SignPut(ctx context.Context, key string, size int64, contentType string, expires time.Time) (Request, error) {
	if !ValidKey(key) {
		return Request{}, errBadKey
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	n := strconv.FormatInt(size, 10)
	q := url.Values{"e": {exp}, "n": {n}, "t": {contentType}, "s": {l.sign(http.MethodPut, key, exp, n, contentType)}}
	return Request{Method: http.MethodPut, URL: l.url(key, q), Headers: http.Header{"Content-Type": {contentType}}}, nil
}

// SignGet implements Store.
func (l *Local) SignGet(ctx context.Context, key string, opts GetOptions, expires time.Time) (string, error) {
	if !ValidKey(key) {
		return "", errBadKey
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	disp := disposition(opts)
	q := url.Values{"e": {exp}, "t": {opts.ContentType}, "d": {disp}, "s": {l.sign(http.MethodGet, key, exp, opts.ContentType, disp)}}
	return l.url(key, q), nil
}

// disposition is the Content-Disposition of a download (RFC 6266; a
// non-ASCII filename is encoded as RFC 2231 says).
func disposition(o GetOptions) string {
	typ := "inline"
	if o.Attachment {
		typ = "attachment"
	}
	if o.Filename == "" {
		return typ
	}
	if d := mime.FormatMediaType(typ, map[string]string{"filename": o.Filename}); d != "" {
		return d
	}
	return typ
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	p, err := l.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotExist
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", key, err)
	}
	return Info{Size: fi.Size()}, nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	return f, nil
}

// Put implements Store: the object appears whole or not at all.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	tmp, err := l.write(key, r, size)
	if err != nil {
		return err
	}
	p, _ := l.path(key)
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	return nil
}

// errSize means a body was not of the size it was signed for.
var errSize = errors.New("blob: the body is not of the signed size")

// write copies exactly size bytes of r to a temporary file next to key's
// and returns its path.
func (l *Local) write(key string, r io.Reader, size int64) (string, error) {
	p, err := l.path(key)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = errSize
	}
	if err != nil {
		_ = os.Remove(f.Name())
		if errors.Is(err, errSize) {
			return "", err
		}
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	return f.Name(), nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}
