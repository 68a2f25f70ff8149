package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/brookhq/brook/internal/auth"
)

// requireTokenOrDevIntrospection is requireToken, except that in dev mode
// an HTTP request without a token may introspect the schema. GraphiQL
// fetches the schema as soon as it loads, before anyone has pasted a token
// into its Headers tab; without this, the page opens on UNAUTHENTICATED and
// its Docs pane on "Error fetching schema". Outside dev mode every request
// still needs a token. A request that carries a token is always checked,
// so a bad token is reported rather than ignored.
func (s *Server) requireTokenOrDevIntrospection(next http.Handler) http.Handler {
	guarded := s.requireToken(next)
	if !s.opts.Dev {
		return guarded
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.FromHeader(r.Header.Get("Authorization")) == "" && introspectionOnly(requestQuery(r), s.opts.TokenLimit) {
			next.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// requestQuery is the operation text of a GraphQL HTTP request, read as
// gqlgen's GET and POST transports read it ("" when there is none). The
// body, which serveGraphQL has already read and bounded, is put back for
// the handler.
func requestQuery(r *http.Request) string {
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return ""
		}
		return q.Get("query")
	case http.MethodPost:
		if r.Body == nil {
			return ""
		}
		body, err := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return ""
		}
		var params graphql.RawParams
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&params) != nil {
			return ""
		}
		return params.Query
	}
	return ""
}

// introspectionOnly reports whether every operation of query is a query
// that selects only introspection fields at its root (__schema, __type,
// __typename), directly or through fragments. Every operation, not just
// the one the request names: whichever gqlgen picks, it reads no data. An
// unparsable query is not introspection (with a token, the client is told
// why it does not parse).
func introspectionOnly(query string, tokenLimit int) bool {
	if query == "" {
		return false
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, tokenLimit)
	if err != nil || len(doc.Operations) == 0 {
		return false
	}
	for _, op := range doc.Operations {
		if op.Operation != ast.Query || !introspectionFields(doc, op.SelectionSet, map[string]bool{}) {
			return false
		}
	}
	return true
}

// introspectionFields reports whether a root selection set holds only
// introspection fields. seen holds the fragments checked or being checked,
// so one that spreads itself (which validation refuses later) ends the
// walk rather than looping.
func introspectionFields(doc *ast.QueryDocument, set ast.SelectionSet, seen map[string]bool) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			switch sel.Name {
			case "__schema", "__type", "__typename":
			default:
				return false
			}
		case *ast.InlineFragment:
			if !introspectionFields(doc, sel.SelectionSet, seen) {
				return false
			}
		case *ast.FragmentSpread:
			if seen[sel.Name] {
				continue // checked already, or being checked
			}
			seen[sel.Name] = true
			frag := doc.Fragments.ForName(sel.Name)
			if frag == nil {
				return false
			}
			if !introspectionFields(doc, frag.SelectionSet, seen) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
