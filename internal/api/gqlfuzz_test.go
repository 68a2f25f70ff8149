package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/store"
)

// TestGraphQLFuzz sends random operations generated from the schema to a
// live node: valid and invalid, deeply nested, with huge page sizes, odd
// unicode, nulls and wrong types. Whatever it sends, the server must not
// panic, must not answer INTERNAL, must give every error one of the
// documented codes, and must never return more than the limits allow.
// BROOK_GQLFUZZ_OPS sets the number of operations and BROOK_GQLFUZZ_SEED
// the seed (fixed by default, so make test is deterministic; make fuzz runs
// many more operations with a new seed each time).
func TestGraphQLFuzz(t *testing.T) {
	ops := 1500
	if v, err := strconv.Atoi(os.Getenv("BROOK_GQLFUZZ_OPS")); err == nil && v > 0 {
		ops = v
	}
	seed := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv("BROOK_GQLFUZZ_SEED"), 10, 64); err == nil {
		seed = v
	}
	var logMu sync.Mutex
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		if logs.Len() < 1<<20 {
			logs.Write(p)
		}
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelError}))
	n := env.StartNode(t, brooktest.NodeOptions{Logger: logger})
	g := &generator{
		schema: graph.NewExecutableSchema(graph.Config{}).Schema(),
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ids:    []string{"fuzz-a", "fuzz-b", "fuzz-admin", "user:fuzz-a", "timeline:fuzz-b", "notification:fuzz-a", "messaging:fuzz", "livestream:fuzz", store.NewID().String()},
	}
	users := map[string]string{
		"fuzz-a":     env.Token(t, "fuzz-a"),
		"fuzz-b":     env.Token(t, "fuzz-b"),
		"fuzz-admin": env.AdminToken(t, "fuzz-admin"),
	}
	tokens := []string{users["fuzz-a"], users["fuzz-b"], users["fuzz-admin"]}
	conns := map[string]*brooktest.WS{}

	var internals, badCodes, overLimit, transportFailures int
	var examples []string
	note := func(kind, q string, detail any) {
		if len(examples) < 10 {
			examples = append(examples, fmt.Sprintf("%s: %v\n  operation: %.400s", kind, detail, q))
		}
	}
	check := func(q string, r *client.Response) {
		for _, e := range r.Errors {
			switch code := e.Code(); code {
			case "INTERNAL":
				internals++
				note("INTERNAL", q, e.Message)
			case "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "CONFLICT", "RATE_LIMITED", "COMPLEXITY_LIMIT_EXCEEDED":
			default:
				badCodes++
				note("undocumented code", q, e)
			}
		}
		if long := longestList(r.Data); long > store.MaxPage {
			overLimit++
			note("list over the page limit", q, long)
		}
		g.learn(r.Data)
	}
	for i := 0; i < ops; i++ {
		kind := g.pickKind()
		q, vars := g.operation(kind)
		tok := tokens[g.rnd.IntN(len(tokens))]
		if kind != "subscription" {
			r, err := n.Client(tok).Do(context.Background(), q, vars)
			if err != nil {
				transportFailures++
				note("transport failure", q, err)
				continue
			}
			check(q, r)
			continue
		}
		ws := conns[tok]
		if ws == nil || ws.CloseError() != nil {
			ws = n.MustDial(t, tok)
			conns[tok] = ws
		}
		sub := ws.Subscribe(q, vars)
		select {
		case m, ok := <-sub.C:
			if ok && (m.Type == "next" || m.Type == "error") {
				var r client.Response
				if m.Type == "error" {
					_ = json.Unmarshal(m.Payload, &r.Errors)
				} else {
					_ = json.Unmarshal(m.Payload, &r)
				}
				check(q, &r)
			}
		case <-time.After(20 * time.Millisecond):
		}
		_ = sub.Subscription.Complete()
	}
	// The node is still healthy and nothing panicked.
	health, err := httpGet(n.URL + "/healthz")
	if err != nil || !strings.Contains(health, `"status":"ok"`) {
		t.Fatalf("node unhealthy after fuzzing: %v %s", err, health)
	}
	logMu.Lock()
	panics := strings.Count(logs.String(), "panic")
	logMu.Unlock()
	t.Logf("graphql fuzz (seed %d): %d operations tried, %d crashes (panics), %d internal errors, %d undocumented codes, %d lists over the limit, %d transport failures",
		seed, ops, panics, internals, badCodes, overLimit, transportFailures)
	if panics+internals+badCodes+overLimit+transportFailures > 0 {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("fuzzing found problems (rerun with BROOK_GQLFUZZ_SEED=%d):\n%s\nserver log:\n%.4000s", seed, strings.Join(examples, "\n"), logs.String())
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// longestList returns the length of the longest JSON array in data.
func longestList(data json.RawMessage) int {
	var v any
	if len(data) == 0 || json.Unmarshal(data, &v) != nil {
		return 0
	}
	var walk func(any) int
	walk = func(v any) int {
		longest := 0
		switch x := v.(type) {
		case []any:
			longest = len(x)
			for _, e := range x {
				longest = max(longest, walk(e))
			}
		case map[string]any:
			for _, e := range x {
				longest = max(longest, walk(e))
			}
		}
		return longest
	}
	return walk(v)
}

// generator makes random operations from the schema.
type generator struct {
	schema *ast.Schema
	rnd    *rand.Rand
	// ids seen in responses, so later operations can hit real things.
	ids  []string
	vars int
}

func (g *generator) pickKind() string {
	switch r := g.rnd.IntN(100); {
	case r < 50:
		return "query"
	case r < 85:
		return "mutation"
	}
	return "subscription"
}

func (g *generator) chance(p float64) bool { return g.rnd.Float64() < p }

// operation returns an operation of kind and its variables.
func (g *generator) operation(kind string) (string, client.Vars) {
	root := map[string]string{"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}[kind]
	def := g.schema.Types[root]
	var fields []*ast.FieldDefinition
	for _, f := range def.Fields {
		if !strings.HasPrefix(f.Name, "__") {
			fields = append(fields, f)
		}
	}
	vars := client.Vars{}
	var varDefs []string
	var body strings.Builder
	count := 1
	if kind == "query" && g.chance(0.2) {
		count = 1 + g.rnd.IntN(4)
	}
	for i := 0; i < count; i++ {
		f := fields[g.rnd.IntN(len(fields))]
		if count > 1 {
			fmt.Fprintf(&body, "a%d: ", i)
		}
		g.field(&body, f, vars, &varDefs, 0)
		body.WriteByte(' ')
	}
	var q strings.Builder
	q.WriteString(kind)
	if len(varDefs) > 0 {
		q.WriteString("(" + strings.Join(varDefs, ", ") + ")")
	}
	q.WriteString(" { " + body.String() + "}")
	return q.String(), vars
}

// maxDepth is a little over the API's depth limit, so some operations
// must be refused for their depth.
const maxDepth = 14

func (g *generator) field(b *strings.Builder, f *ast.FieldDefinition, vars client.Vars, varDefs *[]string, depth int) {
	b.WriteString(f.Name)
	var args []string
	for _, a := range f.Arguments {
		if a.Type.NonNull && g.chance(0.02) {
			continue // a missing required argument
		}
		if !a.Type.NonNull && g.chance(0.4) {
			continue
		}
		if g.chance(0.3) {
			g.vars++
			name := fmt.Sprintf("v%d", g.vars)
			typ := a.Type.String()
			if g.chance(0.03) {
				typ = "Int" // a variable of the wrong type
			}
			*varDefs = append(*varDefs, "$"+name+": "+typ)
			vars[name] = g.jsonValue(a.Type, 0)
			args = append(args, a.Name+": $"+name)
		} else {
			args = append(args, a.Name+": "+g.literal(a.Type, 0))
		}
	}
	if g.chance(0.01) {
		args = append(args, "bogus: 1")
	}
	if len(args) > 0 {
		b.WriteString("(" + strings.Join(args, ", ") + ")")
	}
	t := g.schema.Types[f.Type.Name()]
	if t == nil || (t.Kind != ast.Object && t.Kind != ast.Interface && t.Kind != ast.Union) {
		if g.chance(0.005) {
			b.WriteString(" { id }") // a selection on a scalar
		}
		return
	}
	b.WriteString(" { ")
	if depth >= maxDepth || g.chance(0.15) {
		b.WriteString("__typename }")
		return
	}
	var subs []*ast.FieldDefinition
	for _, sf := range t.Fields {
		if !strings.HasPrefix(sf.Name, "__") {
			subs = append(subs, sf)
		}
	}
	k := 1 + g.rnd.IntN(min(len(subs), 4))
	for _, i := range g.rnd.Perm(len(subs))[:k] {
		if g.chance(0.05) {
			fmt.Fprintf(b, "x%d: ", g.rnd.IntN(1000))
		}
		g.field(b, subs[i], vars, varDefs, depth+1)
		b.WriteByte(' ')
	}
	b.WriteString("}")
}

// Strings that have broken servers before.
var oddStrings = []string{
	"", " ", "null", "0", "-1", "true", "'; DROP TABLE users; --", "\x00", "\u202e", "😀👍🏽", "\ud7ff",
	"a:b:c", "user:", ":", "timeline:", "messaging:", "%s%s%n", "../../etc/passwd", "<script>", "\\",
	strings.Repeat("x", 65), strings.Repeat("é", 5001), strings.Repeat("a", 70000),
}

func (g *generator) str() string {
	switch r := g.rnd.IntN(10); {
	case r < 5 && len(g.ids) > 0:
		return g.ids[g.rnd.IntN(len(g.ids))]
	case r < 8:
		return oddStrings[g.rnd.IntN(len(oddStrings))]
	default:
		n := g.rnd.IntN(20)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = rune(g.rnd.IntN(0x2FFFF))
			if rs[i] >= 0xD800 && rs[i] <= 0xDFFF {
				rs[i] = 'x'
			}
		}
		return string(rs)
	}
}

var oddInts = []int64{0, 1, -1, 5, 25, 50, 100, 101, 1000, 1 << 31, -(1 << 31), 1<<31 - 1, 1 << 40}

// jsonValue is a value for a variable of type t, sometimes of the wrong type.
func (g *generator) jsonValue(t *ast.Type, depth int) any {
	if !t.NonNull && g.chance(0.1) {
		return nil
	}
	if t.NonNull && g.chance(0.01) {
		return nil
	}
	if g.chance(0.02) {
		return []any{"wrong", 1}
	}
	if t.Elem != nil {
		n := g.rnd.IntN(4)
		if g.chance(0.05) {
			n = 150
		}
		out := make([]any, n)
		for i := range out {
			out[i] = g.jsonValue(t.Elem, depth+1)
		}
		return out
	}
	def := g.schema.Types[t.Name()]
	switch {
	case def == nil:
		return nil
	case def.Kind == ast.Enum:
		if g.chance(0.1) {
			return "NOT_A_VALUE"
		}
		return def.EnumValues[g.rnd.IntN(len(def.EnumValues))].Name
	case def.Kind == ast.InputObject:
		obj := map[string]any{}
		for _, f := range def.Fields {
			if f.Type.NonNull || g.chance(0.6) {
				obj[f.Name] = g.jsonValue(f.Type, depth+1)
			}
		}
		return obj
	}
	switch t.Name() {
	case "Int":
		return oddInts[g.rnd.IntN(len(oddInts))]
	case "Float":
		return g.rnd.NormFloat64() * 1e6
	case "Boolean":
		return g.chance(0.5)
	case "JSON":
		return g.jsonData(depth)
	case "Time":
		return []string{"2026-11-24T10:00:00Z", "yesterday", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z"}[g.rnd.IntN(5)]
	}
	return g.str()
}

func (g *generator) jsonData(depth int) any {
	if depth > 3 || g.chance(0.3) {
		return []any{nil, 1.5, "s", true, []any{1}}[g.rnd.IntN(5)]
	}
	obj := map[string]any{}
	for i := 0; i < g.rnd.IntN(4); i++ {
		obj[g.str()] = g.jsonData(depth + 1)
	}
	return obj
}

// literal writes a value inline in the operation text.
func (g *generator) literal(t *ast.Type, depth int) string {
	v := g.jsonValue(t, depth)
	def := g.schema.Types[t.Name()]
	return gqlLiteral(v, def != nil && def.Kind == ast.Enum)
}

func gqlLiteral(v any, enum bool) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if enum && x != "" && !strings.ContainsAny(x, " :'\"") {
			return x
		}
		b, _ := json.Marshal(x)
		return string(b)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = gqlLiteral(e, enum)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			if isName(k) {
				parts = append(parts, k+": "+gqlLiteral(x[k], false))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return "null"
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// learn keeps ids from a response for later operations.
func (g *generator) learn(data json.RawMessage) {
	var v any
	if len(data) == 0 || json.Unmarshal(data, &v) != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "id" || strings.HasSuffix(k, "Id")) && len(g.ids) < 500 && !slices.Contains(g.ids, s) {
					g.ids = append(g.ids, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}
