// Package webhooks delivers Brook's product events to HTTP endpoints that
// admins register: signed, retried with backoff, in order per channel,
// feed or call, and parked after too many attempts where an admin sees and
// redelivers them.
//
// A product announces an event with one call, Emit, inside the transaction
// of the change (or of the change's own outbox job): the deliveries are
// rows written with it, as durable as the change. Whether any webhook
// wants the event is decided from an in-memory copy of the registered
// webhooks, so with none registered an event costs nothing, not one SQL
// statement. The copy is reloaded when an admin changes a webhook (a bus
// notice reaches every node) and periodically, in case a notice was lost.
package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/store"
)

// changedTopic carries a notice that the registered webhooks changed.
const changedTopic = "webhooks:changed"

// Options tune a Service. Zero values take the defaults.
type Options struct {
	Store  *store.Store
	Bus    *bus.Bus
	Logger *slog.Logger
	// Concurrency is how many deliveries one node sends at once (8).
	Concurrency int
	// PerWebhook is how many of them one webhook may hold (a quarter of
	// Concurrency, at least 1), so a hanging receiver leaves the others
	// free slots.
	PerWebhook int
	// Timeout bounds one attempt, connection to last byte (5 s).
	Timeout time.Duration
	// MaxAttempts is how many attempts a delivery gets before it is
	// parked (8).
	MaxAttempts int
	// RetryBase is the wait after the first failure; it doubles after
	// each, up to RetryMax, with ±20% jitter (1 s, 1 h).
	RetryBase, RetryMax time.Duration
	// Poll is how often due deliveries are looked for while some webhook
	// exists (250 ms).
	Poll time.Duration
	// Reload is how often the webhooks are reloaded whatever the notices
	// say, and how long other nodes may take to see the first webhook
	// (10 s).
	Reload time.Duration
	// Client sends the requests; nil means a client of Timeout's.
	Client *http.Client
	// Retention is how long DELIVERED deliveries are kept (7 days,
	// BROOK_WEBHOOK_RETENTION); others are kept until delivered or
	// deleted with their webhook.
	Retention time.Duration
	// RetentionEvery is how often the retention job runs (10 min).
	RetentionEvery time.Duration
	// RetentionBatch is how many deliveries one statement of it deletes
	// (1000).
	RetentionBatch int
	// BeforeSend is the synchronous before-send hook (none by default).
	BeforeSend BeforeSendOptions
}

// Service registers webhooks and delivers events to them.
type Service struct {
	store *store.Store
	bus   *bus.Bus
	log   *slog.Logger
	opts  Options

	// hooks is the registered webhooks, replaced whole on each load.
	hooks atomic.Pointer[[]*store.Webhook]
	wake  chan struct{}
	// loaded is signalled after each Load, for listen to follow whether
	// any webhook exists.
	loaded chan struct{}

	stop    context.CancelFunc
	running sync.WaitGroup
}

// New returns a Service; Load it before products emit events through it.
func New(opts Options) *Service {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.PerWebhook <= 0 {
		opts.PerWebhook = max(1, opts.Concurrency/4)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	def(&opts.Timeout, 5*time.Second)
	def(&opts.RetryBase, time.Second)
	def(&opts.RetryMax, time.Hour)
	def(&opts.Poll, 250*time.Millisecond)
	def(&opts.Reload, 10*time.Second)
	def(&opts.Retention, 7*24*time.Hour)
	def(&opts.RetentionEvery, 10*time.Minute)
	def(&opts.BeforeSend.Timeout, 500*time.Millisecond)
	if opts.RetentionBatch <= 0 {
		opts.RetentionBatch = 1000
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{store: opts.Store, bus: opts.Bus, log: opts.Logger, opts: opts, wake: make(chan struct{}, 1), loaded: make(chan struct{}, 1)}
	s.hooks.Store(&[]*store.Webhook{})
	return s
}

// Load reads the registered webhooks into memory.
func (s *Service) Load(ctx context.Context) error {
	hooks, err := s.store.Webhooks(ctx)
	if err != nil {
		return err
	}
	s.hooks.Store(&hooks)
	select {
	case s.loaded <- struct{}{}:
	default:
	}
	return nil
}

// Event is one product event to deliver.
type Event struct {
	// Type is the event type (message.new, activity.added, ...).
	Type string
	// Key orders deliveries: those of one webhook with the same key go out
	// one at a time, in the order of At ("channel:<id>", "feed:<id>",
	// "call:<id>").
	Key string
	// At is when the change happened.
	At time.Time
	// Payload is marshalled into the body beside type and created_at; it
	// must marshal to a JSON object.
	Payload any
}

// Wants reports whether some active webhook subscribes to typ. It reads
// memory only. A nil Service wants nothing.
func (s *Service) Wants(typ string) bool {
	if s == nil {
		return false
	}
	for _, h := range *s.hooks.Load() {
		if h.Wants(typ) {
			return true
		}
	}
	return false
}

// Emit writes a delivery of ev for every webhook that wants it, on tx (the
// transaction of the change, or of its job). With no such webhook it runs
// no SQL. A nil Service emits nothing.
func (s *Service) Emit(ctx context.Context, tx *store.Store, ev Event) error {
	if !s.Wants(ev.Type) {
		return nil
	}
	body, err := Body(ev)
	if err != nil {
		return err
	}
	var ds []store.NewDelivery
	for _, h := range *s.hooks.Load() {
		if h.Wants(ev.Type) {
			ds = append(ds, store.NewDelivery{WebhookID: h.ID, Key: ev.Key, EventType: ev.Type, Body: string(body), OccurredAt: ev.At})
		}
	}
	if err := tx.AddDeliveries(ctx, ds); err != nil {
		return err
	}
	s.Wake()
	return nil
}

// Write runs fn on st directly when no webhook wants typ, costing nothing
// more than fn; otherwise in a transaction in which the event fn returns
// (nil: none) is emitted, so the change and its deliveries commit
// together. For changes that have no outbox job of their own.
func (s *Service) Write(ctx context.Context, st *store.Store, typ string, fn func(tx *store.Store) (*Event, error)) error {
	return s.WriteEvents(ctx, st, []string{typ}, func(tx *store.Store) ([]Event, error) {
		ev, err := fn(tx)
		if err != nil || ev == nil {
			return nil, err
		}
		return []Event{*ev}, nil
	})
}

// WriteEvents is Write for a change that may make events of several
// types: fn runs in a transaction, and its events are emitted there, only
// when some webhook wants one of types.
func (s *Service) WriteEvents(ctx context.Context, st *store.Store, types []string, fn func(tx *store.Store) ([]Event, error)) error {
	if !s.WantsAny(types...) {
		_, err := fn(st)
		return err
	}
	return st.InTx(ctx, func(tx *store.Store) error {
		evs, err := fn(tx)
		if err != nil {
			return err
		}
		return s.EmitAll(ctx, tx, evs)
	})
}

// WantsAny reports whether some active webhook subscribes to one of types.
func (s *Service) WantsAny(types ...string) bool {
	for _, t := range types {
		if s.Wants(t) {
			return true
		}
	}
	return false
}

// EmitAll emits each of evs (see Emit).
func (s *Service) EmitAll(ctx context.Context, tx *store.Store, evs []Event) error {
	for _, ev := range evs {
		if err := s.Emit(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// Body is the JSON body delivered for ev: its payload's fields, with type
// and created_at.
func Body(ev Event) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if ev.Payload != nil {
		raw, err := json.Marshal(ev.Payload)
		if err != nil {
			return nil, fmt.Errorf("webhooks: encode %s: %w", ev.Type, err)
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("webhooks: %s payload is not an object: %w", ev.Type, err)
		}
	}
	fields["type"], _ = json.Marshal(ev.Type)
	fields["created_at"], _ = json.Marshal(ev.At.UTC())
	return json.Marshal(fields)
}

// Wake makes this node's delivery loop look for due deliveries soon.
func (s *Service) Wake() {
	if s == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the reload loops, and with deliver the delivery loop (on
// nodes that run workers), until Stop.
func (s *Service) Start(ctx context.Context, deliver bool) {
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.running.Add(2)
	go func() {
		defer s.running.Done()
		s.listen(ctx)
	}()
	go func() {
		defer s.running.Done()
		s.reloadEvery(ctx)
	}()
	if deliver {
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			s.deliverLoop(ctx)
		}()
	}
}

// Stop stops the loops and waits for the deliveries in flight.
func (s *Service) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	s.running.Wait()
}

// listen reloads the webhooks on every change notice, and after a bus gap
// (a notice may have been lost). It holds its bus subscription only while
// some webhook exists: a node of a cluster without webhooks subscribes to
// nothing, and learns of the first webhook from the periodic reload.
func (s *Service) listen(ctx context.Context) {
	if s.bus == nil {
		return
	}
	for ctx.Err() == nil {
		if len(*s.hooks.Load()) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.loaded:
				continue
			}
		}
		sctx, cancel := context.WithCancel(ctx)
		sub, err := s.bus.Subscribe(sctx, changedTopic)
		if err != nil {
			cancel()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for live := true; live; {
			select {
			case _, ok := <-sub.C:
				if !ok {
					live = false
					break
				}
				if err := s.Load(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("webhooks: reload", "err", err)
				}
				s.Wake()
			case <-s.loaded:
				live = len(*s.hooks.Load()) > 0
			}
		}
		cancel()
		for range sub.C {
			// Drain until the bus closes it.
		}
	}
}

// reloadEvery reloads the webhooks periodically.
func (s *Service) reloadEvery(ctx context.Context) {
	t := time.NewTicker(s.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Load(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("webhooks: reload", "err", err)
			}
		}
	}
}

// changed reloads this node's webhooks and tells the other nodes to.
func (s *Service) changed(ctx context.Context) {
	if err := s.Load(ctx); err != nil {
		s.log.Warn("webhooks: reload", "err", err)
	}
	if s.bus != nil {
		if err := s.bus.PublishRaw(ctx, changedTopic, []byte("1")); err != nil {
			s.log.Warn("webhooks: change notice not published; other nodes reload within the reload interval", "err", err)
		}
	}
	s.Wake()
}
