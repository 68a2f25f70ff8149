package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postTransport is gqlgen's POST transport (transport.POST of v0.17.98,
// with its default options) but for how it writes a response: gqlgen
// passes every response through json.Marshal, which re-reads the data it
// was handed to compact it and escape <, >, & and U+2028/9, a fifth of the
// server's CPU for a history page. A response that is data alone, already
// compact and with none of those characters, is the same bytes written as
// it is, so it is; any other goes through json.Marshal as before.
type postTransport struct{}

var _ graphql.Transport = postTransport{}

// Supports is transport.POST's: a POST of application/json that is not an
// upgrade.
func (postTransport) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	return r.Method == http.MethodPost && mediaType == "application/json"
}

// Do is transport.POST's, step for step.
func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Add("Content-Type", contentType)
	start := graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %+v", err)}))
		return
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("json request body could not be decoded: %+v body:%s", err, string(body))}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	rc, opErr := exec.CreateOperationContext(ctx, params)
	if opErr != nil {
		status := http.StatusOK
		if errcode.GetErrorKind(opErr) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
			if contentType == graphqlResponseJSON {
				status = http.StatusBadRequest
			}
		}
		w.WriteHeader(status)
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), opErr))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

const graphqlResponseJSON = "application/graphql-response+json"

// responseContentType is gqlgen's choice from the Accept header, with no
// explicit headers and application/json as the default.
func responseContentType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case graphqlResponseJSON:
			return graphqlResponseJSON
		}
	}
	return graphqlResponseJSON
}

// writeResponse writes resp as json.Marshal would.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if resp != nil && len(resp.Errors) == 0 && resp.Label == "" && resp.Path == nil &&
		resp.HasNext == nil && len(resp.Extensions) == 0 && asMarshalled(resp.Data) {
		// One write, as gqlgen's: the response is one TCP write when it fits.
		b := make([]byte, 0, len(resp.Data)+len(`{"data":}`))
		b = append(b, `{"data":`...)
		b = append(b, resp.Data...)
		b = append(b, '}')
		// With its length, net/http sends the body as it is instead of
		// in chunks (a page of 50 messages is past its 2 KB buffer), one
		// write fewer per response.
		if h, ok := w.(http.ResponseWriter); ok {
			h.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		_, _ = w.Write(b)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		panic(fmt.Errorf("unable to marshal %s: %w", string(resp.Data), err))
	}
	_, _ = w.Write(b)
}

// asMarshalled reports whether json.Marshal would write data, a JSON value
// (gqlgen's marshallers write only valid JSON), unchanged: no whitespace
// outside strings to compact away, no character it escapes for HTML
// (<, >, &) and no U+2028 or U+2029 (whose UTF-8 starts with 0xE2; any
// 0xE2 sends the response the slow way, which is only slower).
func asMarshalled(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !notable[c] {
			continue // most bytes: letters, digits and punctuation
		}
		switch {
		case c == '<' || c == '>' || c == '&' || c == 0xE2:
			return false
		case c == '"':
			inString = !inString
		case c == '\\':
			i++ // only inside a string: skip the escaped byte
		case !inString: // whitespace outside a string
			return false
		}
	}
	return !inString
}

// notable marks the bytes asMarshalled must look at.
var notable = func() (t [256]bool) {
	for _, c := range []byte("<>&\xE2\"\\ \t\n\r") {
		t[c] = true
	}
	return t
}()
