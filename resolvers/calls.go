package resolvers

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/store"
)

// callLoaders are the dataloaders of the calls product. A fresh set is
// made for every response, subscription events included, so they are
// created together on first use: a response that needs none (a relayed
// signal, say) allocates nothing for them.
type callLoaders struct {
	callService *calls.Service
	callOnce    sync.Once
	callSet     *callLoaderSet
}

// callLoaderSet holds the calls product's loaders.
type callLoaderSet struct {
	Calls           *Loader[string, *store.Call]
	CallMembers     *Loader[string, []*store.CallMember]
	LiveSessions    *Loader[string, *store.CallSession]
	SessionsByCall  *Loader[callSessionsKey, []*store.CallSession]
	CallParticipant *Loader[uuid.UUID, []*store.CallParticipant]
	SFUDrained      *Loader[string, bool]
	RingsByCall     *Loader[callSessionsKey, []*store.CallRing]
	// ParticipantState and ParticipantPerms: see call_permissions.go.
	ParticipantState *Loader[uuid.UUID, *store.CallParticipantState]
	ParticipantPerms *Loader[uuid.UUID, []calls.CallPermission]
}

// callSessionsKey asks for a call's newest sessions.
type callSessionsKey struct {
	call  string
	first int
}

func newCallLoaders(s *calls.Service) callLoaders { return callLoaders{callService: s} }

// calls returns the calls product's loaders, creating them on first use.
func (l *callLoaders) calls() *callLoaderSet {
	l.callOnce.Do(func() { l.callSet = newCallLoaderSet(l.callService) })
	return l.callSet
}

func newCallLoaderSet(s *calls.Service) *callLoaderSet {
	return &callLoaderSet{
		Calls:            NewLoader(s.CallsByID),
		CallMembers:      NewLoader(s.Members),
		LiveSessions:     NewLoader(s.LiveSessions),
		SessionsByCall:   NewLoader(pagedByCall(s.Sessions)),
		CallParticipant:  NewLoader(s.Participants),
		SFUDrained:       NewLoader(s.SFUsDrained),
		RingsByCall:      NewLoader(pagedByCall(s.RingsByCall)),
		ParticipantState: NewLoader(s.ParticipantStates),
		ParticipantPerms: NewLoader(s.ParticipantPermissions),
	}
}

// pagedByCall makes the batch read of a loader of calls' newest things
// (a page size each) from a read of many calls at one page size: usually
// every key asks for the same size, one statement.
func pagedByCall[V any](read func(ctx context.Context, ids []string, first int) ([][]V, error)) func(context.Context, []callSessionsKey) ([][]V, error) {
	return func(ctx context.Context, keys []callSessionsKey) ([][]V, error) {
		out := make([][]V, len(keys))
		byFirst := map[int][]int{}
		for i, k := range keys {
			byFirst[k.first] = append(byFirst[k.first], i)
		}
		for first, idx := range byFirst {
			ids := make([]string, len(idx))
			for j, i := range idx {
				ids[j] = keys[i].call
			}
			got, err := read(ctx, ids, first)
			if err != nil {
				return nil, err
			}
			for j, i := range idx {
				out[i] = got[j]
			}
		}
		return out, nil
	}
}

// ringUser resolves a ring's user or caller: without a lookup when only
// its id is selected.
func (r *Resolver) ringUser(ctx context.Context, id string) (*store.User, error) {
	if onlyID(ctx) {
		return &store.User{ID: id}, nil
	}
	return r.user(ctx, id)
}

// callLookup reads calls for the calls product through the request's
// loaders, so what it reads is there for the response.
type callLookup struct{ l *callLoaderSet }

func (c callLookup) Calls(ctx context.Context, ids []string) ([]*store.Call, error) {
	return c.l.Calls.Fetch(ctx, ids)
}

// setCallComplexity gives the calls product's list fields their cost.
func setCallComplexity(c *graph.ComplexityRoot) {
	c.Call.Members = func(child int) int { return 1 + 100*child }
	c.Call.Sessions = func(child int, first *int) int { return listCost(child, first) }
	c.CallSession.Participants = func(child int, _ *bool) int { return 1 + 20*child }
	c.CallJoin.Others = func(child int) int { return 1 + 20*child }
	c.Query.SfuNodes = func(child int) int { return 1 + 20*child }
	c.Call.Rings = func(child int, first *int) int { return listCost(child, first) }
	c.Mutation.RingCall = func(child int, _ string, members []string) int { return 1 + len(members)*child }
	c.Mutation.CancelRing = func(child int, _ string) int { return 1 + 20*child }
}

// onlyID reports whether the field being resolved selects nothing but id
// (and __typename): then a User can be answered without loading it.
func onlyID(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return false
	}
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, nil) {
		if f.Name != "id" && f.Name != "__typename" {
			return false
		}
	}
	return true
}

// prefetchUsersOf loads the users of a list of participants in one
// statement, for the user fields below the list.
func (r *Resolver) prefetchUsersOf(ctx context.Context, ps []*store.CallParticipant) {
	if len(ps) == 0 {
		return
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.UserID
	}
	_ = r.loadersFor(ctx).Users.Prefetch(ctx, ids)
}

// prefetchSessionParticipants loads the participants of a page of
// sessions in one statement, and their users in one more when selected.
func (r *Resolver) prefetchSessionParticipants(ctx context.Context, l *callLoaderSet, sessions []*store.CallSession) error {
	ids := make([]uuid.UUID, len(sessions))
	for i, cs := range sessions {
		ids[i] = cs.ID
	}
	parts, err := l.CallParticipant.Fetch(ctx, ids)
	if err != nil {
		return err
	}
	if selected(ctx, "participants", "user") {
		var all []*store.CallParticipant
		for _, ps := range parts {
			all = append(all, ps...)
		}
		r.prefetchUsersOf(ctx, all)
	}
	return nil
}

// liveOnly returns the participants still in their session.
func liveOnly(all []*store.CallParticipant) []*store.CallParticipant {
	out := make([]*store.CallParticipant, 0, len(all))
	for _, p := range all {
		if p.LeftAt == nil {
			out = append(out, p)
		}
	}
	return out
}

// callInList reports whether the object whose field is being resolved is
// an element of a list: the list's resolver prefetched for all elements.
func callInList(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && fc.Parent != nil && fc.Parent.Index != nil
}
