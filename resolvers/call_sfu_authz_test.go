package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for SFU tokens (issue 20). The
// token comes with joinCall (members and admins) and is refreshed only by
// the participant's own user: the call's callee, member, second host and
// viewer may not refresh the owner's participant, nor may an admin.
func init() {
	notOthersParticipant := noCallRole
	matrix = append(matrix,
		policy{op: "mutation.joinCall", variant: "sfuToken", want: ownerOnly, also: ringMembers,
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($id: ID!) { joinCall(id: $id) { participant { id } sfuToken { token expiresAt } } }`,
					brooktest.Vars{"id": f.ringCall(t, false)}
			}},
		policy{op: "mutation.refreshSFUToken", want: participantOnly, also: notOthersParticipant,
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($p: ID!) { refreshSFUToken(participant: $p) { token expiresAt } }`,
					brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
			}},
	)
}
