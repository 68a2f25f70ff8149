// Package users is what every product shares about the people using an
// app built on Brook: their profiles, who may change them, and presence
// (a user is online while it holds a WebSocket connection to any node).
package users

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/product"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/internal/stream"
	"github.com/brookhq/brook/store"
)

// Service is the users part of Brook.
type Service struct {
	store *store.Store
	state *ephemeral.State
	bus   *bus.Bus
	log   *slog.Logger
}

// New returns the users Service.
func New(p product.Parts) *Service {
	return &Service{store: p.Store, state: p.State, bus: p.Bus, log: p.Log()}
}

// topic is the bus topic of changes to one user.
func topic(id string) string { return "user:" + id }

// Upsert creates or updates users: an admin may upsert anyone, a user
// only itself. userUpdated subscribers get each new profile.
func (s *Service) Upsert(ctx context.Context, changes []store.UserChange) ([]*store.User, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range changes {
		if !me.IsAdmin() && u.ID != me.UserID {
			return nil, auth.Forbidden("you may upsert only yourself (user %q); upserting %q needs an admin token", me.UserID, u.ID)
		}
	}
	out, err := s.store.UpsertUsers(ctx, changes)
	if err != nil {
		return nil, err
	}
	for _, u := range out {
		s.publish(ctx, u)
	}
	return out, nil
}

// publish sends a user's current profile to userUpdated subscribers. The
// event carries the whole user, so delivering it costs no query.
func (s *Service) publish(ctx context.Context, u *store.User) {
	if err := s.bus.Publish(ctx, topic(u.ID), u); err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "publish user update", "user", u.ID, "err", err)
	}
}

// AnnouncePresence tells userUpdated subscribers that a user came online
// or went offline (their online field is read on delivery).
func (s *Service) AnnouncePresence(ctx context.Context, userID string) {
	u, err := s.store.User(ctx, userID)
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "announce presence", "user", userID, "err", err)
		return
	}
	s.publish(ctx, u)
}

// Touch records that a signed-in user is active, creating it on first use
// with the role its token gives.
func (s *Service) Touch(ctx context.Context, id auth.Identity) error {
	role := store.RoleUser
	if id.IsAdmin() {
		role = store.RoleAdmin
	}
	return s.store.TouchUser(ctx, id.UserID, role)
}

// AddIfMissing creates the users that do not exist yet, with the names
// given (id: name), and leaves existing ones as they are.
func (s *Service) AddIfMissing(ctx context.Context, names map[string]string) error {
	return s.store.AddUsersIfMissing(ctx, names)
}

// Me returns the signed-in user.
func (s *Service) Me(ctx context.Context) (*store.User, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.User(ctx, me.UserID)
}

// Search lists users whose name (or id, when they have none) starts with
// query, case-insensitive: any signed-in user may, for a member picker.
func (s *Service) Search(ctx context.Context, query string, first *int, after *string) (store.Page[*store.User], error) {
	if _, err := auth.Caller(ctx); err != nil {
		return store.Page[*store.User]{}, err
	}
	n, pos, err := store.PageArgs(first, after, 20)
	if err != nil {
		return store.Page[*store.User]{}, err
	}
	return s.store.SearchUsers(ctx, query, n, pos)
}

// CheckIDs checks user ids asked for by id (at most store.MaxBatch).
func (s *Service) CheckIDs(ids []string) error {
	if len(ids) > store.MaxBatch {
		return store.Invalid("ids", "at most %d ids per call, got %d", store.MaxBatch, len(ids))
	}
	for i, id := range ids {
		if err := store.CheckUserID("ids", id); err != nil {
			return store.Invalid("ids", "ids[%d]: %v", i, err)
		}
	}
	return nil
}

// ByID reads users by id, in the order asked, nil where there is none.
func (s *Service) ByID(ctx context.Context, ids []string) ([]*store.User, error) {
	return s.store.UsersByID(ctx, ids)
}

// Online reports for each user whether it has an open connection. Presence
// lives only in Redis: while Redis does not answer, everyone reads as
// offline rather than the query failing.
func (s *Service) Online(ctx context.Context, ids []string) ([]bool, error) {
	online, err := s.state.Online(ctx, ids)
	if err != nil {
		return make([]bool, len(ids)), nil
	}
	return online, nil
}

// Updated streams a user's profile after each change, and when it comes
// online or goes offline. After a gap in the bus it re-reads the user, so
// a missed update is not lost.
func (s *Service) Updated(ctx context.Context, id string) (<-chan *store.User, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckUserID("id", id); err != nil {
		return nil, err
	}
	ctx = stream.Context(ctx) // kept by the stream for its life
	sub, err := s.bus.Subscribe(ctx, topic(id))
	if err != nil {
		return nil, err
	}
	out := stream.New[store.User](ctx)
	go s.relay(ctx, id, sub, out)
	return out.C, nil
}

func (s *Service) relay(ctx context.Context, id string, sub *bus.Subscription, out *stream.Out[store.User]) {
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
				fresh, err := s.store.User(ctx, id)
				if err != nil {
					continue
				}
				u = fresh
			} else {
				u = new(store.User)
				if err := json.Unmarshal(ev.Data, u); err != nil {
					s.log.Warn("userUpdated: bad event", "err", err)
					continue
				}
			}
			if !out.Send(ctx, u) {
				return
			}
		}
	}
}
