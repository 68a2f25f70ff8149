package resolvers

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/store"
)

// setModerationComplexity gives the moderation list fields their cost.
func setModerationComplexity(c *graph.ComplexityRoot) {
	c.Query.Flags = func(child int, _ *store.FlagStatus, first *int, _ *string) int { return listCost(child, first) }
}

// prefetchFlags loads, one statement each, the users and messages a page
// of flags will show.
func (r *Resolver) prefetchFlags(ctx context.Context, flags []*store.Flag) {
	if len(flags) == 0 {
		return
	}
	l := r.loadersFor(ctx)
	if selected(ctx, "edges", "node", "flaggedBy") {
		prefetchUsers(ctx, l, flags, func(f *store.Flag) string { return f.FlaggedByID })
	}
	if selected(ctx, "edges", "node", "subject") {
		prefetchUsers(ctx, l, flags, func(f *store.Flag) string { return f.SubjectID })
	}
	if selected(ctx, "edges", "node", "message") {
		var ids []uuid.UUID
		for _, f := range flags {
			if id, ok := f.TargetUUID(); ok && f.TargetKind == store.FlagMessage {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			_ = l.chat().Messages.Prefetch(ctx, ids)
		}
	}
}
