package resolvers_test

import (
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for ringing (issue 20). Each runs
// on a call of the fixture's owner (f.ringCall): the caller is the owner,
// who created the call and rings; its callee is a member the owner rings;
// its member a member nobody rings; its host a second host. The stranger,
// the non-member and the admin are no members. The outcomes are the table
// "Who may do what" in docs/calls.md. (A viewer role comes with call types
// and their permissions; calls have hosts and members only so far.)

// More kinds of caller, for the rows on a rung call.
const (
	callee   role = "callee"   // a member the owner rings
	callHost role = "callhost" // a second host of the owner's call
)

// Outcomes of the call's callee, plain member and second host.
var (
	// ringMembers: anything a member of the call may do.
	ringMembers = map[role]outcome{callee: allowed, member: allowed, callHost: allowed}
	// ringCallee: deciding the ring, the callee's alone.
	ringCallee = map[role]outcome{callee: allowed, member: "CONFLICT", callHost: "CONFLICT"}
	// ringCallerOnly: cancelling the ring, its caller's alone.
	ringCallerOnly = map[role]outcome{callee: "FORBIDDEN", member: "FORBIDDEN", callHost: "FORBIDDEN"}
)

// ringDecision is acceptCall's and rejectCall's: the callee decides;
// other members, and admins, are not rung (CONFLICT), non-members may not.
var ringDecision = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: "CONFLICT", nonMember: "FORBIDDEN", admin: "CONFLICT"}

// ringCancel is cancelRing's: only who rang, admins included.
var ringCancel = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: "FORBIDDEN"}

func init() {
	extraRoles = append(extraRoles, callee, callHost)
	matrix = append(matrix,
		// Members and admins ring; the callee cannot ring itself.
		policy{op: "mutation.ringCall", want: ownerOnly, also: map[role]outcome{callee: "BAD_USER_INPUT", member: allowed, callHost: allowed},
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($id: ID!, $u: ID!) { ringCall(id: $id, members: [$u]) { id } }`,
					brooktest.Vars{"id": f.ringCall(t, false), "u": f.users[callee]}
			}},
		policy{op: "mutation.createCall", variant: "ring", want: ownerOnly, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			id := f.ringCall(t, false) // get-or-create with ring: members and admins
			return `mutation($id: ID!) { createCall(input: {type: "default", id: $id, ring: true}) { id } }`,
				brooktest.Vars{"id": strings.TrimPrefix(id, "default:")}
		}},
		policy{op: "mutation.acceptCall", want: ringDecision, also: ringCallee, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { acceptCall(id: $id) { state } }`, brooktest.Vars{"id": f.ringCall(t, true)}
		}},
		policy{op: "mutation.rejectCall", want: ringDecision, also: ringCallee, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { rejectCall(id: $id, reason: DECLINED) { state } }`, brooktest.Vars{"id": f.ringCall(t, true)}
		}},
		policy{op: "mutation.cancelRing", want: ringCancel, also: ringCallerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { cancelRing(id: $id) { state } }`, brooktest.Vars{"id": f.ringCall(t, true)}
		}},
		// Everyone's own ring events.
		policy{op: "subscription.myCallEvents", want: everyone, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, true)
			return `subscription { myCallEvents { type } }`, nil
		}},
	)
}

// ringCall creates a call of the owner with the callee, the member and a
// second host, and, when ring is set, rings the callee from the owner.
func (f *fixture) ringCall(t *testing.T, ring bool) string {
	t.Helper()
	var got struct{ CreateCall struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($m: [ID!]) { createCall(input: {type: "default", members: $m}) { id } }`,
		brooktest.Vars{"m": []string{f.users[callee], f.users[member]}}, &got)
	id := got.CreateCall.ID
	f.node.Must(t, f.token(t, owner), `mutation($id: ID!, $u: ID!) { updateCallMembers(id: $id, set: [{user: $u, role: "host"}]) { id } }`,
		brooktest.Vars{"id": id, "u": f.users[callHost]}, nil)
	if ring {
		f.node.Must(t, f.token(t, owner), `mutation($id: ID!, $u: ID!) { ringCall(id: $id, members: [$u]) { id } }`,
			brooktest.Vars{"id": id, "u": f.users[callee]}, nil)
	}
	return id
}
