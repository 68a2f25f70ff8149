package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/brookhq/brook/store"
)

// readBody reads a request body of at most limit bytes and puts it back on
// the request for the handlers after. A larger body is refused before it
// is read to the end.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, store.Invalid("", "the request body is larger than the limit of %d bytes", limit)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return nil, store.Invalid("", "the request body did not arrive within the server's read timeout (BROOK_READ_TIMEOUT); send it at once")
	}
	if err != nil {
		return nil, store.Invalid("", "the request body could not be read")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, nil
}

// isBatch reports whether a JSON body is an array of operations, as Apollo
// Client's batch link sends.
func isBatch(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// serveBatch runs the operations of a batched request one after the other
// and answers with the array of their responses. Each operation is checked
// and limited as if it came alone.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var ops []json.RawMessage
	if err := json.Unmarshal(body, &ops); err != nil {
		s.writeError(w, r, store.Invalid("", "the batched request is not a JSON array of operations"))
		return
	}
	if len(ops) == 0 || len(ops) > s.opts.BatchLimit {
		s.writeError(w, r, store.Invalid("", "a batched request holds 1 to %d operations, got %d", s.opts.BatchLimit, len(ops)))
		return
	}
	var out bytes.Buffer
	out.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			out.WriteByte(',')
		}
		sub := r.Clone(r.Context())
		sub.Body = io.NopCloser(bytes.NewReader(op))
		sub.ContentLength = int64(len(op))
		rec := &bufferWriter{header: http.Header{}}
		withErrorCodes(s.gql).ServeHTTP(rec, sub)
		out.Write(bytes.TrimSpace(rec.body.Bytes()))
	}
	out.WriteByte(']')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	// 200 whatever any one operation's fate: each carries its own errors.
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// bufferWriter collects one operation's response of a batch.
type bufferWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(status int)      { b.status = status }

// clientIP is the address a request came from. Brook does not trust
// X-Forwarded-For: behind a proxy, limits apply to the proxy's address
// unless the proxy itself enforces per-client limits.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
