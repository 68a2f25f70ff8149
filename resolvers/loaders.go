package resolvers

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/brookhq/brook/store"
)

// loaderWait is how long a loader gathers keys from sibling resolvers
// before it runs its batch. Lists do not rely on it: a resolver that returns
// a list prefetches its children's keys, so a page costs one statement per
// loader however large it is, without waiting.
const loaderWait = 2 * time.Millisecond

// Loaders batch and cache the lookups of one GraphQL operation, or of one
// subscription event. A fresh set is made for each response, so nothing is
// cached across operations or for the life of a WebSocket connection.
// Each loader is created on first use: an event that needs none costs nothing.
type Loaders struct {
	Users  *Loader[string, *store.User]
	Online *Loader[string, bool]

	// Each product keeps its loaders in its own file.
	feedLoaders
	chatLoaders
	callLoaders

	// history holds the history pages read with their channel.
	history prefetched[historyKey, store.Page[*store.Message]]
	// feedPages are the timeline pages Query.feed read (feed_prefetch.go).
	feedPages prefetched[feedPageKey, feedPage]
}

// NewLoaders returns a set of loaders over the products.
func (r *Resolver) NewLoaders() *Loaders {
	return &Loaders{
		feedLoaders: newFeedLoaders(r.Feeds),
		chatLoaders: newChatLoaders(r.Chat),
		callLoaders: newCallLoaders(r.Calls),
		Users:       NewLoader(r.People.ByID),
		Online:      NewLoader(r.People.Online),
	}
}

type loadersKey struct{}

// WithLoaders returns a context that carries l.
func WithLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// loadersFor returns the context's loaders. Outside a GraphQL response (in a
// subscription goroutine, say) it returns a fresh, unshared set.
func (r *Resolver) loadersFor(ctx context.Context) *Loaders {
	if l, ok := ctx.Value(loadersKey{}).(*Loaders); ok {
		return l
	}
	return r.NewLoaders()
}

// Loader batches lookups of V by K. Fetch returns one value per key, in key
// order (the zero V where a key has none).
type Loader[K comparable, V any] struct {
	fetch func(context.Context, []K) ([]V, error)
	once  sync.Once
	dl    *dataloader.Loader[K, V]
}

// NewLoader returns a Loader over fetch.
func NewLoader[K comparable, V any](fetch func(context.Context, []K) ([]V, error)) *Loader[K, V] {
	return &Loader[K, V]{fetch: fetch}
}

func (l *Loader[K, V]) loader() *dataloader.Loader[K, V] {
	l.once.Do(func() {
		l.dl = dataloader.NewBatchedLoader(func(ctx context.Context, keys []K) []*dataloader.Result[V] {
			values, err := l.fetch(ctx, keys)
			out := make([]*dataloader.Result[V], len(keys))
			for i := range keys {
				if err != nil {
					out[i] = &dataloader.Result[V]{Error: err}
				} else {
					out[i] = &dataloader.Result[V]{Data: values[i]}
				}
			}
			return out
		}, dataloader.WithWait[K, V](loaderWait))
	})
	return l.dl
}

// Load returns the value of key, batched with the loads of sibling resolvers.
func (l *Loader[K, V]) Load(ctx context.Context, key K) (V, error) {
	return l.loader().Load(ctx, key)()
}

// Prime caches value for key, as if a lookup had found it, unless key is
// cached already: a resolver that read a value some other way saves its
// siblings and children the statement.
func (l *Loader[K, V]) Prime(ctx context.Context, key K, value V) {
	l.loader().Prime(ctx, key, value)
}

// Prefetch looks up keys now, in one batch, and caches the values, so the
// children that later Load them one by one find them without waiting.
func (l *Loader[K, V]) Prefetch(ctx context.Context, keys []K) error {
	_, err := l.Fetch(ctx, keys)
	return err
}

// Fetch looks up keys now, in one batch, caches the values, and returns
// them in the order of keys.
func (l *Loader[K, V]) Fetch(ctx context.Context, keys []K) ([]V, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	uniq := unique(keys)
	values, err := l.fetch(ctx, uniq)
	if err != nil {
		return nil, err
	}
	dl := l.loader()
	byKey := make(map[K]V, len(uniq))
	for i, k := range uniq {
		byKey[k] = values[i]
		dl.Prime(ctx, k, values[i])
	}
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out, nil
}

// unique returns keys without repeats, in first-seen order.
func unique[K comparable](keys []K) []K {
	seen := make(map[K]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// selected reports whether the operation asks for the field at path below
// the field being resolved (through fragments too), so a resolver prefetches
// only what will be used: selected(ctx, "edges", "node", "actor").
func selected(ctx context.Context, path ...string) bool {
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return false
	}
	return selectedIn(oc, fc.Field.Selections, path...)
}

// selectedIn is selected below the selection set set.
func selectedIn(oc *graphql.OperationContext, set ast.SelectionSet, path ...string) bool {
	for _, name := range path {
		found := false
		for _, f := range graphql.CollectFields(oc, set, nil) {
			if f.Name == name {
				set, found = f.Selections, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// fetchPresent looks keys up now, in one batch, and returns the values that
// exist, in key order: a list field leaves out what has gone.
func fetchPresent[K comparable, V any](ctx context.Context, l *Loader[K, *V], keys []K) ([]*V, error) {
	values, err := l.Fetch(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*V, 0, len(values))
	for _, v := range values {
		if v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}
