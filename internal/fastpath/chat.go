package fastpath

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// channelRoot is Query.channel.
func (s *Server) channelRoot() field {
	return objectField("Channel", true, func(ctx context.Context, f graphql.CollectedField, _ any) (*store.Channel, error) {
		args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
		id, err := graphql.UnmarshalID(args["id"])
		if err != nil {
			return nil, err
		}
		return s.root.Query().Channel(resolverContext(ctx, "Query", f, map[string]any{"id": id}), id)
	})
}

// chatTypes are the chat types of a history page: the channel, its
// messages connection, and each message's plain fields, author, reaction
// counts and own reactions when the page carries them.
func (s *Server) chatTypes() map[string]map[string]field {
	return map[string]map[string]field{
		"Channel": {
			"id":              scalar(func(c *store.Channel) graphql.Marshaler { return graphql.MarshalID(c.ID) }),
			"type":            scalar(func(c *store.Channel) graphql.Marshaler { return graphql.MarshalString(c.Type) }),
			"frozen":          scalar(func(c *store.Channel) graphql.Marshaler { return graphql.MarshalBoolean(c.Frozen) }),
			"cooldownSeconds": scalar(func(c *store.Channel) graphql.Marshaler { return graphql.MarshalInt(c.CooldownSeconds) }),
			"name":            scalar(func(c *store.Channel) graphql.Marshaler { return optString(c.Name) }),
			"image":           scalar(func(c *store.Channel) graphql.Marshaler { return optString(c.Image) }),
			"createdAt":       requiredTime(func(c *store.Channel) time.Time { return c.CreatedAt }),
			"updatedAt":       requiredTime(func(c *store.Channel) time.Time { return c.UpdatedAt }),
			"lastMessageAt":   optionalTime(func(c *store.Channel) *time.Time { return c.LastMessageAt }),
			"memberCount":     scalar(func(c *store.Channel) graphql.Marshaler { return graphql.MarshalInt(c.MemberCount) }),
			"messages": objectField("MessageConnection", false, func(ctx context.Context, f graphql.CollectedField, c *store.Channel) (*model.MessageConnection, error) {
				args := f.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
				last, err := optInt(args["last"])
				if err != nil {
					return nil, err
				}
				before, err := optString2(args["before"])
				if err != nil {
					return nil, err
				}
				after, err := optString2(args["after"])
				if err != nil {
					return nil, err
				}
				around, err := optID(args["around"])
				if err != nil {
					return nil, err
				}
				typed := map[string]any{"last": last, "before": before, "after": after, "around": around}
				return s.root.Channel().Messages(resolverContext(ctx, "Channel", f, typed), c, last, before, after, around)
			}),
		},
		"MessageConnection": {
			"edges": listField("MessageEdge", func(_ context.Context, _ graphql.CollectedField, c *model.MessageConnection) ([]*model.MessageEdge, error) {
				return c.Edges, nil
			}),
			"pageInfo": objectField("PageInfo", false, func(_ context.Context, _ graphql.CollectedField, c *model.MessageConnection) (*model.PageInfo, error) {
				return c.PageInfo, nil
			}),
		},
		"MessageEdge": {
			"cursor": scalar(func(e *model.MessageEdge) graphql.Marshaler { return graphql.MarshalString(e.Cursor) }),
			"node": objectField("Message", false, func(_ context.Context, _ graphql.CollectedField, e *model.MessageEdge) (*store.Message, error) {
				return e.Node, nil
			}),
		},
		"Message":       s.messageFields(),
		"User":          userFields(),
		"ReactionCount": reactionCountFields(),
		"PageInfo":      pageInfoFields(),
		"MessageReaction": {
			"kind":      scalar(func(r *store.MessageReaction) graphql.Marshaler { return graphql.MarshalString(r.Kind) }),
			"createdAt": requiredTime(func(r *store.MessageReaction) time.Time { return r.CreatedAt }),
		},
	}
}

// messageFields are a message's plain fields and the resolver fields whose
// value a page keeps on the message (see resolvers' prefetchMessages):
// asked of the resolver only when it will not load, else left to gqlgen.
func (s *Server) messageFields() map[string]field {
	m := s.root.Message()
	return map[string]field{
		"id":            requiredUUID(func(m *store.Message) uuid.UUID { return m.ID }),
		"text":          scalar(func(m *store.Message) graphql.Marshaler { return graphql.MarshalString(m.Text) }),
		"type":          scalar(func(m *store.Message) graphql.Marshaler { return graphql.MarshalString(m.Type) }),
		"showInChannel": scalar(func(m *store.Message) graphql.Marshaler { return graphql.MarshalBoolean(m.ShowInChannel) }),
		"replyCount":    scalar(func(m *store.Message) graphql.Marshaler { return graphql.MarshalInt(m.ReplyCount) }),
		"createdAt":     requiredTime(func(m *store.Message) time.Time { return m.CreatedAt }),
		"updatedAt":     requiredTime(func(m *store.Message) time.Time { return m.UpdatedAt }),
		"deletedAt":     optionalTime(func(m *store.Message) *time.Time { return m.DeletedAt }),
		"pinnedAt": {write: func(ctx context.Context, w *writer, _ graphql.CollectedField, obj any) error {
			t, err := m.PinnedAt(ctx, obj.(*store.Message))
			if err != nil {
				return errFallback
			}
			w.value(optTime(t))
			return nil
		}},
		"pinExpiresAt": {write: func(ctx context.Context, w *writer, _ graphql.CollectedField, obj any) error {
			t, err := m.PinExpiresAt(ctx, obj.(*store.Message))
			if err != nil {
				return errFallback
			}
			w.value(optTime(t))
			return nil
		}},
		"user": objectField("User", false, func(ctx context.Context, _ graphql.CollectedField, msg *store.Message) (*store.User, error) {
			if msg.Sender == nil || msg.Sender.ID != msg.UserID {
				return nil, errFallback // the resolver would load the author
			}
			return m.User(ctx, msg)
		}),
		"reactionCounts": listField("ReactionCount", func(ctx context.Context, _ graphql.CollectedField, msg *store.Message) ([]*store.ReactionCount, error) {
			if msg.Reactions == nil {
				return nil, errFallback
			}
			return m.ReactionCounts(ctx, msg)
		}),
		"ownReactions": listField("MessageReaction", func(ctx context.Context, _ graphql.CollectedField, msg *store.Message) ([]*store.MessageReaction, error) {
			if msg.Own == nil && (msg.Reactions == nil || len(msg.Reactions) != 0) {
				return nil, errFallback
			}
			return m.OwnReactions(ctx, msg)
		}),
	}
}

func pageInfoFields() map[string]field {
	return map[string]field{
		"hasNextPage":     scalar(func(p *model.PageInfo) graphql.Marshaler { return graphql.MarshalBoolean(p.HasNextPage) }),
		"endCursor":       scalar(func(p *model.PageInfo) graphql.Marshaler { return optString(p.EndCursor) }),
		"hasPreviousPage": scalar(func(p *model.PageInfo) graphql.Marshaler { return graphql.MarshalBoolean(p.HasPreviousPage) }),
		"startCursor":     scalar(func(p *model.PageInfo) graphql.Marshaler { return optString(p.StartCursor) }),
	}
}

func userFields() map[string]field {
	return map[string]field{
		"id":         scalar(func(u *store.User) graphql.Marshaler { return graphql.MarshalID(u.ID) }),
		"name":       scalar(func(u *store.User) graphql.Marshaler { return optString(u.Name) }),
		"image":      scalar(func(u *store.User) graphql.Marshaler { return optString(u.Image) }),
		"role":       scalar(func(u *store.User) graphql.Marshaler { return graphql.MarshalString(u.Role) }),
		"lastActive": optionalTime(func(u *store.User) *time.Time { return u.LastActive }),
		"createdAt":  requiredTime(func(u *store.User) time.Time { return u.CreatedAt }),
		"updatedAt":  requiredTime(func(u *store.User) time.Time { return u.UpdatedAt }),
	}
}

func reactionCountFields() map[string]field {
	return map[string]field{
		"kind":  scalar(func(r *store.ReactionCount) graphql.Marshaler { return graphql.MarshalString(r.Kind) }),
		"count": scalar(func(r *store.ReactionCount) graphql.Marshaler { return graphql.MarshalInt(r.Count) }),
	}
}
