package calls

import (
	"context"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Call types: the settings a call gets from the type in its "type:id"
// (store.CallType). Admins define them; every signed-in user may read
// them, as clients show their limits. Their rules apply where a call is
// created (the type must exist; backstage is copied to the call), joined
// (backstage, maxParticipants: store.JoinCall), rung (ringSettings) and
// where a session starts (the max-duration job).

// UpsertCallType creates a call type or changes the given settings of one
// (admins only).
func (s *Service) UpsertCallType(ctx context.Context, name string, settings store.CallTypeSettings) (*store.CallType, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if !me.IsAdmin() {
		return nil, auth.Forbidden("only admins may define call types")
	}
	return s.store.UpsertCallType(ctx, name, settings)
}

// CallTypes returns every call type, by name (anyone signed in).
func (s *Service) CallTypes(ctx context.Context) ([]*store.CallType, error) {
	if _, err := auth.Caller(ctx); err != nil {
		return nil, err
	}
	return s.store.CallTypes(ctx)
}

// GoLive takes a call out of backstage, so its members may join (hosts,
// admins). It reports the call; a call that was live stays so.
func (s *Service) GoLive(ctx context.Context, id string) (*store.Call, error) {
	return s.setBackstage(ctx, id, false)
}

// StopLive puts a call back backstage: members already in it stay, new
// joins are hosts' only (hosts, admins).
func (s *Service) StopLive(ctx context.Context, id string) (*store.Call, error) {
	return s.setBackstage(ctx, id, true)
}

func (s *Service) setBackstage(ctx context.Context, id string, backstage bool) (*store.Call, error) {
	if err := s.requireHost(ctx, id); err != nil {
		return nil, err
	}
	call, _, err := s.store.SetCallBackstage(ctx, id, backstage)
	return call, err
}

// registerTypeJobs gives the workers the max-duration job.
func (s *Service) registerTypeJobs(r *workers.Runner) {
	r.Handle(store.CallMaxDurationKind, s.maxDurationJob)
}

// maxDurationJob ends a session that reached its call type's
// maxDurationSeconds, in the job's transaction: whichever node's worker
// claims it (the node that started the session may be gone). A session
// that ended before is left alone, so it ends once.
func (s *Service) maxDurationJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.CallMaxDurationJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	d, err := tx.EndCallSession(ctx, p.Session, store.CallLeftMaxDuration)
	if err != nil || d == nil {
		return nil, err
	}
	if err := s.hooks.EmitAll(ctx, tx, sessionHooks(d, false, "")); err != nil {
		return nil, err
	}
	rings, err := tx.CancelRingsOfEndedCall(ctx, p.Call)
	if err != nil {
		return nil, err
	}
	if err := s.hooks.EmitAll(ctx, tx, ringHooks(rings)); err != nil {
		return nil, err
	}
	if err := s.push.Rings(ctx, tx, rings); err != nil {
		return nil, err
	}
	s.log.Info("calls: session reached its max duration", "call", p.Call, "session", p.Session, "left", len(d.Left))
	return func(ctx context.Context) {
		s.finishDepartures(ctx, d)
		s.announceEndedRings(ctx, rings)
	}, nil
}

// CallListArgs are the arguments of a call list.
type CallListArgs struct {
	Filter store.CallFilter
	Sort   *store.CallSort
	First  *int
	After  *string
}

// ListCalls lists the calls the caller is a member of (every call, for
// an admin), filtered, sorted (newest first by default), paged.
func (s *Service) ListCalls(ctx context.Context, a CallListArgs) (store.Page[*store.ListedCall], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.ListedCall]{}, err
	}
	return s.listCalls(ctx, store.CallListParams{UserID: me.UserID, All: me.IsAdmin(), Filter: a.Filter}, a)
}

// UserCalls lists the calls of a user: the caller's own (on me), or any
// user's for an admin.
func (s *Service) UserCalls(ctx context.Context, user string, a CallListArgs) (store.Page[*store.ListedCall], error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return store.Page[*store.ListedCall]{}, err
	}
	if me.UserID != user && !me.IsAdmin() {
		return store.Page[*store.ListedCall]{}, auth.Forbidden("a user's calls are theirs: read your own on me")
	}
	return s.listCalls(ctx, store.CallListParams{UserID: user, Filter: a.Filter}, a)
}

func (s *Service) listCalls(ctx context.Context, p store.CallListParams, a CallListArgs) (store.Page[*store.ListedCall], error) {
	p.First = 20
	if a.First != nil {
		n, err := store.PageSize("first", *a.First)
		if err != nil {
			return store.Page[*store.ListedCall]{}, err
		}
		p.First = n
	}
	if a.After != nil && *a.After != "" {
		pos, err := store.DecodeCursor("after", *a.After)
		if err != nil {
			return store.Page[*store.ListedCall]{}, err
		}
		p.After = pos
	}
	if a.Sort != nil {
		p.Sort = *a.Sort
	}
	return s.store.ListCalls(ctx, p)
}
