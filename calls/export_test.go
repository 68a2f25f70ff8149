package calls

import (
	"context"

	"github.com/google/uuid"

	"github.com/brookhq/brook/store"
)

// OnDeparturesCommitted sets the function that runs with the request's
// context after a removal of call participants commits, and returns a
// function that removes it.
func OnDeparturesCommitted(f func(ctx context.Context)) (reset func()) {
	departuresCommitted = f
	return func() { departuresCommitted = nil }
}

// OnFactsRead sets the function that runs inside ParticipantFacts between
// its PostgreSQL read and its Redis write, and returns a function that
// removes it.
func OnFactsRead(f func()) (reset func()) {
	factsRead = f
	return func() { factsRead = nil }
}

// ParticipantFacts reads participants' facts as the signaling path does
// past this node's cache: from Redis, else from PostgreSQL.
func (s *Service) ParticipantFacts(ctx context.Context, ids []uuid.UUID) ([]*store.CallParticipant, error) {
	return s.participantFacts(ctx, ids)
}

// ParticipantGrants is the grants of a role with its built-in permissions
// (admin: the caller is an admin).
func ParticipantGrants(role string, admin bool) SFUGrants {
	member := role == store.CallRoleHost || role == store.CallRoleMember || (role == "" && admin)
	if !member {
		return grantsFor(nil, false)
	}
	return grantsFor(builtinPermissions(role), true)
}

// SignSFUToken is signSFUToken.
var SignSFUToken = signSFUToken
