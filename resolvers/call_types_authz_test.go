package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for call types and call lists
// (issue 20). goLive and stopLive run on the owner's call of the ringing
// rows (f.ringCall): the owner and the second host are its hosts, the
// callee and the member plain members, the viewer a viewer. Call types
// are read by everyone and defined by admins, whatever their role in a
// call (the rows put them in one).

func init() {
	matrix = append(matrix,
		// Call types are read by every signed-in user, defined by admins.
		policy{op: "query.callTypes", want: everyone, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, false)
			return `{ callTypes { name maxParticipants permissions { host } } }`, nil
		}},
		policy{op: "mutation.upsertCallType", want: adminOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, false)
			return `mutation($n: String!) { upsertCallType(name: $n, settings: {maxParticipants: 10}) { name } }`,
				brooktest.Vars{"n": "authz-" + brooktest.Tag()}
		}},
		// Everyone lists their own calls (an admin: all).
		policy{op: "query.calls", want: everyone, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, false)
			return `{ calls(first: 5) { edges { node { id } } } }`, nil
		}},
		policy{op: "mutation.goLive", want: ownerOnly, also: callHostsOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { goLive(id: $id) { backstage } }`, brooktest.Vars{"id": f.ringCall(t, false)}
		}},
		policy{op: "mutation.stopLive", want: ownerOnly, also: callHostsOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { stopLive(id: $id) { backstage } }`, brooktest.Vars{"id": f.ringCall(t, false)}
		}},
	)
}
