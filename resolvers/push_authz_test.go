package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for push devices (issue 21): every
// signed-in user registers and removes its own devices; a user's devices
// (their tokens reach its phone) are read by the user and admins alone.
func init() {
	matrix = append(matrix,
		policy{op: "mutation.addDevice", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($t: String!) { addDevice(provider: FCM, token: $t, name: "phone") { id } }`,
				brooktest.Vars{"t": "authz-fcm-" + brooktest.Tag()}
		}},
		// Anyone may ask to remove a device by id; only the owner's call
		// removes it (push tests check that the others' remove nothing).
		policy{op: "mutation.removeDevice", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { removeDevice(id: $id) }`, brooktest.Vars{"id": f.device(t)}
		}},
		policy{op: "query.me", variant: "devices", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.device(t)
			return `{ me { devices { id token } } }`, nil
		}},
		policy{op: "query.user", variant: "another user's devices", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($id: ID!) { user(id: $id) { devices { id token } } }`, brooktest.Vars{"id": f.users[owner]}
		}},
	)
}

// device registers an FCM device of the owner and returns its id.
func (f *fixture) device(t *testing.T) string {
	t.Helper()
	var got struct{ AddDevice struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($t: String!) { addDevice(provider: FCM, token: $t) { id } }`,
		brooktest.Vars{"t": "authz-fcm-" + brooktest.Tag()}, &got)
	return got.AddDevice.ID
}
