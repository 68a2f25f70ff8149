package api

import (
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"

	"github.com/brookhq/brook/graph"
)

// Responses are shared only for selections whose answer cannot depend on
// the subscriber: any field that can (ownReactions, a channel's unread
// count, an unknown one) or @defer makes the selection the subscriber's
// own; the key tells operations and variables apart (and sharedKey
// documents).
func TestShareKey(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	key := func(q string, vars map[string]any) string {
		t.Helper()
		doc, errs := gqlparser.LoadQuery(schema, q)
		if errs != nil {
			t.Fatalf("%s: %v", q, errs)
		}
		return shareKey(&graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars})
	}
	for _, c := range []struct {
		query  string
		shared bool
	}{
		{`subscription { messageAdded(channel: "messaging:a") { id text } }`, true},
		{`subscription { messageAdded(channel: "messaging:a") { __typename id user { id name } reactionCounts { kind count } } }`, true},
		{`subscription($s: Boolean!) { messageAdded(channel: "messaging:a") { id text @skip(if: $s) ... on Message { createdAt } ...F } } fragment F on Message { data }`, true},
		{`subscription { channelEvents(channel: "messaging:a") { type user { name } message { id text } } }`, true},
		{`subscription { messageAdded(channel: "messaging:a") { id ownReactions { kind } } }`, false},
		{`subscription { messageAdded(channel: "messaging:a") { id channel { unreadCount } } }`, false},
		{`subscription { messageAdded(channel: "messaging:a") { id ...F } } fragment F on Message { latestReactions { kind } }`, false},
		{`subscription { messageAdded(channel: "messaging:a") { id user { online } } }`, false},
		{`subscription { messageAdded(channel: "messaging:a") { id ... @defer { text } } }`, false},
		{`subscription { myEvents { type } }`, false},
		{`query { me { id } }`, false},
	} {
		if got := key(c.query, nil) != ""; got != c.shared {
			t.Errorf("%s: shared %v, want %v", c.query, got, c.shared)
		}
	}
	doc, _ := gqlparser.LoadQuery(schema, `subscription($c: ID!) { messageAdded(channel: $c) { id } }`)
	keyOf := func(vars map[string]any) string {
		return shareKey(&graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars})
	}
	if a, b := keyOf(map[string]any{"c": "messaging:a"}), keyOf(map[string]any{"c": "messaging:b"}); a == "" || a == b {
		t.Errorf("keys for different variables: %q and %q", a, b)
	}
	if keyOf(map[string]any{"c": "messaging:a"}) != keyOf(map[string]any{"c": "messaging:a"}) {
		t.Error("the same document and variables have different keys")
	}
}
