package blob

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Handler serves the store's signed URLs under FilesPath: PUT uploads an
// object, GET and HEAD download one. A request whose signature does not
// match, or that comes after its expiry, gets 403 with a body that says
// which. Any origin may call it (CORS): the signature, not a cookie, is
// what authorizes a request.
func (l *Local) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			l.servePut(w, r)
		case http.MethodGet, http.MethodHead:
			l.serveGet(w, r)
		default:
			h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
			refuse(w, http.StatusMethodNotAllowed, "use GET to download a file or PUT to upload one, at the URL Brook signed")
		}
	})
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// check verifies a request's signature and expiry; it answers the client
// and returns false when they fail.
func (l *Local) check(w http.ResponseWriter, r *http.Request, key string, fields ...string) bool {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("e"), 10, 64)
	want := l.sign(append([]string{methodOf(r), key, q.Get("e")}, fields...)...)
	if err != nil || !ValidKey(key) || !hmac.Equal([]byte(q.Get("s")), []byte(want)) {
		refuse(w, http.StatusForbidden, "this file URL's signature does not match: it was changed or not made by this server; ask Brook for a new URL")
		return false
	}
	if at := time.Unix(exp, 0); time.Now().After(at) {
		refuse(w, http.StatusForbidden, fmt.Sprintf("this file URL expired at %s; ask Brook for a new one", at.UTC().Format(time.RFC3339)))
		return false
	}
	return true
}

// methodOf is the method a request was signed for: HEAD is a GET's.
func methodOf(r *http.Request) string {
	if r.Method == http.MethodHead {
		return http.MethodGet
	}
	return r.Method
}

func (l *Local) servePut(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, FilesPath)
	q := r.URL.Query()
	typ, n := q.Get("t"), q.Get("n")
	if !l.check(w, r, key, n, typ) {
		return
	}
	size, _ := strconv.ParseInt(n, 10, 64)
	if got := r.Header.Get("Content-Type"); got != typ {
		refuse(w, http.StatusBadRequest, fmt.Sprintf("Content-Type must be %q, as this URL was signed for (got %q)", typ, got))
		return
	}
	if r.ContentLength >= 0 && r.ContentLength != size {
		refuse(w, http.StatusBadRequest, fmt.Sprintf("the body must be exactly %d bytes, as this URL was signed for (Content-Length is %d)", size, r.ContentLength))
		return
	}
	tmp, err := l.write(key, http.MaxBytesReader(w, r.Body, size+1), size)
	if errors.Is(err, errSize) {
		refuse(w, http.StatusBadRequest, fmt.Sprintf("the body must be exactly %d bytes, as this URL was signed for", size))
		return
	}
	if err != nil {
		refuse(w, http.StatusInternalServerError, "the file could not be stored; try again")
		return
	}
	defer os.Remove(tmp)
	// A link, not a rename: it fails when the object exists, so an upload
	// URL cannot replace a file once uploaded (and then checked by
	// completeUpload).
	p, _ := l.path(key)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			refuse(w, http.StatusConflict, "this file was uploaded already; create a new upload to send another")
			return
		}
		refuse(w, http.StatusInternalServerError, "the file could not be stored; try again")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (l *Local) serveGet(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, FilesPath)
	q := r.URL.Query()
	typ, disp := q.Get("t"), q.Get("d")
	if !l.check(w, r, key, typ, disp) {
		return
	}
	p, _ := l.path(key)
	f, err := os.Open(p)
	if err != nil {
		refuse(w, http.StatusNotFound, "this file no longer exists")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		refuse(w, http.StatusInternalServerError, "the file could not be read; try again")
		return
	}
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Content-Disposition", disp)
	h.Set("X-Content-Type-Options", "nosniff")
	// Files are served with no scripts allowed, whatever they hold.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox")
	h.Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
