package calls

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/ephemeral"
)

// liveness keeps alive the participants whose callEvents subscriptions
// this node holds: it pushes their Redis deadline forward every third of
// the timeout, in one round trip for all of them. The refresher runs only
// while there is something to refresh, and not after the Service stops.
type liveness struct {
	state   *ephemeral.State
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	held    map[uuid.UUID]int
	running bool
	// ctx ends the refresher and wg counts it (from Start); done is set
	// when the Service stops, after which no refresher starts.
	ctx  context.Context
	wg   *sync.WaitGroup
	done bool
}

// start makes ctx end the refresher, which wg counts.
func (l *liveness) start(ctx context.Context, wg *sync.WaitGroup) {
	l.mu.Lock()
	l.ctx, l.wg = ctx, wg
	l.mu.Unlock()
}

// stopped starts no refresher any more.
func (l *liveness) stopped() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

// hold starts keeping a participant alive (one call per subscription).
func (l *liveness) hold(ctx context.Context, id uuid.UUID) error {
	l.mu.Lock()
	l.held[id]++
	start := !l.running && !l.done
	if start {
		l.running = true
		if l.wg != nil {
			l.wg.Add(1)
		}
	}
	runCtx, wg := l.ctx, l.wg
	l.mu.Unlock()
	if start {
		go l.run(runCtx, wg)
	}
	return l.state.KeepCallParticipantsAlive(ctx, []uuid.UUID{id}, time.Now().Add(l.timeout))
}

// release stops keeping a participant alive for one subscription. The
// deadline is pushed once more, so the timeout counts from now.
func (l *liveness) release(id uuid.UUID) {
	l.mu.Lock()
	if l.held[id]--; l.held[id] <= 0 {
		delete(l.held, id)
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.state.KeepCallParticipantsAlive(ctx, []uuid.UUID{id}, time.Now().Add(l.timeout)); err != nil {
		l.log.Warn("calls: last liveness refresh", "participant", id, "err", err)
	}
}

func (l *liveness) run(ctx context.Context, wg *sync.WaitGroup) {
	if wg != nil {
		defer wg.Done()
	}
	t := time.NewTicker(max(l.timeout/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.running = false
			l.mu.Unlock()
			return
		case <-t.C:
		}
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
		rctx, cancel := context.WithTimeout(context.Background(), max(l.timeout/3, time.Second))
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			if err := l.state.KeepCallParticipantsAlive(rctx, ids[:n], time.Now().Add(l.timeout)); err != nil {
				l.log.Warn("calls: refresh liveness", "participants", len(ids), "err", err)
			}
			ids = ids[n:]
		}
		cancel()
	}
}
