package resolvers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// userTopic is the bus topic of changes to one user.
func userTopic(id string) string { return "user:" + id }

// publishUser sends a user's current profile to userUpdated subscribers.
// The event carries the whole user, so delivering it costs no query.
func (r *Resolver) publishUser(ctx context.Context, u *store.User) {
	if err := r.Bus.Publish(ctx, userTopic(u.ID), u); err != nil {
		r.Log.Log(ctx, redisguard.LogLevel(err), "publish user update", "user", u.ID, "err", err)
	}
}

// AnnouncePresence tells userUpdated subscribers that a user came online or
// went offline (their online field resolves from Redis on delivery).
func (r *Resolver) AnnouncePresence(ctx context.Context, userID string) {
	u, err := r.Store.User(ctx, userID)
	if err != nil {
		r.Log.Log(ctx, redisguard.LogLevel(err), "announce presence", "user", userID, "err", err)
		return
	}
	r.publishUser(ctx, u)
}

// userChanges checks who may upsert whom and converts the input: an admin
// may upsert anyone, a user only itself.
func userChanges(id auth.Identity, in []*model.UserInput) ([]store.UserChange, error) {
	out := make([]store.UserChange, len(in))
	for i, u := range in {
		if u == nil {
			return nil, store.Invalid(fmt.Sprintf("users[%d]", i), "must not be null")
		}
		if !id.IsAdmin() && u.ID != id.UserID {
			return nil, auth.Forbidden("you may upsert only yourself (user %q); upserting %q needs an admin token", id.UserID, u.ID)
		}
		out[i] = store.UserChange{
			ID:    u.ID,
			Name:  store.Patch[string]{Set: u.Name.IsSet(), Value: u.Name.Value()},
			Image: store.Patch[string]{Set: u.Image.IsSet(), Value: u.Image.Value()},
		}
		if u.Data.IsSet() {
			data := u.Data.Value()
			out[i].Data = store.Patch[json.RawMessage]{Set: true}
			if data != nil {
				out[i].Data.Value = &data
			}
		}
	}
	return out, nil
}

// streamUser relays a user's updates from the bus until ctx ends. After a
// gap in the bus it re-reads the user, so a missed update is not lost.
func (r *Resolver) streamUser(ctx context.Context, id string, sub *bus.Subscription, out *stream.Out[store.User]) {
	defer out.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				stream.End(ctx, sub.Err())
				return
			}
			var u *store.User
			if ev.Gap {
				fresh, err := r.Store.User(ctx, id)
				if err != nil {
					continue
				}
				u = fresh
			} else {
				u = new(store.User)
				if err := json.Unmarshal(ev.Data, u); err != nil {
					r.Log.Warn("userUpdated: bad event", "err", err)
					continue
				}
			}
			if !out.Send(ctx, u) {
				return
			}
		}
	}
}

// user loads a user that must exist, such as an actor or an owner.
func (r *Resolver) user(ctx context.Context, id string) (*store.User, error) {
	u, err := r.loadersFor(ctx).Users.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, store.NotFound("user", id)
	}
	return u, nil
}
