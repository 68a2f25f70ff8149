package cluster

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/internal/local"
)

// When Redis, which every node shares, goes away, every node's /healthz
// answers 503 and HAProxy marks them all down; requests still reach them
// (the nodes-all-failing backend) and succeed from PostgreSQL, instead of
// HAProxy answering 503 to everything. When Redis is back, the nodes are
// up again.
func TestFailoverAllNodesFailingHealthCheck(t *testing.T) {
	local.ClusterTests(t)
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "brook")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/brookhq/brook").CombinedOutput(); err != nil {
		t.Fatalf("build brook: %v\n%s", err, out)
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	c, err := Start(startCtx, Options{Dir: t.TempDir(), Binary: bin, Nodes: 2, JWTSecret: testSecret,
		Env: map[string]string{"BROOK_LOG_LEVEL": "error", "BROOK_SHUTDOWN_TIMEOUT_SECONDS": "5"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	keys, _ := auth.NewKeys([]byte(testSecret))
	tok, _ := keys.Issue("alice", false, time.Hour)
	admin, _ := keys.Issue("admin", true, time.Hour)
	if err := client.New(c.URL, admin).Run(ctx, `mutation { upsertUsers(users: [{id: "alice", name: "alice"}]) { id } }`, nil, nil); err != nil {
		t.Fatal(err)
	}
	alice := client.New(c.URL, tok)
	if err := alice.Run(ctx, `mutation { createChannel(input: {type: "livestream", id: "open"}) { id } }`, nil, nil); err != nil {
		t.Fatal(err)
	}

	if err := c.Redis.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	eventually(t, 30*time.Second, "HAProxy marks every node down", func() bool {
		s, err := c.Servers(ctx)
		if err != nil {
			return false
		}
		for _, n := range c.Nodes {
			if s[n.Name].Up() {
				return false
			}
		}
		return true
	})
	allDown := time.Since(down)
	var out struct{ SendMessage struct{ ID string } }
	if err := alice.Run(ctx, `mutation { sendMessage(channel: "livestream:open", input: {text: "while Redis is away"}) { id } }`, nil, &out); err != nil {
		t.Fatalf("with every node failing its check, a request answered %v; want it served by a node", err)
	}

	if err := c.Redis.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := c.WaitUp(ctx, len(c.Nodes)); err != nil {
		t.Fatal(err)
	}
	t.Logf("Redis killed: HAProxy marked both nodes down after %s, sendMessage still served (message %s); Redis restarted: both up after %s",
		allDown.Round(time.Millisecond), out.SendMessage.ID, time.Since(back).Round(time.Millisecond))
}
