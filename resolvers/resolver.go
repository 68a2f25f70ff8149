// Package resolvers implements Brook's GraphQL schema as glue: a resolver
// reads its arguments, calls one method of a product (users, feeds, chat,
// calls), and maps the result; the products own the rules. What is
// GraphQL's own stays here: per-operation dataloaders, prefetching what a
// selection needs, connections and cost.
package resolvers

import (
	"context"
	"log/slog"

	"github.com/brookhq/brook/calls"
	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/feeds"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/uploads"
	"github.com/brookhq/brook/users"
	"github.com/brookhq/brook/webhooks"
)

// Resolver holds what every resolver needs.
type Resolver struct {
	People *users.Service
	Feeds  *feeds.Service
	Chat   *chat.Service
	Calls  *calls.Service
	Hooks  *webhooks.Service
	// Uploads signs attachments' file URLs; nil serves stored URLs only.
	Uploads *uploads.Service
	Log     *slog.Logger
}

// caller returns the signed-in identity; the API lets no request without
// one reach a resolver, so this fails only if that wiring breaks.
func caller(ctx context.Context) (auth.Identity, error) { return auth.Caller(ctx) }
