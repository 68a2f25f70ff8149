package calls_test

import (
	"fmt"
	"testing"

	"github.com/brookhq/brook/internal/api"
	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/sfu"
)

// Every Brook node assigns a session the SFU that rendezvous hashing picks
// for the call among the nodes not drained; a drain (shared by all nodes)
// moves new sessions off the node and leaves live ones where they are.
func TestCallSFUAssignmentAndDrain(t *testing.T) {
	t.Parallel()
	tag := brooktest.Tag()
	nodes := make([]sfu.Node, 4)
	for i := range nodes {
		nodes[i] = sfu.Node{ID: fmt.Sprintf("sfu%d-%s", i, tag), URL: fmt.Sprintf("wss://sfu-%d.example:443", i), Region: "eu"}
	}
	opts := brooktest.NodeOptions{Node: func(o *node.Options) { o.SFUNodes = nodes }}
	a := env.StartNode(t, opts)
	b := env.StartNode(t, opts)
	alice := "alice-" + tag
	env.AddUsers(t, a, alice)
	admin := env.AdminToken(t, "ops-"+tag)

	// Stability: both nodes, and every participant, get the hashed node.
	cids := make([]string, 24)
	sessionSFU := map[string]string{}
	for i := range cids {
		cids[i] = createCall(t, a, alice, "default", fmt.Sprintf("sfu-%d-%s", i, tag))
		j1 := joinCall(t, a, alice, cids[i]).JoinCall
		j2 := joinCall(t, b, alice, cids[i]).JoinCall
		want, _ := sfu.Pick(nodes, cids[i], nil)
		if j1.Session.SFU.ID != want.ID || j2.Session.SFU.ID != want.ID || j1.Session.SFU.URL != want.URL {
			t.Fatalf("%s: SFU %v and %v, want %s", cids[i], j1.Session.SFU, j2.Session.SFU, want.ID)
		}
		sessionSFU[cids[i]] = want.ID
	}
	// Drain the node that hosts the first call, on node b.
	drained := sessionSFU[cids[0]]
	var d struct {
		DrainSFUNode struct {
			ID      string
			Drained bool
			Region  string
		}
	}
	b.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id) { id drained region } }`, brooktest.Vars{"id": drained}, &d)
	if !d.DrainSFUNode.Drained || d.DrainSFUNode.Region != "eu" {
		t.Fatalf("drain answered %+v", d)
	}
	var list struct {
		SfuNodes []struct {
			ID      string
			Drained bool
		}
	}
	a.Must(t, admin, `{ sfuNodes { id drained } }`, nil, &list)
	for _, n := range list.SfuNodes {
		if n.Drained != (n.ID == drained) {
			t.Fatalf("node a sees %+v", list)
		}
	}
	// Live sessions stay; new sessions avoid the drained node, and only
	// the calls that hashed to it move.
	skip := func(id string) bool { return id == drained }
	for _, cid := range cids {
		if j := joinCall(t, a, alice, cid).JoinCall; j.Session.SFU.ID != sessionSFU[cid] {
			t.Fatalf("live session of %s moved to %s", cid, j.Session.SFU.ID)
		}
	}
	moved := 0
	for i := 0; i < 24; i++ {
		cid := createCall(t, a, alice, "default", fmt.Sprintf("new-%d-%s", i, tag))
		j := joinCall(t, b, alice, cid).JoinCall
		want, _ := sfu.Pick(nodes, cid, skip)
		before, _ := sfu.Pick(nodes, cid, nil)
		if j.Session.SFU.ID != want.ID || j.Session.SFU.ID == drained {
			t.Fatalf("%s got %s, want %s", cid, j.Session.SFU.ID, want.ID)
		}
		if want.ID != before.ID {
			moved++
			if before.ID != drained {
				t.Fatalf("%s moved although it was not on the drained node", cid)
			}
		}
	}
	// Drain everything: no node can take a new session.
	for _, n := range nodes {
		a.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id) { id } }`, brooktest.Vars{"id": n.ID}, nil)
	}
	brooktest.WantCode(t, b.Query(t, env.Token(t, alice), joinCallQuery, brooktest.Vars{"id": createCall(t, a, alice, "default", "nowhere-"+tag)}), api.CodeConflict)
	// Undrain.
	b.Must(t, admin, `mutation($id: ID!) { drainSFUNode(id: $id, drained: false) { id drained } }`, brooktest.Vars{"id": drained}, &d)
	if d.DrainSFUNode.Drained {
		t.Fatal("still drained")
	}
	if j := joinCall(t, a, alice, "default:nowhere-"+tag).JoinCall; j.Session.SFU.ID != drained {
		t.Fatalf("only %s is in service, got %s", drained, j.Session.SFU.ID)
	}
}
