package chat_test

import (
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// sendStatements is what the common sendMessage (a member's top-level
// message, no quote) costs in SQL statements once the caller is signed
// in: the channel and membership read, the transaction (BEGIN, the id
// check, the membership lock, the channel update, the insert, the read
// position, the job, COMMIT) and the author's profile for the event.
// Moderation state must ride on these statements, not add to them.
const sendStatements = 10

// The common send costs the same statements whatever the channel has
// seen: a pinned constant, so a change that adds one fails here.
func TestChatSendStatements(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Workers: -1}) // no job polling in the count
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	cid := createChannel(t, n, alice, "messaging", "stmts-"+tag, bob)
	send := func() int64 {
		n.Must(t, env.Token(t, alice), `{ me { id } }`, nil, nil) // warms the sign-in
		before := n.Store.Statements()
		n.Must(t, env.Token(t, alice), `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "hi" }) { id } }`, brooktest.Vars{"c": cid}, nil)
		return n.Store.Statements() - before
	}
	first := send()
	sendMsg(t, n, bob, cid, "an answer")
	if again := send(); first != sendStatements || again != sendStatements {
		t.Fatalf("sendMessage ran %d and %d statements, want %d", first, again, sendStatements)
	}
}
