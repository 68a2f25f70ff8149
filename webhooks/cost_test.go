package webhooks_test

import (
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// The product changes that emit events run the same statements with no
// webhook as with one that wants none of their types: the events cost
// nothing until wanted (then the change gets a transaction with its
// deliveries).
func TestUnwantedEventsCostNothing(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) {
		fastHooks(o)
		o.Webhooks.Reload = time.Hour // no periodic reload in the counts
	}})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := channel(t, n, alice, "cost-"+tag)
	a := env.Token(t, alice)
	var sent struct{ SendMessage struct{ ID string } }
	n.Must(t, a, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "x"}) { id } }`, brooktest.Vars{"c": cid}, &sent)
	var created struct{ CreateCall struct{ ID string } }
	n.Must(t, a, `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "default", "id": "cost-" + tag, "members": []string{bob}}}, &created)
	ops := []struct {
		name, query string
		vars        brooktest.Vars
	}{
		{"reactions", `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } deleteReaction(message: $m, kind: "like") { id } }`,
			brooktest.Vars{"m": sent.SendMessage.ID}},
		{"members", `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } removeMembers(channel: $c, userIds: $u) { id } }`,
			brooktest.Vars{"c": cid, "u": []string{bob}}},
		{"channel", `mutation($c: ID!) { updateChannel(id: $c, name: "n") { id } }`, brooktest.Vars{"c": cid}},
		{"rings", `mutation($c: ID!, $u: [ID!]!) { ringCall(id: $c, members: $u) { id } cancelRing(id: $c) { id } }`,
			brooktest.Vars{"c": created.CreateCall.ID, "u": []string{bob}}},
	}
	cost := func() map[string]int64 {
		out := map[string]int64{}
		for _, op := range ops {
			n.Must(t, a, op.query, op.vars, nil) // warms caches
			before := n.Store.Statements()
			n.Must(t, a, op.query, op.vars, nil)
			out[op.name] = n.Store.Statements() - before
		}
		return out
	}
	none := cost()
	upsert(t, n, "cost-"+tag, "http://127.0.0.1:1/never", "follow.created")
	unwanted := cost()
	for _, op := range ops {
		if none[op.name] != unwanted[op.name] {
			t.Errorf("%s: %d statements with no webhook, %d with one that wants none of its events", op.name, none[op.name], unwanted[op.name])
		}
	}
	// Wanted, the same change writes its deliveries: proof the count sees them.
	upsert(t, n, "cost2-"+tag, "http://127.0.0.1:1/never", "reaction.new", "reaction.deleted")
	if wanted := cost(); wanted["reactions"] <= none["reactions"] {
		t.Errorf("reactions: %d statements with a webhook wanting them, %d without", wanted["reactions"], none["reactions"])
	}
}
