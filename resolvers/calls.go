package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// DefaultCallParticipantTimeout is how long a participant stays in a call
// without a callEvents subscription (CALL_PARTICIPANT_TIMEOUT).
const DefaultCallParticipantTimeout = 30 * time.Second

// callLoaders are the dataloaders of the calls product. A fresh set is
// made for every response, subscription events included, so they are
// created together on first use: a response that needs none (a relayed
// signal, say) allocates nothing for them.
type callLoaders struct {
	callStore *store.Store
	callOnce  sync.Once
	callSet   *callLoaderSet
}

// callLoaderSet holds the calls product's loaders.
type callLoaderSet struct {
	Calls           *Loader[string, *store.Call]
	CallMembers     *Loader[string, []*store.CallMember]
	LiveSessions    *Loader[string, *store.CallSession]
	SessionsByCall  *Loader[callSessionsKey, []*store.CallSession]
	CallParticipant *Loader[uuid.UUID, []*store.CallParticipant]
	SFUDrained      *Loader[string, bool]
}

// callSessionsKey asks for a call's newest sessions.
type callSessionsKey struct {
	call  string
	first int
}

func newCallLoaders(s *store.Store) callLoaders { return callLoaders{callStore: s} }

// calls returns the calls product's loaders, creating them on first use.
func (l *callLoaders) calls() *callLoaderSet {
	l.callOnce.Do(func() { l.callSet = newCallLoaderSet(l.callStore) })
	return l.callSet
}

func newCallLoaderSet(s *store.Store) *callLoaderSet {
	return &callLoaderSet{
		Calls:        NewLoader(s.CallsByID),
		CallMembers:  NewLoader(s.CallMembersByCall),
		LiveSessions: NewLoader(s.LiveCallSessions),
		SessionsByCall: NewLoader(func(ctx context.Context, keys []callSessionsKey) ([][]*store.CallSession, error) {
			// Usually every key asks for the same page size: one statement.
			out := make([][]*store.CallSession, len(keys))
			byFirst := map[int][]int{}
			for i, k := range keys {
				byFirst[k.first] = append(byFirst[k.first], i)
			}
			for first, idx := range byFirst {
				ids := make([]string, len(idx))
				for j, i := range idx {
					ids[j] = keys[i].call
				}
				sessions, err := s.CallSessionsByCall(ctx, ids, first)
				if err != nil {
					return nil, err
				}
				for j, i := range idx {
					out[i] = sessions[j]
				}
			}
			return out, nil
		}),
		CallParticipant: NewLoader(s.CallParticipantsBySession),
		SFUDrained: NewLoader(func(ctx context.Context, ids []string) ([]bool, error) {
			drained, err := s.DrainedSFUs(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]bool, len(ids))
			for i, id := range ids {
				out[i] = drained[id]
			}
			return out, nil
		}),
	}
}

// setCallComplexity gives the calls product's list fields their cost.
func setCallComplexity(c *graph.ComplexityRoot) {
	c.Call.Members = func(child int) int { return 1 + 100*child }
	c.Call.Sessions = func(child int, first *int) int { return listCost(child, first) }
	c.CallSession.Participants = func(child int, _ *bool) int { return 1 + 20*child }
	c.CallJoin.Others = func(child int) int { return 1 + 20*child }
	c.Query.SfuNodes = func(child int) int { return 1 + 20*child }
}

// callRuntime is the calls product's state on one node: the configured SFU
// nodes, the in-process cache of signaling facts, and the liveness of the
// participants whose callEvents subscriptions this node holds.
type callRuntime struct {
	r       *Resolver
	nodes   []sfu.Node
	timeout time.Duration
	log     *slog.Logger

	// facts caches participants' immutable facts (user, session, call) so
	// the signaling path authorizes without any round trip. Entries of
	// participants still in the call are cached only while the node hears
	// CallLeftTopic (cacheLive), and only if no departure arrived during
	// the lookup (generation), so a departure is never missed; a departed
	// participant is cached for good (leaving is final).
	facts      *lru.Cache[uuid.UUID, *store.CallParticipant]
	cacheLive  atomic.Bool
	generation atomic.Uint64

	liveness callLiveness
}

// callFactsCacheSize bounds the in-process facts cache (about 200 bytes each).
const callFactsCacheSize = 100_000

// calls returns the node's calls runtime, starting it on first use.
func (r *Resolver) calls() *callRuntime {
	r.callOnce.Do(func() {
		rt := &callRuntime{r: r, nodes: r.SFUNodes, timeout: r.CallParticipantTimeout, log: r.Log}
		if len(rt.nodes) == 0 {
			rt.nodes = sfu.Default
		}
		if rt.timeout <= 0 {
			rt.timeout = DefaultCallParticipantTimeout
		}
		if rt.log == nil {
			rt.log = slog.Default()
		}
		rt.facts, _ = lru.New[uuid.UUID, *store.CallParticipant](callFactsCacheSize)
		rt.liveness = callLiveness{store: r.Store, timeout: rt.timeout, log: rt.log, held: map[uuid.UUID]int{}}
		ready := make(chan struct{})
		go rt.watchDepartures(ready)
		// Wait briefly for the first subscription so the cache works from
		// the first signal; without it lookups just skip the cache.
		select {
		case <-ready:
		case <-time.After(2 * time.Second):
		}
		r.callRT = rt
	})
	return r.callRT
}

// watchDepartures listens on CallLeftTopic and keeps the facts cache
// honest, until the bus closes.
func (rt *callRuntime) watchDepartures(ready chan struct{}) {
	signalled := false
	defer func() {
		if !signalled {
			close(ready)
		}
	}()
	for {
		sub, err := rt.r.Bus.Subscribe(context.Background(), store.CallLeftTopic)
		if err != nil {
			if errors.Is(err, bus.ErrClosed) {
				return
			}
			rt.log.Warn("calls: subscribe to departures; facts cache off", "err", err)
			time.Sleep(time.Second)
			continue
		}
		rt.cacheLive.Store(true)
		if !signalled {
			close(ready)
			signalled = true
		}
		for ev := range sub.C {
			if ev.Gap {
				rt.purgeFacts()
				continue
			}
			for _, id := range store.DecodeCallLeft(ev.Data) {
				rt.markLeft(id)
			}
		}
		rt.cacheLive.Store(false)
		rt.purgeFacts()
		if errors.Is(sub.Err(), bus.ErrClosed) {
			return
		}
	}
}

func (rt *callRuntime) purgeFacts() {
	rt.generation.Add(1)
	rt.facts.Purge()
}

// markLeft records in the cache that a participant has left.
func (rt *callRuntime) markLeft(id uuid.UUID) {
	rt.generation.Add(1)
	if p, ok := rt.facts.Peek(id); ok && p.LeftAt == nil {
		left := *p
		now := time.Now().UTC()
		left.LeftAt = &now
		rt.facts.Add(id, &left)
	}
}

// remember caches the facts of a participant that has just joined here,
// unless a departure arrived since gen (then it might be this one's).
func (rt *callRuntime) remember(p *store.CallParticipant, gen uint64) {
	if rt.cacheLive.Load() && rt.generation.Load() == gen {
		rt.facts.Add(p.ID, p)
	}
}

// participants returns the facts of a and b (nil when unknown): from the
// cache, else from Redis in one round trip, else from PostgreSQL.
func (rt *callRuntime) participants(ctx context.Context, a, b uuid.UUID) (*store.CallParticipant, *store.CallParticipant, error) {
	pa, okA := rt.facts.Get(a)
	pb, okB := rt.facts.Get(b)
	if okA && okB {
		return pa, pb, nil
	}
	gen := rt.generation.Load()
	var ids []uuid.UUID
	switch {
	case a == b:
		ids = []uuid.UUID{a}
	case !okA && !okB:
		ids = []uuid.UUID{a, b}
	case !okA:
		ids = []uuid.UUID{a}
	default:
		ids = []uuid.UUID{b}
	}
	found, err := rt.r.Store.CallParticipantFacts(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	cache := rt.cacheLive.Load() && rt.generation.Load() == gen
	for i, id := range ids {
		p := found[i]
		if p != nil && (p.LeftAt != nil || cache) {
			rt.facts.Add(id, p)
		}
		if id == a {
			pa = p
		}
		if id == b {
			pb = p
		}
	}
	return pa, pb, nil
}

// participant returns one participant's facts, nil when unknown.
func (rt *callRuntime) participant(ctx context.Context, id uuid.UUID) (*store.CallParticipant, error) {
	p, _, err := rt.participants(ctx, id, id)
	return p, err
}

// ownParticipant checks that the participant id names one of the caller's
// participants that is still in its call, and returns its facts.
func (rt *callRuntime) ownParticipant(ctx context.Context, caller auth.Identity, field, raw string) (*store.CallParticipant, error) {
	id, err := store.ParseID(field, raw)
	if err != nil {
		return nil, err
	}
	p, err := rt.participant(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := checkOwnParticipant(caller, raw, p); err != nil {
		return nil, err
	}
	return p, nil
}

func checkOwnParticipant(caller auth.Identity, raw string, p *store.CallParticipant) error {
	if p == nil {
		return store.NotFound("participant", raw)
	}
	if p.UserID != caller.UserID {
		return auth.Forbidden("participant %q belongs to another user; use the participant id joinCall returned to you", raw)
	}
	if p.LeftAt != nil {
		return store.Conflict("participant %q has left the call; join it again for a new participant", raw)
	}
	return nil
}

// callLiveness keeps alive the participants whose callEvents subscriptions
// this node holds: it pushes their Redis deadline forward every third of
// the timeout, in one round trip for all of them. The refresher runs only
// while there is something to refresh.
type callLiveness struct {
	store   *store.Store
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	held    map[uuid.UUID]int
	running bool
}

// hold starts keeping a participant alive (one call per subscription).
func (l *callLiveness) hold(ctx context.Context, id uuid.UUID) error {
	l.mu.Lock()
	l.held[id]++
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run()
	}
	return l.store.KeepCallParticipantsAlive(ctx, []uuid.UUID{id}, time.Now().Add(l.timeout))
}

// release stops keeping a participant alive for one subscription. The
// deadline is pushed once more, so the timeout counts from now.
func (l *callLiveness) release(id uuid.UUID) {
	l.mu.Lock()
	if l.held[id]--; l.held[id] <= 0 {
		delete(l.held, id)
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.store.KeepCallParticipantsAlive(ctx, []uuid.UUID{id}, time.Now().Add(l.timeout)); err != nil {
		l.log.Warn("calls: last liveness refresh", "participant", id, "err", err)
	}
}

func (l *callLiveness) run() {
	t := time.NewTicker(max(l.timeout/3, 10*time.Millisecond))
	defer t.Stop()
	for range t.C {
		l.mu.Lock()
		if len(l.held) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		ids := make([]uuid.UUID, 0, len(l.held))
		for id := range l.held {
			ids = append(ids, id)
		}
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), max(l.timeout/3, time.Second))
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			if err := l.store.KeepCallParticipantsAlive(ctx, ids[:n], time.Now().Add(l.timeout)); err != nil {
				l.log.Warn("calls: refresh liveness", "participants", len(ids), "err", err)
			}
			ids = ids[n:]
		}
		cancel()
	}
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

// deliverHeld sends the signals the bus held for the participant, in
// order, and reports whether the stream goes on.
func (rt *callRuntime) deliverHeld(ctx context.Context, me *store.CallParticipant, out *stream.Out[store.CallEvent]) bool {
	held, err := rt.heldSignals(ctx, me)
	if err != nil {
		rt.log.Warn("callEvents: held signals", "participant", me.ID, "err", err)
	}
	for _, e := range held {
		if !out.Send(ctx, e) {
			return false
		}
	}
	return true
}

// heldSignals takes the signals the bus held for the participant while no
// node listened to it.
func (rt *callRuntime) heldSignals(ctx context.Context, me *store.CallParticipant) ([]*store.CallEvent, error) {
	held, err := rt.r.Bus.TakeHeld(ctx, store.CallParticipantTopic(me.ID))
	if err != nil {
		return nil, err
	}
	events := make([]*store.CallEvent, 0, len(held))
	for _, data := range held {
		e, err := store.DecodeCallEvent(data)
		if err != nil {
			rt.log.Warn("callEvents: bad held event", "err", err)
			continue
		}
		events = append(events, e)
	}
	return events, nil
}

// startOfStream returns what a callEvents stream starts with, once its
// subscriptions are live: ready, with the session's live participants,
// then the signals sent to the participant before (held by the bus).
func (rt *callRuntime) startOfStream(ctx context.Context, me *store.CallParticipant) ([]*store.CallEvent, error) {
	lists, err := rt.r.Store.CallParticipantsBySession(ctx, []uuid.UUID{me.SessionID})
	if err != nil {
		return nil, err
	}
	live := make([]*store.CallParticipant, 0, len(lists[0]))
	for _, p := range lists[0] {
		if p.LeftAt == nil {
			live = append(live, p)
		}
	}
	held, err := rt.heldSignals(ctx, me)
	if err != nil {
		return nil, err
	}
	ready := &store.CallEvent{Type: store.CallEventReady, Call: me.CallID, Session: me.SessionID, Participant: me,
		Participants: live, CreatedAt: time.Now()}
	return append([]*store.CallEvent{ready}, held...), nil
}

// streamCallEvents relays a participant's events until the session ends,
// the participant leaves, or the client goes away.
func (rt *callRuntime) streamCallEvents(ctx context.Context, cancel context.CancelFunc, me *store.CallParticipant,
	session, own *bus.Subscription, start []*store.CallEvent, out *stream.Out[store.CallEvent]) {
	defer out.Close()
	defer cancel()
	defer rt.liveness.release(me.ID)
	// The subscriptions are live: say so first (with who is there), so a
	// client knows that signals sent to this participant from now on will
	// arrive and can start negotiating (send its offers) without racing
	// its own stream; then what was sent before it started.
	for _, e := range start {
		if !out.Send(ctx, e) {
			return
		}
	}
	for {
		var ev *bus.Event
		var ok bool
		var sub *bus.Subscription
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-session.C:
			sub = session
		case ev, ok = <-own.C:
			sub = own
		}
		if !ok {
			stream.End(ctx, sub.Err())
			return
		}
		var e *store.CallEvent
		if ev.Gap {
			// Signals sent while this node's subscription was gone were
			// held (nobody listened): deliver them now, once per gap
			// (every topic of the stream reports it).
			if sub == own && !rt.deliverHeld(ctx, me, out) {
				return
			}
			// Events may have been lost while Redis was away: if this
			// participant has left meanwhile, say so and end the stream.
			// (Other lost events are not replayed; WebRTC clients recover
			// with an ICE restart.)
			now, err := rt.r.Store.CallParticipantFacts(ctx, []uuid.UUID{me.ID})
			if err != nil || now[0] == nil || now[0].LeftAt == nil {
				continue
			}
			e = &store.CallEvent{Type: store.CallEventLeft, Call: me.CallID, Session: me.SessionID, Participant: now[0], CreatedAt: *now[0].LeftAt}
		} else {
			var err error
			if e, err = store.DecodeCallEvent(ev.Data); err != nil {
				rt.log.Warn("callEvents: bad event", "err", err)
				continue
			}
		}
		if !out.Send(ctx, e) {
			return
		}
		if e.Type == store.CallEventSessionEnded || (e.Type == store.CallEventLeft && e.Participant != nil && e.Participant.ID == me.ID) {
			return
		}
	}
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

// callSignalBufs are encoding buffers for signals: the bus is done with
// one when PublishRaw returns, so the signaling path encodes without
// allocating.
var callSignalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxHeldSignals bounds the signals kept for a participant whose stream
// has not started: an offer and its trickled ICE candidates fit.
const maxHeldSignals = 256

// publishSignal sends a signal event to its addressee's topic.
func (r *Resolver) publishSignal(ctx context.Context, sig *store.Signal) error {
	buf := callSignalBufs.Get().(*[]byte)
	data := store.AppendCallEvent((*buf)[:0], &store.CallEvent{
		Type: store.CallEventSignal, Call: sig.From.CallID, Session: sig.From.SessionID, Signal: sig, CreatedAt: sig.SentAt})
	// Held when the addressee's stream has not started yet: it starts
	// within the participant timeout or the participant is gone.
	err := r.Bus.PublishOrHold(ctx, store.CallParticipantTopic(sig.To), data, r.calls().timeout, maxHeldSignals)
	if cap(data) <= 128<<10 {
		*buf = data[:0]
		callSignalBufs.Put(buf)
	}
	return err
}

// requireCallHost checks that the caller is a host of the call or an admin.
func (r *Resolver) requireCallHost(ctx context.Context, cid string) error {
	caller, err := caller(ctx)
	if err != nil {
		return err
	}
	if _, err := store.ParseCallID("id", cid); err != nil {
		return err
	}
	role, err := r.Store.CallMembership(ctx, cid, caller.UserID)
	if err != nil {
		return err
	}
	if role != store.CallRoleHost && !caller.IsAdmin() {
		return auth.Forbidden("only the hosts of call %q and admins may do this", cid)
	}
	return nil
}

// departureTimeout bounds what follows a committed departure.
const departureTimeout = 10 * time.Second

// departuresCommitted, when set (by tests), runs with the request's context
// after a removal of participants commits and before what follows it.
var departuresCommitted func(ctx context.Context)

// finishDepartures follows a committed removal of participants: this
// node's cache learns at once, then Redis, the other nodes and the
// sessions' subscribers.
func (r *Resolver) finishDepartures(ctx context.Context, d *store.CallDepartures) {
	if d == nil {
		return
	}
	if departuresCommitted != nil {
		departuresCommitted(ctx)
	}
	// The removal has committed: what follows must happen even when the
	// request that made it ends now (a client that leaves and closes its
	// tab at once), as nothing would repeat it later.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), departureTimeout)
	defer cancel()
	rt := r.calls()
	for _, p := range d.Left {
		rt.markLeft(p.ID)
	}
	r.Store.FinishCallDepartures(ctx, r.Bus, d)
}

// callInList reports whether the object whose field is being resolved is
// an element of a list: the list's resolver prefetched for all elements.
func callInList(ctx context.Context) bool {
	fc := graphql.GetFieldContext(ctx)
	return fc != nil && fc.Parent != nil && fc.Parent.Index != nil
}

// sfuNode returns a configured SFU node by id.
func (r *Resolver) sfuNode(id string) (*store.SFUNode, bool) {
	for _, n := range store.SFUNodes(r.calls().nodes) {
		if n.ID == id {
			return n, true
		}
	}
	return nil, false
}
