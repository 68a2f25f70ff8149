package calls

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// Batch reads for a request's dataloaders: each reads many at once, in the
// order asked, with nil (or empty) for what does not exist. The objects
// they load hang off a call the request already read under the caller's
// access.

// CallsByID reads calls.
func (s *Service) CallsByID(ctx context.Context, ids []string) ([]*store.Call, error) {
	return s.store.CallsByID(ctx, ids)
}

// Members reads calls' members, hosts first.
func (s *Service) Members(ctx context.Context, callIDs []string) ([][]*store.CallMember, error) {
	return s.store.CallMembersByCall(ctx, callIDs)
}

// LiveSessions reads calls' live sessions.
func (s *Service) LiveSessions(ctx context.Context, callIDs []string) ([]*store.CallSession, error) {
	return s.store.LiveCallSessions(ctx, callIDs)
}

// Sessions reads calls' newest sessions (at most first each), newest
// first.
func (s *Service) Sessions(ctx context.Context, callIDs []string, first int) ([][]*store.CallSession, error) {
	return s.store.CallSessionsByCall(ctx, callIDs, first)
}

// Participants reads sessions' participants in join order.
func (s *Service) Participants(ctx context.Context, sessionIDs []uuid.UUID) ([][]*store.CallParticipant, error) {
	return s.store.CallParticipantsBySession(ctx, sessionIDs)
}

// SFUsDrained reads whether SFU nodes are drained, in one statement for
// all of them.
func (s *Service) SFUsDrained(ctx context.Context, ids []string) ([]bool, error) {
	drained, err := s.store.DrainedSFUs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(ids))
	for i, id := range ids {
		out[i] = drained[id]
	}
	return out, nil
}
