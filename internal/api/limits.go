package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
)

// depthLimit refuses operations nested deeper than max, before any resolver
// runs. Introspection (__schema, __type) is not counted: it resolves from
// the static schema, and GraphiQL's introspection query is deep by design.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string { return "DepthLimit" }

func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{})
	if depth > d.max {
		err := gqlerror.Errorf("operation is nested %d levels deep, which exceeds the limit of %d", depth, d.max)
		err.Extensions = map[string]any{"code": CodeComplexity, "limit": "depth"}
		return err
	}
	return nil
}

// complexityLimit refuses operations whose complexity (gqlgen's count,
// with the schema's multipliers) exceeds max, before any resolver runs. It
// is gqlgen's extension.ComplexityLimit without the figure it keeps in the
// operation's stats: a subscription holds its operation context for hours,
// and that map cost each idle one about 500 bytes (heap profile at 10,000).
type complexityLimit struct {
	max int
	es  graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &complexityLimit{}

func (*complexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *complexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := complexity.Calculate(ctx, c.es, oc.Operation, oc.Variables); n > c.max {
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", n, c.max)
		err.Extensions = map[string]any{"code": CodeComplexity, "limit": "complexity"}
		return err
	}
	return nil
}

// selectionDepth is the deepest chain of fields under set. Fragments are
// followed (validation has already ruled out cycles; seen guards anyway).
func selectionDepth(set ast.SelectionSet, seen map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				continue
			}
			d = 1 + selectionDepth(s.SelectionSet, seen)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, seen)
			delete(seen, s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// numberLiterals refuses operations with a number literal no 64-bit
// value holds (`data: {a: 1e1000000}`): gqlparser panics on one when it
// reads arguments, which the complexity limit does first, and PostgreSQL
// could not store it anyway. It runs before the complexity limit.
type numberLiterals struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = numberLiterals{}

func (numberLiterals) ExtensionName() string { return "NumberLiterals" }

func (numberLiterals) Validate(graphql.ExecutableSchema) error { return nil }

func (numberLiterals) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Doc == nil {
		return nil
	}
	var bad *ast.Value
	var walkValue func(v *ast.Value)
	walkValue = func(v *ast.Value) {
		if v == nil || bad != nil {
			return
		}
		switch v.Kind {
		case ast.IntValue:
			if _, err := strconv.ParseInt(v.Raw, 10, 64); err != nil {
				bad = v
			}
		case ast.FloatValue:
			if _, err := strconv.ParseFloat(v.Raw, 64); err != nil {
				bad = v
			}
		}
		for _, c := range v.Children {
			walkValue(c.Value)
		}
	}
	walkArgs := func(args ast.ArgumentList, dirs ast.DirectiveList) {
		for _, a := range args {
			walkValue(a.Value)
		}
		for _, d := range dirs {
			for _, a := range d.Arguments {
				walkValue(a.Value)
			}
		}
	}
	var walkSet func(set ast.SelectionSet)
	walkSet = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walkArgs(s.Arguments, s.Directives)
				walkSet(s.SelectionSet)
			case *ast.InlineFragment:
				walkArgs(nil, s.Directives)
				walkSet(s.SelectionSet)
			case *ast.FragmentSpread:
				walkArgs(nil, s.Directives)
			}
		}
	}
	for _, op := range oc.Doc.Operations {
		for _, v := range op.VariableDefinitions {
			walkValue(v.DefaultValue)
		}
		walkArgs(nil, op.Directives)
		walkSet(op.SelectionSet)
	}
	for _, f := range oc.Doc.Fragments {
		walkArgs(nil, f.Directives)
		walkSet(f.SelectionSet)
	}
	if bad == nil {
		return nil
	}
	err := gqlerror.Errorf("the number %s is out of range: numbers must fit in 64 bits", truncateRaw(bad.Raw))
	if bad.Position != nil {
		err.Locations = []gqlerror.Location{{Line: bad.Position.Line, Column: bad.Position.Column}}
	}
	err.Extensions = map[string]any{"code": CodeBadUserInput}
	return err
}

func truncateRaw(s string) string {
	if len(s) > 40 {
		return truncateUTF8(s, 40) + "…"
	}
	return s
}

// noIntrospection refuses introspection before any resolver runs, when it
// is turned off for production. __typename stays available: clients such as
// Apollo add it to every selection.
type noIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = noIntrospection{}

func (noIntrospection) ExtensionName() string { return "NoIntrospection" }

func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && introspects(oc.Operation.SelectionSet, map[string]bool{}) {
		err := gqlerror.Errorf("introspection is turned off on this server (BROOK_INTROSPECTION=false)")
		err.Extensions = map[string]any{"code": CodeBadUserInput}
		return err
	}
	return nil
}

func introspects(set ast.SelectionSet, seen map[string]bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" || introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, seen) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				if introspects(s.Definition.SelectionSet, seen) {
					return true
				}
			}
		}
	}
	return false
}

// persistedQueries is gqlgen's automatic persisted queries, with a code on
// every error: gqlgen's WebSocket transport sends these errors as they
// are, without the error presenter that gives HTTP answers their codes.
type persistedQueries struct {
	extension.AutomaticPersistedQuery
}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, params *graphql.RawParams) *gqlerror.Error {
	err := p.AutomaticPersistedQuery.MutateOperationParameters(ctx, params)
	if err != nil && err.Extensions["code"] == nil {
		if err.Extensions == nil {
			err.Extensions = map[string]any{}
		}
		err.Extensions["code"] = CodeBadUserInput
	}
	return err
}

// apqCache keeps automatic persisted queries in Redis, shared by all nodes,
// with a small in-process cache in front: a hash always names the same text.
type apqCache struct {
	server *Server
}

func (c apqCache) Get(ctx context.Context, hash string) (string, bool) {
	if q, ok := c.server.apqLocal.Get(hash); ok {
		return q, true
	}
	q, ok, err := c.server.opts.State.PersistedQuery(ctx, hash)
	if err != nil {
		c.server.log.Warn("apq: lookup failed; the client will resend the query", "err", err)
		return "", false
	}
	if ok {
		c.server.apqLocal.Add(hash, q)
	}
	return q, ok
}

func (c apqCache) Add(ctx context.Context, hash, query string) {
	c.server.apqLocal.Add(hash, query)
	if err := c.server.opts.State.SavePersistedQuery(ctx, hash, query); err != nil {
		c.server.log.Warn("apq: save failed", "err", fmt.Sprint(err))
	}
}

// aliasLimit refuses operations with more aliased fields than max, before
// any resolver runs: aliases let one operation ask for the same costly
// field many times over.
type aliasLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = aliasLimit{}

func (aliasLimit) ExtensionName() string { return "AliasLimit" }

func (aliasLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (a aliasLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := countAliases(oc.Operation.SelectionSet, map[string]bool{}); n > a.max {
		err := gqlerror.Errorf("operation uses %d aliases, which exceeds the limit of %d", n, a.max)
		err.Extensions = map[string]any{"code": CodeComplexity, "limit": "aliases"}
		return err
	}
	return nil
}

// countAliases counts fields whose alias differs from their name. A
// fragment spread twice counts twice, as it is executed twice.
func countAliases(set ast.SelectionSet, seen map[string]bool) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Alias != "" && s.Alias != s.Name {
				n++
			}
			n += countAliases(s.SelectionSet, seen)
		case *ast.InlineFragment:
			n += countAliases(s.SelectionSet, seen)
		case *ast.FragmentSpread:
			if s.Definition != nil && !seen[s.Name] {
				seen[s.Name] = true
				n += countAliases(s.Definition.SelectionSet, seen)
				delete(seen, s.Name)
			}
		}
	}
	return n
}

// limitExceeded is a per-connection or per-user cap reached; it maps to
// RATE_LIMITED without a retry hint (wait for something to close).
type limitExceeded struct{ message string }

func (e *limitExceeded) Error() string { return e.message }

// aroundOperation counts each operation, then applies the caps that hold
// for any operation on any transport: the request budgets and the number of
// operations running at once on one WebSocket connection. Every budget the
// operation spends (the address of an HTTP request, the user's requests,
// each sending mutation field's own budget) is checked in one Redis round
// trip, and an operation over any of them is refused whole, so that no
// mutation is half done.
func (s *Server) aroundOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	refuse := func(err error) graphql.ResponseHandler {
		presented := s.present(ctx, err)
		code, _ := presented.Extensions["code"].(string)
		s.metrics.errors.WithLabelValues(code).Inc()
		if info := requestFrom(ctx); info != nil {
			info.addCodes([]string{code})
		}
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{presented}})
	}
	if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
		if replaying(ctx) {
			// An event of a subscription whose start was charged and
			// counted (ws_replay.go).
			return next(ctx)
		}
		if wsStateFrom(ctx) == nil {
			// Over HTTP a subscription would hold the request until its
			// first event, outside every WebSocket limit.
			return refuse(store.Invalid("", "subscriptions run over a WebSocket (graphql-transport-ws or graphql-ws), not over HTTP"))
		}
	}
	budgets := make([]ephemeral.Budget, 0, 4)
	charge := chargeFrom(ctx)
	if charge != nil && charge.taken.CompareAndSwap(false, true) {
		budgets = append(budgets, charge.address)
	}
	if id, ok := auth.FromContext(ctx); ok {
		budgets = append(budgets, ephemeral.Budget{Key: "user:" + id.UserID, Rate: s.opts.RatePerUser, What: "requests from your user", Owner: "u:" + id.UserID})
		var err error
		if budgets, err = s.sendBudgets(ctx, id.UserID, budgets); err != nil {
			if charge != nil {
				charge.taken.Store(false) // the request still spends its address's budget
			}
			return refuse(err)
		}
	}
	if err := s.opts.State.AllowAll(ctx, budgets...); err != nil {
		var rl *ephemeral.RateLimitedError
		switch {
		case charge == nil:
		case errors.As(err, &rl) && rl.Key == charge.address.Key:
			// Over the address's budget: HTTP 429, and refused up front
			// from now on (see addressBlocks).
			charge.refused(rl)
			s.blocks.add(rl)
		default:
			// Refused for another budget, so nothing was charged: the
			// request still spends its address's budget, with a later
			// operation of its batch or when it ends.
			charge.taken.Store(false)
		}
		return refuse(err)
	}
	var release func()
	if st := wsStateFrom(ctx); st != nil {
		if st.operations.Add(1) > int64(s.opts.MaxSubscriptionsPerConnection) {
			st.operations.Add(-1)
			return refuse(&limitExceeded{fmt.Sprintf("this connection already runs %d operations, the limit; complete one or open another connection", s.opts.MaxSubscriptionsPerConnection)})
		}
		release = func() { st.operations.Add(-1) }
	}
	return s.metrics.observeOperation(ctx, next, release)
}

// sendBudgets appends the budgets of a mutation's sending fields
// (messages, signals, activities): each such root field spends one event
// of its own per-user budget on top of the request budget. A mutation
// that calls one more times than its budget's burst could never pass, and
// is refused as such rather than told to retry.
func (s *Server) sendBudgets(ctx context.Context, user string, budgets []ephemeral.Budget) ([]ephemeral.Budget, error) {
	oc := graphql.GetOperationContext(ctx)
	if len(s.opts.SendRates) == 0 || oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return budgets, nil
	}
	calls := map[string]int{}
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"}) {
		if f.Name == "sendTypingEvent" && f.ArgumentMap(oc.Variables)["typing"] == false {
			// typing.stop is free: refusing it would leave others seeing
			// the user type (there is no server-side expiry).
			continue
		}
		if rate, ok := s.opts.SendRates[f.Name]; ok && !rate.Off() {
			calls[f.Name]++
			if burst := max(rate.Burst, 1); calls[f.Name] > burst {
				return nil, &limitExceeded{fmt.Sprintf("this operation calls %s more than %d times, the most one operation may (the burst of its rate limit); split it", f.Name, burst)}
			}
			budgets = append(budgets, ephemeral.Budget{Key: "send:" + f.Name + ":" + user, Rate: rate, What: f.Name + " calls from your user", Owner: "u:" + user})
		}
	}
	return budgets, nil
}

// addressCharge is the address budget of one HTTP request. It is spent
// with the request's operation, in the same round trip as the operation's
// own budgets; a request that ends before any operation runs (a bad token,
// a malformed body, a query that does not parse), or whose operations were
// refused for other budgets, spends it when it ends.
type addressCharge struct {
	address ephemeral.Budget
	taken   atomic.Bool
	// retryAfter is set when an operation was refused for the address's
	// budget, so that the HTTP answer is 429 with a Retry-After header.
	retryAfter atomic.Int64
}

type addressChargeKey struct{}

func chargeFrom(ctx context.Context) *addressCharge {
	c, _ := ctx.Value(addressChargeKey{}).(*addressCharge)
	return c
}

func (c *addressCharge) refused(rl *ephemeral.RateLimitedError) {
	c.retryAfter.Store(int64(rl.RetryAfter))
}

// settle spends the address budget of a request that ran no operation (or
// whose operations were refused for other budgets), once its answer has
// been sent.
func (s *Server) settle(ctx context.Context, w http.ResponseWriter, c *addressCharge) {
	if !c.taken.CompareAndSwap(false, true) {
		return
	}
	_ = http.NewResponseController(w).Flush()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var rl *ephemeral.RateLimitedError
	if errors.As(s.opts.State.AllowAll(ctx, c.address), &rl) {
		s.blocks.add(rl)
	}
}

// refusalWriter turns the implicit 200 of a GraphQL response into 429 with
// Retry-After when the request's operation was refused for its address's
// budget.
type refusalWriter struct {
	http.ResponseWriter
	charge      *addressCharge
	wroteHeader bool
}

func (w *refusalWriter) WriteHeader(status int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *refusalWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		if wait := time.Duration(w.charge.retryAfter.Load()); wait > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(wait))
			w.WriteHeader(http.StatusTooManyRequests)
		}
		w.wroteHeader = true
	}
	return w.ResponseWriter.Write(p)
}

// retryAfterSeconds is a Retry-After header value: ephemeral.RetryAfterSeconds.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(ephemeral.RetryAfterSeconds(d))
}

// Unwrap lets http.ResponseController reach the connection.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// addressBlocks remembers on this node the address budgets Redis reported
// spent, until they can pay again, so that a flood of requests which never
// reach an operation is refused up front without a round trip each.
type addressBlocks struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// maxAddressBlocks bounds addressBlocks: past it, an address found spent
// is not remembered and pays its Redis round trip each time.
const maxAddressBlocks = 10000

// add records a spent address budget until it can pay again.
func (b *addressBlocks) add(rl *ephemeral.RateLimitedError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	if len(b.until) >= maxAddressBlocks {
		for k, t := range b.until {
			if now.After(t) {
				delete(b.until, k)
			}
		}
		if len(b.until) >= maxAddressBlocks {
			return
		}
	}
	b.until[rl.Key] = now.Add(rl.RetryAfter)
}

// check refuses a budget recorded as spent until it can pay again.
func (b *addressBlocks) check(budget ephemeral.Budget) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[budget.Key]
	if !ok {
		return nil
	}
	if wait := time.Until(t); wait > 0 {
		return &ephemeral.RateLimitedError{What: budget.What, Key: budget.Key, RetryAfter: wait}
	}
	delete(b.until, budget.Key)
	return nil
}
