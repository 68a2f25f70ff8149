package calls

import (
	"context"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/store"
)

// SendSignal relays a WebRTC signal from one of the caller's participants
// to another participant of the same session. It is the signaling hot
// path: it authorizes from the facts cache (no PostgreSQL once the
// participants are known) and publishes one bus event.
func (s *Service) SendSignal(ctx context.Context, participant, to string, kind SignalKind, payload string) (*Signal, error) {
	me, err := auth.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if len(payload) > MaxSignalPayload {
		return nil, store.Invalid("payload", "is %d bytes; the limit is %d (64 KB)", len(payload), MaxSignalPayload)
	}
	if payload == "" {
		return nil, store.Invalid("payload", "must not be empty")
	}
	fromID, err := store.ParseID("participant", participant)
	if err != nil {
		return nil, err
	}
	toID, err := store.ParseID("to", to)
	if err != nil {
		return nil, err
	}
	if fromID == toID {
		return nil, store.Invalid("to", "a participant cannot signal itself")
	}
	s.runtime()
	from, dest, err := s.participants(ctx, fromID, toID)
	if err != nil {
		return nil, err
	}
	if err := checkOwnParticipant(me, participant, from); err != nil {
		return nil, err
	}
	if dest == nil || dest.SessionID != from.SessionID {
		return nil, store.NotFound("participant in your call session", to)
	}
	if dest.LeftAt != nil {
		return nil, store.Conflict("participant %q has left the call", to)
	}
	sig := &Signal{ID: store.NewID(), From: from, To: toID, Kind: kind, Payload: payload, SentAt: time.Now().UTC()}
	if err := s.publishSignal(ctx, sig); err != nil {
		return nil, err
	}
	return sig, nil
}
