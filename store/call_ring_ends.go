package store

import (
	"context"
	"fmt"
)

// How rings end with the call around them: a call that ends (endCall, or
// its session reaching the type's max duration) cancels the rings still
// ringing, and a rung user who joins the call accepts their ring. Each is
// the same conditional UPDATE out of RINGING as every other decision, so
// it decides a ring at most once against a racing accept, reject, cancel
// or timeout, on whichever node each runs.

// CancelRingsOfEndedCall cancels every ring of a call that still rings,
// whoever started it, and returns them with the call (no Rings: none rang).
// Run it in the transaction that ends the call.
func (s *Store) CancelRingsOfEndedCall(ctx context.Context, callID string) (*RingOutcome, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE call_rings SET state = 'CANCELLED', decided_at = now()
		WHERE call_id = $1 AND state = 'RINGING'
		RETURNING `+ringColumns, callID)
	rings, err := collectRings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: cancel rings of an ended call: %w", err)
	}
	out, err := s.ringOutcome(ctx, callID, rings)
	if err != nil {
		return nil, fmt.Errorf("store: cancel rings of an ended call: %w", err)
	}
	return out, nil
}

// AcceptRingOnJoin accepts the user's ring of a call if it still rings
// (no Rings: nothing rang). Run it in the join's transaction, so the
// accept commits with the participant.
func (s *Store) AcceptRingOnJoin(ctx context.Context, callID, userID string) (*RingOutcome, error) {
	rows, err := s.db.Query(ctx, `
		UPDATE call_rings SET state = 'ACCEPTED', decided_at = now()
		WHERE call_id = $1 AND user_id = $2 AND state = 'RINGING'
		RETURNING `+ringColumns, callID, userID)
	rings, err := collectRings(rows, err)
	if err != nil {
		return nil, fmt.Errorf("store: accept ring on join: %w", err)
	}
	out, err := s.ringOutcome(ctx, callID, rings)
	if err != nil {
		return nil, fmt.Errorf("store: accept ring on join: %w", err)
	}
	return out, nil
}
