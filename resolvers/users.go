package resolvers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/brookhq/brook/graph/model"
	"github.com/brookhq/brook/store"
)

// userChanges converts upsertUsers' input.
func userChanges(in []*model.UserInput) ([]store.UserChange, error) {
	out := make([]store.UserChange, len(in))
	for i, u := range in {
		if u == nil {
			return nil, store.Invalid(fmt.Sprintf("users[%d]", i), "must not be null")
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
