package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/store"
)

// A history page is the hottest read: channel(id) { messages(...) }. Its
// two statements (the channel with the caller's membership, then the
// page) go to PostgreSQL in one round trip: Query.channel reads the page
// its messages field will ask for alongside the channel, and
// Channel.messages takes it if its window is the one read. The page is
// kept only once chat.Service.Channel's checks passed on the channel.

// historyKey is one window of one channel's history, as Channel.messages
// is asked for it.
type historyKey struct {
	channel                        string
	last                           int
	hasLast                        bool
	before, after, around          string
	senders, reactions             bool
	hasBefore, hasAfter, hasAround bool
}

func newHistoryKey(channel string, w chat.HistoryWindow) historyKey {
	k := historyKey{channel: channel, senders: w.With.Senders, reactions: w.With.Reactions}
	if w.Last != nil {
		k.last, k.hasLast = *w.Last, true
	}
	k.before, k.hasBefore = deref(w.Before)
	k.after, k.hasAfter = deref(w.After)
	k.around, k.hasAround = deref(w.Around)
	return k
}

func deref(s *string) (string, bool) {
	if s == nil {
		return "", false
	}
	return *s, true
}

// prefetched holds what a root field read for one of its child fields in
// one response (history and timeline pages), for the child to take once.
type prefetched[K comparable, V any] struct {
	mu    sync.Mutex
	items map[K]V
}

func (p *prefetched[K, V]) put(k K, v V) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.items == nil {
		p.items = map[K]V{}
	}
	p.items[k] = v
}

// take returns what was read for k, once.
func (p *prefetched[K, V]) take(k K) (V, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.items[k]
	delete(p.items, k)
	return v, ok
}

// channelWithHistory is Query.channel: with the page its one messages
// field will ask for read in the same round trip when it can be.
func (r *queryResolver) channelWithHistory(ctx context.Context, id string) (*store.Channel, error) {
	w, ok := messagesWindow(ctx)
	if !ok {
		return r.Chat.Channel(ctx, id)
	}
	ch, page, err := r.Chat.ChannelWithHistory(ctx, id, w)
	if err != nil || ch == nil || page == nil {
		return ch, err
	}
	r.loadersFor(ctx).history.put(newHistoryKey(ch.ID, w), *page)
	return ch, nil
}

// messagesWindow is the window of the one messages field selected on the
// channel, as Channel.messages will be asked for it; not ok when there is
// none, or more than one, or its arguments do not read plainly.
func messagesWindow(ctx context.Context) (chat.HistoryWindow, bool) {
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return chat.HistoryWindow{}, false
	}
	var field *graphql.CollectedField
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, []string{"Channel"}) {
		if f.Name == "messages" {
			if field != nil {
				return chat.HistoryWindow{}, false
			}
			field = &f
		}
	}
	if field == nil {
		return chat.HistoryWindow{}, false
	}
	args := field.ArgumentMap(oc.Variables)
	var w chat.HistoryWindow
	if v := args["last"]; v != nil {
		n, err := graphql.UnmarshalInt(v)
		if err != nil {
			return chat.HistoryWindow{}, false
		}
		w.Last = &n
	}
	for name, dst := range map[string]**string{"before": &w.Before, "after": &w.After, "around": &w.Around} {
		if v := args[name]; v != nil {
			s, ok := v.(string)
			if !ok {
				return chat.HistoryWindow{}, false
			}
			*dst = &s
		}
	}
	w.With = store.HistoryExtras{
		Senders:   selectedIn(oc, field.Selections, "edges", "node", "user"),
		Reactions: selectedIn(oc, field.Selections, "edges", "node", "reactionCounts"),
	}
	return w, true
}
