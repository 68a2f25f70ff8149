// Package product is what Brook's product packages (users, feeds, chat,
// calls) share: the parts of a node each one works with.
package product

import (
	"log/slog"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Parts are the parts of a node a product works with.
type Parts struct {
	// Store runs the SQL (PostgreSQL, the truth).
	Store *store.Store
	// State holds what is kept in Redis (counters, presence, liveness).
	State *ephemeral.State
	// Bus carries events to subscribers on every node.
	Bus *bus.Bus
	// Hooks takes the products' events for webhooks (one Emit per event,
	// which costs nothing while no webhook wants it); nil emits nothing.
	Hooks *webhooks.Service
	// Push takes the pushes to offline devices (new messages, mentions,
	// rings); nil, or one with no provider, pushes nothing.
	Push *push.Service
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Log returns the logger to use.
func (p Parts) Log() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}
