package api

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/redisguard"
)

// presenceLease is how long a connection counts as open without a refresh.
// A node refreshes its connections every third of it, so a crashed node's
// users go offline within a lease.
const presenceLease = 60 * time.Second

// presence tracks this node's WebSocket connections in Redis, which makes a
// user online while any node holds a connection of theirs.
type presence struct {
	state    *ephemeral.State
	announce func(ctx context.Context, userID string)
	log      *slog.Logger

	mu    sync.Mutex
	conns map[string]string // connection id to user id
}

func (p *presence) connect(ctx context.Context, connID, userID string) {
	p.mu.Lock()
	p.conns[connID] = userID
	p.mu.Unlock()
	wasOffline, err := p.state.MarkOnline(ctx, userID, connID, time.Now().Add(presenceLease))
	if err != nil {
		p.log.Log(ctx, redisguard.LogLevel(err), "presence: mark online", "user", userID, "err", err)
		return
	}
	if wasOffline {
		p.announce(ctx, userID)
	}
}

func (p *presence) disconnect(connID, userID string) {
	p.mu.Lock()
	delete(p.conns, connID)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nowOffline, err := p.state.MarkOffline(ctx, userID, connID)
	if err != nil {
		p.log.Log(ctx, redisguard.LogLevel(err), "presence: mark offline", "user", userID, "err", err)
		return
	}
	if nowOffline {
		p.announce(ctx, userID)
	}
}

// run refreshes the leases of this node's connections until ctx ends.
func (p *presence) run(ctx context.Context) {
	t := time.NewTicker(presenceLease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.mu.Lock()
			conns := maps.Clone(p.conns)
			p.mu.Unlock()
			if err := p.state.RefreshPresence(ctx, conns, time.Now().Add(presenceLease)); err != nil {
				p.log.Log(ctx, redisguard.LogLevel(err), "presence: refresh", "err", err)
			}
		}
	}
}
