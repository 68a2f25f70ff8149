package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

// graphiqlIntrospection is the shape of the query GraphiQL sends when it
// loads: one named operation, its root field __schema, the rest in
// fragments.
const graphiqlIntrospection = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
  }
}
fragment FullType on __Type { kind name fields(includeDeprecated: true) { name } }`

// In dev mode GraphiQL's schema fetch works before a token is pasted; any
// operation that reads data still needs one, and outside dev mode so does
// introspection.
func TestDevModeIntrospectionWithoutToken(t *testing.T) {
	dev := env.StartNode(t, brooktest.NodeOptions{Workers: -1, API: func(o *api.Options) { o.Dev = true }})

	r := dev.Query(t, "", graphiqlIntrospection, nil)
	var schema struct {
		Schema struct {
			QueryType, MutationType struct{ Name string }
			Types                   []struct{ Name string }
		} `json:"__schema"`
	}
	if r.Status != http.StatusOK || len(r.Errors) > 0 || json.Unmarshal(r.Data, &schema) != nil {
		t.Fatalf("dev introspection without a token: %d %+v", r.Status, r.Errors)
	}
	if schema.Schema.QueryType.Name != "Query" || schema.Schema.MutationType.Name != "Mutation" || len(schema.Schema.Types) < 10 {
		t.Fatalf("dev introspection without a token answered %s", r.Data)
	}

	// The other introspection roots, fragments at the root, and GET.
	for _, q := range []string{
		`{ __typename }`,
		`{ __type(name: "User") { name } }`,
		`query A { ...Root } fragment Root on Query { __typename ... on Query { __schema { queryType { name } } } }`,
	} {
		if r := dev.Query(t, "", q, nil); len(r.Errors) > 0 {
			t.Errorf("dev introspection %q without a token: %+v", q, r.Errors)
		}
	}
	if status, body := httpDo(t, http.MethodGet, dev.URL+"/query?query="+url.QueryEscape(`{ __schema { queryType { name } } }`), ""); status != http.StatusOK {
		t.Errorf("dev introspection over GET without a token: %d %s", status, body)
	}

	// Anything that reads data, even alongside introspection or dressed
	// up as it, still needs a token.
	for _, q := range []string{
		`{ me { id } }`,
		`{ __typename me { id } }`,
		`{ __schema: me { id } }`,
		`{ ...F } fragment F on Query { me { id } }`,
		`{ ... on Query { __typename user(id: "x") { id } } }`,
		`query A { __typename } query B { me { id } }`,
		`mutation { __typename }`,
		`{ __schema { queryType { name } }`, // does not parse
	} {
		if r := dev.Query(t, "", q, nil); r.Code() != "UNAUTHENTICATED" || r.Status != http.StatusUnauthorized {
			t.Errorf("dev %q without a token: %d %q, want 401 UNAUTHENTICATED", q, r.Status, r.Code())
		}
	}
	// A bad token is reported even on introspection.
	if r := dev.Query(t, "not-a-token", `{ __typename }`, nil); r.Code() != "UNAUTHENTICATED" {
		t.Errorf("dev introspection with a bad token: %q, want UNAUTHENTICATED", r.Code())
	}
	// Batches are not excused.
	if status, _ := httpDo(t, http.MethodPost, dev.URL+"/query", `[{"query":"{ __typename }"}]`); status != http.StatusUnauthorized {
		t.Errorf("dev batched introspection without a token: %d, want 401", status)
	}

	prod := env.StartNode(t, brooktest.NodeOptions{Workers: -1})
	if r := prod.Query(t, "", graphiqlIntrospection, nil); r.Code() != "UNAUTHENTICATED" || r.Status != http.StatusUnauthorized {
		t.Fatalf("introspection without a token outside dev mode: %d %q, want 401 UNAUTHENTICATED", r.Status, r.Code())
	}
	if status, _ := httpDo(t, http.MethodGet, prod.URL+"/query?query="+url.QueryEscape(`{ __typename }`), ""); status != http.StatusUnauthorized {
		t.Errorf("introspection over GET without a token outside dev mode: %d, want 401", status)
	}
}
