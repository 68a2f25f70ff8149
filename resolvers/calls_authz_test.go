package resolvers_test

import (
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for ringing (issue 20). Each runs
// on a call of the fixture's owner (f.ringCall): the caller is the owner,
// who created the call and rings; its callee is a member the owner rings;
// its member a member nobody rings; its host a second host; its viewer a
// viewer (who watches, and neither rings nor is rung). The stranger, the
// non-member and the admin are no members. The outcomes are the table
// "Who may do what" in docs/calls.md. Every calls operation declares all
// four of these roles: f.ringCall needs their users.

// More kinds of caller, for the rows on a rung call.
const (
	callee     role = "callee"   // a member the owner rings
	callHost   role = "callhost" // a second host of the owner's call
	callViewer role = "viewer"   // a viewer of the owner's call
)

// Outcomes of the call's callee, plain member, second host and viewer.
var (
	// ringMembers: anything any member of the call may do, viewers too.
	ringMembers = map[role]outcome{callee: allowed, member: allowed, callHost: allowed, callViewer: allowed}
	// ringers: ringing, which members and hosts do, viewers not.
	ringers = map[role]outcome{callee: allowed, member: allowed, callHost: allowed, callViewer: "FORBIDDEN"}
	// ringCallee: deciding the ring, the callee's alone.
	ringCallee = map[role]outcome{callee: allowed, member: "CONFLICT", callHost: "CONFLICT", callViewer: "CONFLICT"}
	// ringCallerOnly: cancelling the ring, its caller's alone.
	ringCallerOnly = map[role]outcome{callee: "FORBIDDEN", member: "FORBIDDEN", callHost: "FORBIDDEN", callViewer: "FORBIDDEN"}
	// noCallRole: what no role in a call gives (admins' operations, and
	// the owner's own participant).
	noCallRole = map[role]outcome{callee: "FORBIDDEN", member: "FORBIDDEN", callHost: "FORBIDDEN", callViewer: "FORBIDDEN"}
	// callHostsOnly: hosts' operations on a call, for its other members.
	callHostsOnly = map[role]outcome{callee: "FORBIDDEN", member: "FORBIDDEN", callHost: allowed, callViewer: "FORBIDDEN"}
)

// ringDecision is acceptCall's and rejectCall's: the callee decides;
// other members, and admins, are not rung (CONFLICT), non-members may not.
var ringDecision = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: "CONFLICT", nonMember: "FORBIDDEN", admin: "CONFLICT"}

// ringCancel is cancelRing's: only who rang, admins included.
var ringCancel = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: "FORBIDDEN"}

func init() {
	extraRoles = append(extraRoles, callee, callHost, callViewer)
	matrix = append(matrix,
		// Members and admins ring; the callee cannot ring itself; viewers ring nobody.
		policy{op: "mutation.ringCall", want: ownerOnly, also: map[role]outcome{callee: "BAD_USER_INPUT", member: allowed, callHost: allowed, callViewer: "FORBIDDEN"},
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($id: ID!, $u: ID!) { ringCall(id: $id, members: [$u]) { id } }`,
					brooktest.Vars{"id": f.ringCall(t, false), "u": f.users[callee]}
			}},
		policy{op: "mutation.createCall", variant: "ring", want: ownerOnly, also: ringers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
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

// ringCall creates a call of the owner with the callee, the member, a
// second host and a viewer, and, when ring is set, rings the callee from
// the owner.
func (f *fixture) ringCall(t *testing.T, ring bool) string {
	t.Helper()
	for _, r := range []role{callee, member, callHost, callViewer} {
		if f.users[r] == "" {
			t.Fatalf("a row on f.ringCall must declare role %s in also", r)
		}
	}
	var got struct{ CreateCall struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($m: [ID!]) { createCall(input: {type: "default", members: $m}) { id } }`,
		brooktest.Vars{"m": []string{f.users[callee], f.users[member]}}, &got)
	id := got.CreateCall.ID
	f.node.Must(t, f.token(t, owner), `mutation($id: ID!, $h: ID!, $v: ID!) {
		updateCallMembers(id: $id, set: [{user: $h, role: "host"}, {user: $v, role: "viewer"}]) { id } }`,
		brooktest.Vars{"id": id, "h": f.users[callHost], "v": f.users[callViewer]}, nil)
	if ring {
		f.node.Must(t, f.token(t, owner), `mutation($id: ID!, $u: ID!) { ringCall(id: $id, members: [$u]) { id } }`,
			brooktest.Vars{"id": id, "u": f.users[callee]}, nil)
	}
	return id
}
