package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for call permissions and
// participant state (issue 20), on the ringing rows' call (f.ringCall):
// the owner hosts it, callee and member are plain members, callHost a
// second host, viewer a viewer. Hosts and admins grant, revoke and mute; a participant's
// own operations are its user's alone (the owner's participant: everyone
// else, admins included, is FORBIDDEN). The outcomes are the table "Who
// may do what" in docs/calls.md. (Viewers come with call types.)

var (
	// hostsOfCall: hosts and admins manage; plain members and viewers may not.
	hostsOfCall = callHostsOnly
	// notTheirParticipant: the owner's participant is nobody else's.
	notTheirParticipant = noCallRole
)

func init() {
	matrix = append(matrix,
		policy{op: "mutation.grantPermissions", want: ownerOnly, also: hostsOfCall, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!, $u: ID!) { grantPermissions(call: $c, user: $u, permissions: [SCREENSHARE]) }`,
				brooktest.Vars{"c": f.ringCall(t, false), "u": f.users[member]}
		}},
		policy{op: "mutation.revokePermissions", want: ownerOnly, also: hostsOfCall, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!, $u: ID!) { revokePermissions(call: $c, user: $u, permissions: [SEND_AUDIO]) }`,
				brooktest.Vars{"c": f.ringCall(t, false), "u": f.users[member]}
		}},
		policy{op: "mutation.muteParticipants", want: ownerOnly, also: hostsOfCall, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			call := f.ringCall(t, false)
			f.join(t, call)
			return `mutation($c: ID!, $u: ID!) { muteParticipants(call: $c, users: [$u], video: true) { id } }`,
				brooktest.Vars{"c": call, "u": f.users[owner]}
		}},
		policy{op: "mutation.requestPermission", want: participantOnly, also: notTheirParticipant, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($p: ID!) { requestPermission(participant: $p, permissions: [SCREENSHARE]) }`,
				brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
		}},
		policy{op: "mutation.updateParticipantState", want: participantOnly, also: notTheirParticipant, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($p: ID!) { updateParticipantState(participant: $p, audioMuted: false) { id } }`,
				brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
		}},
		policy{op: "mutation.sendCallEvent", want: participantOnly, also: notTheirParticipant, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($p: ID!) { sendCallEvent(participant: $p, type: "reaction", data: {emoji: "🎉"}) { type } }`,
				brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
		}},
	)
}
