package fastpath_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
)

var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// The differential test: the same operations, on the same data, through a
// node with the fast path and one without, must get byte-identical
// responses, errors included. The operations are generated from the
// schema around the history page, with fields the fast path knows and
// fields it does not, aliases, fragments, __typename and @include.
func TestSameBytesAsGqlgen(t *testing.T) {
	fast := env.StartNode(t, brooktest.NodeOptions{})
	slow := env.StartNode(t, brooktest.NodeOptions{API: func(o *api.Options) { o.NoFastPath = true }})
	tag := brooktest.Tag()
	ch := "messaging:fp-" + tag
	// The fourth is not a member: every read of the channel is an error.
	users := []string{"fp-a-" + tag, "fp-b-" + tag, "fp-c-" + tag, "fp-d-" + tag}
	env.AddUsers(t, fast, users...)
	tok := make([]string, len(users))
	for i, u := range users {
		tok[i] = env.Token(t, u)
	}
	fast.Must(t, tok[0], `mutation($u: UserInput!) { upsertUsers(users: [$u]) { id } }`,
		brooktest.Vars{"u": map[string]any{"id": users[0], "name": "Ann \"quoted\" <b>&\u2028", "image": "https://img.example/a.png"}}, nil)
	fast.Must(t, tok[0], `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "messaging", "id": "fp-" + tag, "members": users[1:3], "name": "fast"}}, nil)
	var ids []string
	for i := 0; i < 30; i++ {
		var sent struct{ SendMessage struct{ ID string } }
		text := fmt.Sprintf("message %d \t\n \"é\" \\ \x01 %s", i, strings.Repeat("x", i))
		fast.Must(t, tok[i%3], `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`,
			brooktest.Vars{"c": ch, "in": map[string]any{"text": text}}, &sent)
		ids = append(ids, sent.SendMessage.ID)
		for j := 0; j < i%4; j++ {
			fast.Must(t, tok[j%3], `mutation($m: ID!, $k: String!) { sendReaction(message: $m, kind: $k) { id } }`,
				brooktest.Vars{"m": sent.SendMessage.ID, "k": []string{"like", "love", "haha"}[j%3]}, nil)
		}
	}
	fast.Must(t, tok[0], `mutation($m: ID!) { pinMessage(id: $m) { id } }`, brooktest.Vars{"m": ids[3]}, nil)
	fast.Must(t, tok[2], `mutation($m: ID!) { deleteMessage(id: $m) { id } }`, brooktest.Vars{"m": ids[5]}, nil)
	fast.WaitForJobs(t)

	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	gen := &generator{schema: schema, rnd: rand.New(rand.NewPCG(7, 11))}
	cases := []testCase{
		{`{ channel(id: "` + ch + `") { messages(last: 50) { edges { node { id text createdAt user { name } reactionCounts { kind count } } } } } }`, nil},
		{`query($c: ID!, $n: Int) { channel(id: $c) { id name messages(last: $n) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { id pinnedAt ownReactions { kind } } } } } }`, map[string]any{"c": ch, "n": 7}},
		{`{ channel(id: "messaging:nope") { id } }`, nil},
		{`{ channel(id: "` + ch + `") { messages(last: -1) { edges { cursor } } } }`, nil},
		{`{ channel(id: "` + ch + `") { messages(around: "` + ids[10] + `", last: 4) { edges { node { id } } } } }`, nil},
	}
	for i := 0; i < 300; i++ {
		q, vars := gen.operation(ch)
		cases = append(cases, testCase{q, vars})
	}
	compare(t, fast, slow, users, tok, cases)
}

type testCase struct {
	query string
	vars  map[string]any
}

// compare runs every case as every user on both nodes and requires the
// same bytes, and the fast path to have served at least a quarter.
func compare(t *testing.T, fast, slow *brooktest.Node, users, tok []string, cases []testCase) {
	t.Helper()
	for _, c := range cases {
		for u := range users {
			a := post(t, fast.URL, tok[u], c.query, c.vars)
			b := post(t, slow.URL, tok[u], c.query, c.vars)
			if !bytes.Equal(a, b) {
				t.Fatalf("responses differ for %s %v as %s:\nfast: %s\ngqlgen: %s", c.query, c.vars, users[u], a, b)
			}
		}
	}
	served, fellBack := counts(t, fast.Registry)
	t.Logf("%d operations, each as %d users: fast path served %d, fell back on %d", len(cases), len(users), served, fellBack)
	if 4*served < len(users)*len(cases) {
		t.Fatalf("the fast path served only %d of %d operations", served, len(users)*len(cases))
	}
	if s, f := counts(t, slow.Registry); s+f != 0 {
		t.Fatalf("the node without the fast path used it: %d, %d", s, f)
	}
	// The first case is the page the benchmark measures: it must be served.
	post(t, fast.URL, tok[0], cases[0].query, cases[0].vars)
	if again, _ := counts(t, fast.Registry); again != served+1 {
		t.Fatalf("the fast path did not serve %s", cases[0].query)
	}
}

// The same for timeline pages: activities of followed feeds, with actors,
// reaction counts and the reader's own reactions.
func TestTimelineSameBytesAsGqlgen(t *testing.T) {
	fast := env.StartNode(t, brooktest.NodeOptions{})
	slow := env.StartNode(t, brooktest.NodeOptions{API: func(o *api.Options) { o.NoFastPath = true }})
	tag := brooktest.Tag()
	users := []string{"fpt-a-" + tag, "fpt-b-" + tag, "fpt-c-" + tag}
	env.AddUsers(t, fast, users...)
	tok := make([]string, len(users))
	for i, u := range users {
		tok[i] = env.Token(t, u)
	}
	for i := range users {
		for j := range users {
			if i != j {
				fast.Must(t, tok[i], `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
					brooktest.Vars{"s": "timeline:" + users[i], "t": "user:" + users[j]}, nil)
			}
		}
	}
	for i := 0; i < 30; i++ {
		var act struct{ AddActivity struct{ ID string } }
		in := map[string]any{"verb": "post", "object": fmt.Sprintf("post %d \"<&>\" \u00e9 \t", i)}
		if i%3 == 0 {
			in["target"] = "t"
			in["foreignId"] = fmt.Sprintf("f%d", i)
		}
		fast.Must(t, tok[i%3], `mutation($f: ID!, $in: ActivityInput!) { addActivity(feed: $f, input: $in) { id } }`,
			brooktest.Vars{"f": "user:" + users[i%3], "in": in}, &act)
		for j := 0; j < i%4; j++ {
			fast.Must(t, tok[j%3], `mutation($a: ID!, $k: String!) { addReaction(activity: $a, kind: $k) { id } }`,
				brooktest.Vars{"a": act.AddActivity.ID, "k": []string{"like", "love", "haha"}[j%3]}, nil)
		}
	}
	fast.WaitForJobs(t)
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	gen := &generator{schema: schema, rnd: rand.New(rand.NewPCG(5, 13))}
	cases := []testCase{
		{`query { feed(id: "timeline:` + users[0] + `") { activities(first: 25) { edges { node {
			id verb object time actor { name } reactionCounts { kind count } ownReactions { kind } } } } } }`, nil},
		{`{ feed(id: "timeline:` + users[0] + `") { activities(ranking: "popular") { edges { node { id } } } } }`, nil},
		{`{ feed(id: "timeline:nobody-` + tag + `") { id activities { edges { cursor } } } }`, nil},
		{`{ feed(id: "timeline:` + users[1] + `") { activities(first: 500) { edges { cursor } } } }`, nil},
	}
	for i := 0; i < 200; i++ {
		var b strings.Builder
		// A timeline only its owner reads (the others get an error, left to
		// gqlgen); a user feed everyone reads.
		group := []string{"timeline", "user", "user"}[gen.rnd.IntN(3)]
		fmt.Fprintf(&b, `query($yes: Boolean!) { feed(id: "%s:%s") { `, group, users[gen.rnd.IntN(len(users))])
		if gen.rnd.IntN(3) == 0 {
			gen.fields(&b, "Feed", 1, "activities")
		}
		fmt.Fprintf(&b, "activities(first: %d) { ", gen.rnd.IntN(30))
		if gen.rnd.IntN(2) == 0 {
			b.WriteString("pageInfo { hasNextPage endCursor } ")
		}
		b.WriteString("edges { cursor node { ")
		gen.fields(&b, "Activity", 0, "")
		b.WriteString("} } } } }")
		cases = append(cases, testCase{b.String(), map[string]any{"yes": gen.rnd.IntN(2) == 0}})
	}
	compare(t, fast, slow, users, tok, cases)
}

func post(t *testing.T, url, token, query string, vars map[string]any) []byte {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(resp.Status+" "), b...)
}

func counts(t *testing.T, reg *prometheus.Registry) (served, fellBack int) {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "brook_fastpath_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch m.GetLabel()[0].GetValue() {
			case "served":
				served = int(m.GetCounter().GetValue())
			case "fallback":
				fellBack = int(m.GetCounter().GetValue())
			}
		}
	}
	return served, fellBack
}

// generator makes history-page operations from the schema.
type generator struct {
	schema *ast.Schema
	rnd    *rand.Rand
}

func (g *generator) operation(channel string) (string, map[string]any) {
	vars := map[string]any{"c": channel, "yes": g.rnd.IntN(2) == 0}
	var b strings.Builder
	b.WriteString(`query($c: ID!, $yes: Boolean!) { `)
	if g.rnd.IntN(4) == 0 {
		b.WriteString("__typename ")
	}
	b.WriteString("channel(id: $c) { ")
	if g.rnd.IntN(3) == 0 {
		g.fields(&b, "Channel", 0, "messages")
	}
	fmt.Fprintf(&b, "messages(last: %d) { ", g.rnd.IntN(40))
	if g.rnd.IntN(2) == 0 {
		b.WriteString("pageInfo { hasNextPage endCursor hasPreviousPage startCursor } ")
	}
	b.WriteString("edges { ")
	if g.rnd.IntN(2) == 0 {
		b.WriteString("cursor ")
	}
	b.WriteString("node { ")
	g.fields(&b, "Message", 0, "")
	b.WriteString("} } } } }")
	if strings.Contains(b.String(), "...F") {
		b.WriteString(" fragment F on Message { id text user { id name } }")
	}
	return b.String(), vars
}

// fields selects a few of typ's fields: scalars, objects a level or two
// down, some aliased, some under @include or an inline fragment.
func (g *generator) fields(b *strings.Builder, typ string, depth int, skip string) {
	def := g.schema.Types[typ]
	n := 1 + g.rnd.IntN(6)
	wrote := false
	for i := 0; i < n; i++ {
		f := def.Fields[g.rnd.IntN(len(def.Fields))]
		if common := commonFields[typ]; common != nil && g.rnd.IntN(10) < 8 {
			// Mostly what pages ask for, so most operations take the
			// fast path; the rest exercise the fallback.
			f = def.Fields.ForName(common[g.rnd.IntN(len(common))])
		}
		if f.Name == skip || strings.HasPrefix(f.Name, "__") || requiredArgs(f) {
			continue
		}
		inner := g.schema.Types[f.Type.Name()]
		if inner.Kind != ast.Scalar && inner.Kind != ast.Enum && (depth >= 1 || inner.Kind != ast.Object) {
			continue
		}
		switch g.rnd.IntN(8) {
		case 0:
			fmt.Fprintf(b, "a%d: ", i)
		case 1:
			b.WriteString("... on " + typ + " { ")
			defer b.WriteString("} ")
		case 2:
			b.WriteString("__typename ")
		case 3:
			if typ == "Message" {
				b.WriteString("...F ")
			}
		}
		b.WriteString(f.Name)
		if g.rnd.IntN(6) == 0 {
			b.WriteString(" @include(if: $yes)")
		}
		if inner.Kind == ast.Object {
			b.WriteString(" { ")
			g.fields(b, inner.Name, depth+1, "")
			b.WriteString("}")
		}
		b.WriteString(" ")
		wrote = true
	}
	if !wrote {
		b.WriteString("__typename ")
	}
}

// commonFields are what clients usually select on a history page.
var commonFields = map[string][]string{
	"Message": {"id", "text", "type", "createdAt", "updatedAt", "deletedAt", "user", "reactionCounts",
		"ownReactions", "replyCount", "showInChannel", "pinnedAt", "pinExpiresAt"},
	"User": {"id", "name", "image", "role", "createdAt", "updatedAt", "lastActive"},
	"Activity": {"id", "verb", "object", "target", "foreignId", "time", "createdAt", "updatedAt", "commentCount",
		"actor", "reactionCounts", "ownReactions"},
	"Reaction": {"id", "kind", "createdAt"},
	"Channel":  {"id", "type", "name", "image", "frozen", "cooldownSeconds", "createdAt", "updatedAt", "lastMessageAt", "memberCount"},
}

func requiredArgs(f *ast.FieldDefinition) bool {
	for _, a := range f.Arguments {
		if a.Type.NonNull && a.DefaultValue == nil {
			return true
		}
	}
	return false
}
