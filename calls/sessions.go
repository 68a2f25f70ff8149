package calls

import (
	"context"
	"errors"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// JoinCall adds a participant of the caller (members, and admins) to the
// call's live session, starting one on an SFU node if none is live, and
// tells the session's subscribers. A ring of the caller's for the call
// that still rings is accepted with the join. The participant times out unless a
// callEvents stream keeps it alive.
func (s *Service) JoinCall(ctx context.Context, id string) (*store.CallJoin, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := store.ParseCallID("id", id); err != nil {
		return nil, err
	}
	s.runtime()
	gen := s.generation.Load()
	params := store.JoinCallParams{CallID: id, UserID: me.UserID, Admin: me.IsAdmin(), Nodes: s.nodes, ParticipantID: store.NewID()}
	liveUntil := time.Now().Add(s.timeout)
	var j *store.CallJoin
	var accepted *store.RingOutcome
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if j, err = tx.JoinCall(ctx, params); err != nil {
			return err
		}
		if j.Started {
			if err := s.hooks.Emit(ctx, tx, callEvent(EventSessionStarted, id, j.Session.StartedAt, callHook{User: me.UserID,
				Session: &sessionHook{ID: j.Session.ID, StartedAt: j.Session.StartedAt}})); err != nil {
				return err
			}
		}
		// A rung user who joins has answered (ringends.go).
		if accepted, err = tx.AcceptRingOnJoin(ctx, id, me.UserID); err != nil {
			return err
		}
		if err := s.hooks.EmitAll(ctx, tx, ringHooks(accepted)); err != nil {
			return err
		}
		// Liveness and the signaling path's facts go to Redis before the
		// commit, so no committed participant lacks them (a rolled-back one
		// leaves entries nobody can name; the sweep clears them).
		s.rememberParticipant(ctx, j.Participant, liveUntil)
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotCallMember):
		return nil, auth.Forbidden("you are not a member of call %q; its host can add you", id)
	case errors.Is(err, store.ErrBackstage):
		return nil, auth.Forbidden("call %q is backstage: only its hosts may join until a host calls goLive", id)
	case errors.Is(err, store.ErrNoSFU):
		return nil, store.Conflict("no SFU node can take a new session: all %d configured nodes are drained", len(s.nodes))
	case err != nil:
		return nil, err
	}
	s.remember(j.Participant, gen)
	if j.Started {
		s.publishEvent(ctx, &CallEvent{Type: EventSessionStarted, Call: id, Session: j.Session.ID, CreatedAt: j.Session.StartedAt})
	}
	s.publishEvent(ctx, &CallEvent{Type: EventJoined, Call: id, Session: j.Session.ID,
		Participant: j.Participant, CreatedAt: j.Participant.JoinedAt})
	s.announceRings(ctx, accepted)
	return j, nil
}

// LeaveCall takes one of the caller's participants out of its session,
// which ends if nobody is left. It reports false when the participant had
// left already.
func (s *Service) LeaveCall(ctx context.Context, participant string) (bool, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return false, err
	}
	pid, err := store.ParseID("participant", participant)
	if err != nil {
		return false, err
	}
	s.runtime()
	p, err := s.participant(ctx, pid)
	if err != nil {
		return false, err
	}
	if p == nil {
		return false, store.NotFound("participant", participant)
	}
	if p.UserID != me.UserID {
		return false, auth.Forbidden("participant %q belongs to another user; use the participant id joinCall returned to you", participant)
	}
	if p.LeftAt != nil {
		return false, nil
	}
	d, err := s.writeDepartures(ctx, false, "", func(tx *store.Store) (*store.CallDepartures, error) {
		return tx.LeaveCall(ctx, pid, store.CallLeftByRequest)
	})
	if err != nil {
		return false, err
	}
	s.finishDepartures(ctx, d)
	return len(d.Left) > 0, nil
}
