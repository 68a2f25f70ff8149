package resolvers_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The moderation rows of the authorization matrix, with the members of a
// moderated channel (chat_authz_test.go): a message is flagged by whoever
// may read it (a banned member reads on); flags is everyone's, each
// seeing what it handles (an empty list for most); a message flag is
// resolved by the channel's owners and moderators, and admins.
func init() {
	matrix = append(matrix,
		policy{op: "mutation.flag", want: ownerOnly, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($m: ID!) { flag(target: { message: $m }, reason: "spam") { id status } }`,
				brooktest.Vars{"m": f.message(t, f.moderated(t))}
		}},
		policy{op: "query.flags", want: everyone, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.flagged(t)
			return `{ flags { edges { node { id targetKind message { id } } } } }`, nil
		}},
		policy{op: "mutation.resolveFlag", want: ownerOnly, also: membersModerate,
			run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
				return `mutation($id: ID!) { resolveFlag(id: $id, action: DISMISS) { status } }`, brooktest.Vars{"id": f.flagged(t)}
			}},
	)
}

// flagged flags, as the member, a message of the owner's in a moderated
// channel, and returns the flag's id.
func (f *fixture) flagged(t *testing.T) string {
	t.Helper()
	var got struct{ Flag struct{ ID string } }
	f.node.Must(t, f.token(t, member), `mutation($m: ID!) { flag(target: { message: $m }) { id } }`,
		brooktest.Vars{"m": f.message(t, f.moderated(t))}, &got)
	return got.Flag.ID
}
