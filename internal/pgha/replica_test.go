package pgha

import (
	"context"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

const send = `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: { text: $t }) { id } }`

// With the replica's replay paused, the writer reads their own message
// (from the primary) while another member's reads keep going to the stale
// replica; on a node whose lag bound the pause exceeds, the replica drops
// out of rotation and every read goes to the primary, until it catches up.
func TestReplicaReadYourWrites(t *testing.T) {
	w := startWorld(t, false)
	ctx := context.Background()
	env := w.env
	patient := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) { o.ReplicaMaxLag = time.Minute }})
	strict := env.StartNode(t, brooktest.NodeOptions{Workers: -1, Node: func(o *node.Options) { o.ReplicaMaxLag = 300 * time.Millisecond }})
	env.AddUsers(t, patient, "alice", "bob")
	alice, bob := env.Token(t, "alice"), env.Token(t, "bob")
	ch := createChannel(t, patient, alice, "ryw", "bob")
	patient.Must(t, alice, send, brooktest.Vars{"c": ch, "t": "before"}, nil)
	if err := w.replica.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, patient, bob, ch); !has(got, "before") {
		t.Fatalf("bob reads %q from the caught-up replica, want \"before\"", got)
	}

	if err := w.replica.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	patient.Must(t, alice, send, brooktest.Vars{"c": ch, "t": "paused"}, nil)
	onReplica, _ := patient.Store.LaggingReads()
	if got := texts(t, patient, alice, ch); !has(got, "paused") {
		t.Fatalf("alice reads %q after sending \"paused\": her own write is missing", got)
	}
	if got := texts(t, patient, bob, ch); has(got, "paused") {
		t.Fatalf("bob reads %q: his read should have gone to the paused replica", got)
	}
	if after, _ := patient.Store.LaggingReads(); after != onReplica+1 {
		t.Fatalf("reads on the replica went from %d to %d, want one more (bob's)", onReplica, after)
	}

	// The strict node's checker sees the lag pass its bound.
	brooktest.Eventually(t, "the lagging replica out of rotation on the strict node", func() bool {
		return !strict.Store.Replicas()[0].Healthy
	})
	if got := texts(t, strict, bob, ch); !has(got, "paused") {
		t.Fatalf("bob reads %q on the strict node: with the replica out of rotation the read should reach the primary", got)
	}
	if err := w.replica.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	brooktest.Eventually(t, "the replica back in rotation", func() bool { return strict.Store.Replicas()[0].Healthy })
	// Back in rotation means within the bound, not caught up: wait for that.
	if err := w.replica.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := texts(t, patient, bob, ch); !has(got, "paused") {
		t.Fatalf("bob reads %q after the replica resumed", got)
	}
}
