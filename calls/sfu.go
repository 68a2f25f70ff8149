package calls

import (
	"context"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// SFUNodes lists the configured SFU nodes (admins).
func (s *Service) SFUNodes(ctx context.Context) ([]*store.SFUNode, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if !me.IsAdmin() {
		return nil, auth.Forbidden("listing SFU nodes needs an admin token")
	}
	return store.SFUNodes(s.nodes), nil
}

// DrainSFUNode drains a configured SFU node, so no new session is assigned
// to it, or puts it back in service (drained false); admins only. Every
// Brook node shares the state.
func (s *Service) DrainSFUNode(ctx context.Context, id string, drained *bool) (*store.SFUNode, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if !me.IsAdmin() {
		return nil, auth.Forbidden("draining an SFU node needs an admin token")
	}
	node, ok := s.sfuNode(id)
	if !ok {
		return nil, store.NotFound("SFU node", id)
	}
	want := drained == nil || *drained
	if _, err := s.store.SetSFUDrained(ctx, id, want, me.UserID); err != nil {
		return nil, err
	}
	return node, nil
}

// sfuNode returns a configured SFU node by id.
func (s *Service) sfuNode(id string) (*store.SFUNode, bool) {
	for _, n := range store.SFUNodes(s.nodes) {
		if n.ID == id {
			return n, true
		}
	}
	return nil, false
}
