package calls

import (
	"context"
	"errors"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/webhooks"
)

// Who may do what with a call: its members (hosts, members and viewers)
// and admins read it and join it; hosts and admins manage its members and
// end it; a participant id serves only the user it belongs to.

// Lookup reads calls by id (nil where none exists), through a request's
// loaders so that what it reads is there for the response.
type Lookup interface {
	Calls(ctx context.Context, ids []string) ([]*store.Call, error)
}

// readCall reads one call through lookup, or the store when lookup is nil.
func (s *Service) readCall(ctx context.Context, lookup Lookup, id string) (*store.Call, error) {
	read := s.store.CallsByID
	if lookup != nil {
		read = lookup.Calls
	}
	calls, err := read(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return calls[0], nil
}

// CreateCall creates a call with the caller as its host. With an id that
// exists it returns the call unchanged (get-or-create), when the caller is
// a member or an admin. With input.Ring it rings the other members who
// are not in the call, in the same transaction.
func (s *Service) CreateCall(ctx context.Context, input store.CallInput) (*store.Call, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if input.Ring {
		call, out, err := s.createAndRing(ctx, me, input)
		if err != nil {
			return nil, err
		}
		s.announceRings(ctx, out)
		return call, nil
	}
	var call *store.Call
	var created bool
	err = s.hooks.Write(ctx, s.store, EventCallCreated, func(tx *store.Store) (*webhooks.Event, error) {
		var err error
		if call, created, err = tx.CreateCall(ctx, me.UserID, input); err != nil || !created {
			return nil, err
		}
		ev := createdHook(call, me.UserID)
		return &ev, nil
	})
	if err != nil {
		return nil, err
	}
	if !created && !me.IsAdmin() {
		role, err := s.store.CallMembership(ctx, call.ID, me.UserID)
		if err != nil {
			return nil, err
		}
		if role == "" {
			return nil, auth.Forbidden("call %q already exists and you are not a member of it", call.ID)
		}
	}
	return call, nil
}

// Call reads a call, through lookup (nil: the store), for its members and
// admins; nil when there is none.
func (s *Service) Call(ctx context.Context, id string, lookup Lookup) (*store.Call, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.ParseCallID("id", id); err != nil {
		return nil, err
	}
	role, err := s.store.CallMembership(ctx, id, me.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if role == "" && !me.IsAdmin() {
		return nil, auth.Forbidden("you are not a member of call %q", id)
	}
	return s.readCall(ctx, lookup, id)
}

// requireHost checks that the caller is a host of the call or an admin.
func (s *Service) requireHost(ctx context.Context, cid string) error {
	me, err := auth.Caller(ctx)
	if err != nil {
		return err
	}
	if _, err := store.ParseCallID("id", cid); err != nil {
		return err
	}
	role, err := s.store.CallMembership(ctx, cid, me.UserID)
	if err != nil {
		return err
	}
	if role != store.CallRoleHost && !me.IsAdmin() {
		return auth.Forbidden("only the hosts of call %q and admins may do this", cid)
	}
	return nil
}

// UpdateMembers adds members or changes their roles (set) and removes
// members (remove), whose participants leave the live session (hosts,
// admins). It returns the call, read through lookup (nil: the store).
func (s *Service) UpdateMembers(ctx context.Context, id string, set []store.CallMemberChange, remove []string, lookup Lookup) (*store.Call, error) {
	if err := s.requireHost(ctx, id); err != nil {
		return nil, err
	}
	d, err := s.writeDepartures(ctx, false, "", func(tx *store.Store) (*store.CallDepartures, error) {
		return tx.UpdateCallMembers(ctx, id, set, remove)
	})
	if err != nil {
		return nil, err
	}
	s.finishDepartures(ctx, d)
	return s.readCall(ctx, lookup, id)
}

// EndCall ends the call's live session for everyone (hosts, admins), and
// cancels the call's rings still ringing (ringends.go). It reports false
// when no session was live.
func (s *Service) EndCall(ctx context.Context, id string) (bool, error) {
	if err := s.requireHost(ctx, id); err != nil {
		return false, err
	}
	me, _ := auth.Caller(ctx) // requireHost read it
	var rings *store.RingOutcome
	d, err := s.writeDepartures(ctx, true, me.UserID, func(st *store.Store) (d *store.CallDepartures, err error) {
		// The rings stop with the call, in its transaction (st is one
		// only when a webhook wants the departures); their webhook events
		// follow the session's (ringends.go).
		err = st.InTx(ctx, func(tx *store.Store) error {
			var err error
			if d, err = tx.EndCall(ctx, id); err != nil {
				return err
			}
			if rings, err = tx.CancelRingsOfEndedCall(ctx, id); err != nil {
				return err
			}
			if err := s.push.Rings(ctx, tx, rings); err != nil {
				return err
			}
			return s.hooks.EmitAll(ctx, tx, ringHooks(rings))
		})
		return d, err
	})
	if err != nil {
		return false, err
	}
	s.finishDepartures(ctx, d)
	s.announceEndedRings(ctx, rings)
	return d != nil && len(d.Ended) > 0, nil
}
