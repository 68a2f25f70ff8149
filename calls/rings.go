package calls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/redisguard"
	"github.com/brookhq/brook/store"
	"github.com/brookhq/brook/workers"
)

// Ringing: a member rings other members of a call on every device of
// theirs. PostgreSQL holds each ring's state (store.CallRing), every
// decision is one transaction out of RINGING, and the events follow the
// commit on the users' own topics: one publish per user, which every
// device's myCallEvents stream of that user hears.

// Types of ring events (myCallEvents), as Stream Video names them.
const (
	EventRing          = "call.ring"
	EventAccepted      = "call.accepted"
	EventRejected      = "call.rejected"
	EventMissed        = "call.missed"
	EventRingCancelled = "call.ring_cancelled"
	EventCallEnded     = "call.ended"
)

// DefaultRingTimeout is how long a ring rings before it is missed
// (CALL_RING_TIMEOUT).
const DefaultRingTimeout = 30 * time.Second

// RingSettings say how a call rings: from its call type (ringTimeoutSeconds,
// rejectBusy), the Service's RingTimeout where the type sets none.
type RingSettings struct {
	// Timeout is how long a ring rings before it is missed.
	Timeout time.Duration
	// RejectBusy rejects at once, with reason BUSY, the ring of a user who
	// is in another live call.
	RejectBusy bool
}

// CallRingEvent is an event of myCallEvents. It carries the call and the
// ring, so delivering it reads nothing.
type CallRingEvent struct {
	Type      string          `json:"type"`
	Call      *store.Call     `json:"call"`
	Ring      *store.CallRing `json:"ring,omitempty"`
	CreatedAt time.Time       `json:"at"`
}

// UserTopic is the bus topic of a user's ring events.
func UserTopic(user string) string { return "call:u:" + user }

// ringSettings returns the ring settings of a call: its call type's
// (ringTimeoutSeconds, or CALL_RING_TIMEOUT when the type sets none; busy
// rejection), read in st, then adjusted by the RingPolicy hook if any.
func (s *Service) ringSettings(ctx context.Context, st *store.Store, call string) (RingSettings, error) {
	rs := RingSettings{Timeout: s.ringTimeout, RejectBusy: true}
	typ, _ := store.ParseCallID("id", call)
	t, err := st.CallTypeByName(ctx, typ)
	if err != nil {
		return rs, err
	}
	if t != nil {
		rs.RejectBusy = t.RejectBusy
		if t.RingTimeoutSeconds != nil {
			rs.Timeout = time.Duration(*t.RingTimeoutSeconds) * time.Second
		}
	}
	if s.ringPolicy != nil {
		rs = s.ringPolicy(typ, rs)
	}
	if rs.Timeout <= 0 {
		rs.Timeout = DefaultRingTimeout
	}
	return rs, nil
}

// RingCall rings members of a call who are not in it (members, admins).
func (s *Service) RingCall(ctx context.Context, id string, members []string) ([]*store.CallRing, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.ParseCallID("id", id); err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, store.Invalid("members", "give the members to ring")
	}
	if len(members) > store.MaxBatch {
		return nil, store.Invalid("members", "at most %d members per ring, got %d", store.MaxBatch, len(members))
	}
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		if seen[m] {
			return nil, store.Invalid(fmt.Sprintf("members[%d]", i), "user %q appears more than once", m)
		}
		seen[m] = true
	}
	out, err := s.writeRings(ctx, func(tx *store.Store) (*store.RingOutcome, error) {
		return s.startRings(ctx, tx, me, id, members)
	})
	if err != nil {
		return nil, err
	}
	s.announceRings(ctx, out)
	return out.Rings, nil
}

// startRings rings members in st (the store, or a transaction).
func (s *Service) startRings(ctx context.Context, st *store.Store, me auth.Identity, id string, members []string) (*store.RingOutcome, error) {
	rs, err := s.ringSettings(ctx, st, id)
	if err != nil {
		return nil, err
	}
	out, err := st.StartCallRings(ctx, store.RingParams{CallID: id, CallerID: me.UserID, Admin: me.IsAdmin(), Users: members,
		ExpiresAt: time.Now().Add(rs.Timeout), RejectBusy: rs.RejectBusy})
	if errors.Is(err, store.ErrNotCallMember) {
		return nil, auth.Forbidden("you are not a member of call %q; only its members may ring", id)
	}
	if errors.Is(err, store.ErrViewerRings) {
		return nil, auth.Forbidden("you are a viewer of call %q: viewers watch and ring nobody; a host can make you a member", id)
	}
	return out, err
}

// createAndRing creates a call (or gets it) and rings its other members,
// in one transaction.
func (s *Service) createAndRing(ctx context.Context, me auth.Identity, input store.CallInput) (*store.Call, *store.RingOutcome, error) {
	var call *store.Call
	var out *store.RingOutcome
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		var created bool
		if call, created, err = tx.CreateCall(ctx, me.UserID, input); err != nil {
			return err
		}
		if created {
			if err := s.hooks.Emit(ctx, tx, createdHook(call, me.UserID)); err != nil {
				return err
			}
		}
		if out, err = s.startRings(ctx, tx, me, call.ID, nil); err != nil {
			return err
		}
		if err := s.push.Rings(ctx, tx, out); err != nil {
			return err
		}
		return s.hooks.EmitAll(ctx, tx, ringHooks(out))
	})
	if err != nil {
		return nil, nil, err
	}
	return call, out, nil
}

// AcceptCall accepts the caller's ring of a call.
func (s *Service) AcceptCall(ctx context.Context, id string) (*store.CallRing, error) {
	return s.decide(ctx, id, store.RingAccepted, nil)
}

// RejectCall rejects the caller's ring of a call; a one-to-one call ends.
func (s *Service) RejectCall(ctx context.Context, id string, reason store.CallRejectReason) (*store.CallRing, error) {
	if reason == "" {
		reason = store.RejectDeclined
	}
	return s.decide(ctx, id, store.RingRejected, &reason)
}

func (s *Service) decide(ctx context.Context, id string, state store.CallRingState, reason *store.CallRejectReason) (*store.CallRing, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.ParseCallID("id", id); err != nil {
		return nil, err
	}
	out, err := s.writeRings(ctx, func(tx *store.Store) (*store.RingOutcome, error) {
		return tx.DecideCallRing(ctx, id, me.UserID, state, reason)
	})
	if errors.Is(err, store.ErrNotRinging) {
		role, merr := s.store.CallMembership(ctx, id, me.UserID)
		if merr != nil {
			return nil, merr
		}
		if role == "" && !me.IsAdmin() {
			return nil, auth.Forbidden("you are not a member of call %q", id)
		}
		return nil, store.Conflict("call %q is not ringing you: it was never rung for you, or was accepted, rejected, missed or cancelled", id)
	}
	if err != nil {
		return nil, err
	}
	s.announceRings(ctx, out)
	return out.Rings[0], nil
}

// CancelRing stops the rings the caller started in a call that still ring.
func (s *Service) CancelRing(ctx context.Context, id string) ([]*store.CallRing, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.ParseCallID("id", id); err != nil {
		return nil, err
	}
	role, err := s.store.CallMembership(ctx, id, me.UserID)
	if err != nil {
		return nil, err
	}
	if role == "" && !me.IsAdmin() {
		return nil, auth.Forbidden("you are not a member of call %q", id)
	}
	out, err := s.writeRings(ctx, func(tx *store.Store) (*store.RingOutcome, error) {
		return tx.CancelCallRings(ctx, id, me.UserID)
	})
	if err != nil {
		return nil, err
	}
	if len(out.Rings) == 0 {
		ringing, _, err := s.store.CallRingCount(ctx, id, me.UserID)
		if err != nil {
			return nil, err
		}
		if ringing > 0 {
			return nil, auth.Forbidden("the rings of call %q were started by someone else: only who rang may cancel a ring", id)
		}
		return nil, store.Conflict("nothing you started rings in call %q", id)
	}
	s.announceRings(ctx, out)
	return out.Rings, nil
}

// ringTimeoutJob marks the rings of a ring still ringing at their expiry
// MISSED, in the job's transaction: whichever node's worker claims the job
// (the node that rang may be gone), each ring is missed once, and an
// accept that committed first leaves nothing to miss.
func (s *Service) ringTimeoutJob(ctx context.Context, tx *store.Store, job store.Job) (func(context.Context), error) {
	var p store.CallRingTimeoutJob
	if err := job.Decode(&p); err != nil {
		return nil, err
	}
	out, err := tx.MissCallRings(ctx, p.Call, p.Rings)
	if err != nil || len(out.Rings) == 0 {
		return nil, err
	}
	if err := s.hooks.EmitAll(ctx, tx, ringHooks(out)); err != nil {
		return nil, err
	}
	if err := s.push.Rings(ctx, tx, out); err != nil {
		return nil, err
	}
	return func(ctx context.Context) { s.announceRings(ctx, out) }, nil
}

// registerRingJobs gives the workers the ring timeout job.
func (s *Service) registerRingJobs(r *workers.Runner) {
	r.Handle(store.CallRingTimeoutKind, s.ringTimeoutJob)
}

// announceRings follows a committed ring change: each ring's event to its
// user (every device) and to its caller, one publish per user; then, when
// a one-to-one call ended, its departures and call.ended to its members.
func (s *Service) announceRings(ctx context.Context, out *store.RingOutcome) {
	if out == nil || len(out.Rings) == 0 {
		return
	}
	// Committed: tell them even if the request ends now.
	ctx = redisguard.Background(context.WithoutCancel(ctx))
	for _, r := range out.Rings {
		ev := &CallRingEvent{Call: out.Call, Ring: r, CreatedAt: r.CreatedAt}
		if r.DecidedAt != nil {
			ev.CreatedAt = *r.DecidedAt
		}
		switch r.State {
		case store.RingRinging:
			ev.Type = EventRing
			s.publishRing(ctx, r.UserID, ev)
			continue
		case store.RingAccepted:
			ev.Type = EventAccepted
		case store.RingRejected:
			ev.Type = EventRejected
		case store.RingMissed:
			ev.Type = EventMissed
		case store.RingCancelled:
			ev.Type = EventRingCancelled
		}
		s.publishRing(ctx, r.UserID, ev)
		s.publishRing(ctx, r.CallerID, ev)
	}
	if !out.Ended {
		return
	}
	s.finishDepartures(ctx, out.Departures)
	ended := &CallRingEvent{Type: EventCallEnded, Call: out.Call, Ring: out.Rings[0], CreatedAt: time.Now().UTC()}
	for _, u := range out.Members {
		s.publishRing(ctx, u, ended)
	}
}

// publishRing publishes a ring event on a user's topic.
func (s *Service) publishRing(ctx context.Context, user string, ev *CallRingEvent) {
	data, err := json.Marshal(ev)
	if err == nil {
		err = s.bus.PublishRaw(ctx, UserTopic(user), data)
	}
	if err != nil {
		s.log.Log(ctx, redisguard.LogLevel(err), "calls: publish ring event", "type", ev.Type, "user", user, "err", err)
	}
}

// RingsByCall reads calls' newest rings (at most first each), newest first.
func (s *Service) RingsByCall(ctx context.Context, callIDs []string, first int) ([][]*store.CallRing, error) {
	return s.store.CallRingsByCall(ctx, callIDs, first)
}
