package resolvers_test

import (
	"slices"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// channels(filter: {joined: false}) lists channels the caller is not in:
// the one row of query.channels in the matrix says who may ask, this
// says what each kind of caller sees. A messaging channel by invitation
// never shows to a non-member; an open one shows its profile, and its
// content only to those who may read it (admins); a livestream is
// anyone's to read.
func TestChannelDiscoveryByRole(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	f := newFixture(t, n, "discovery-"+brooktest.Tag())
	tag := map[string]any{"t": f.users[owner]}
	create := func(in map[string]any) string {
		t.Helper()
		in["data"] = tag
		var got struct{ CreateChannel struct{ ID string } }
		f.node.Must(t, f.token(t, owner), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`, brooktest.Vars{"in": in}, &got)
		f.message(t, got.CreateChannel.ID)
		return got.CreateChannel.ID
	}
	closed := create(map[string]any{"type": "messaging", "name": "closed"})
	open := create(map[string]any{"type": "messaging", "name": "open", "joinPolicy": "OPEN"})
	live := create(map[string]any{"type": "livestream", "name": "live"})

	type node struct {
		ID          string
		LastMessage *struct{ Text string }
		Messages    struct {
			Edges []struct{ Node struct{ Text string } }
		}
	}
	want := map[role]struct {
		ids      []string // by name
		readable []string
	}{
		owner:     {nil, nil},
		stranger:  {[]string{live, open}, []string{live}},
		nonMember: {[]string{live, open}, []string{live}},
		admin:     {[]string{live, open}, []string{live, open}},
	}
	q := `query($f: ChannelFilter) { channels(filter: $f, sort: [{field: NAME}], first: 10) {
		edges { node { id lastMessage { text } messages(last: 5) { edges { node { text } } } } } } }`
	env.CaughtUp(t) // the owner made the channels; others list them
	for _, joined := range []any{false, nil} {
		for _, r := range roles {
			vars := brooktest.Vars{"f": map[string]any{"joined": joined, "data": tag}}
			if r == anonymous {
				brooktest.WantCode(t, f.node.Query(t, "", q, vars), "UNAUTHENTICATED")
				continue
			}
			var got struct {
				Channels struct{ Edges []struct{ Node node } }
			}
			f.node.Must(t, f.token(t, r), q, vars, &got)
			var ids, readable []string
			for _, e := range got.Channels.Edges {
				ids = append(ids, e.Node.ID)
				hasMsgs := len(e.Node.Messages.Edges) > 0
				if hasMsgs != (e.Node.LastMessage != nil) {
					t.Errorf("%s, joined %v: %s shows messages %v but lastMessage %v", r, joined, e.Node.ID, hasMsgs, e.Node.LastMessage)
				}
				if hasMsgs {
					readable = append(readable, e.Node.ID)
				}
			}
			w := want[r]
			if joined == nil { // the caller's own list: the owner's, all readable
				w.ids, w.readable = nil, nil
				if r == owner {
					w.ids = []string{closed, live, open}
					w.readable = w.ids
				}
			}
			if !slices.Equal(ids, w.ids) || !slices.Equal(readable, w.readable) {
				t.Errorf("%s, joined %v: listed %v readable %v, want %v and %v", r, joined, ids, readable, w.ids, w.readable)
			}
		}
	}
}
