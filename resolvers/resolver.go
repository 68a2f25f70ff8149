// Package resolvers implements Brook's GraphQL schema as glue: a resolver
// reads its arguments, calls one method of a product (users, feeds, chat,
// calls), and maps the result; the products own the rules. What is
// GraphQL's own stays here: per-operation dataloaders, prefetching what a
// selection needs, connections and cost.
package resolvers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/sfu"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/users"
)

// Resolver holds what every resolver needs.
type Resolver struct {
	People *users.Service
	Feeds  *feeds.Service
	Chat   *chat.Service
	Calls  *calls.Service
	Log    *slog.Logger

	// Store, State and Bus serve the calls resolvers until their rules
	// move into their product.
	Store *store.Store
	State *ephemeral.State
	Bus   *bus.Bus

	// SFUNodes are the SFU media servers call sessions are assigned to
	// (SFU_NODES); none means sfu.Default.
	SFUNodes []sfu.Node
	// CallParticipantTimeout is how long a call participant stays without
	// a callEvents subscription (CALL_PARTICIPANT_TIMEOUT; 0: 30 s).
	CallParticipantTimeout time.Duration

	callOnce sync.Once
	callRT   *callRuntime
}

// caller returns the signed-in identity; the API lets no request without
// one reach a resolver, so this fails only if that wiring breaks.
func caller(ctx context.Context) (auth.Identity, error) { return auth.Caller(ctx) }
