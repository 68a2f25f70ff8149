package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/brookhq/brook/chat"
	"github.com/brookhq/brook/internal/local"
)

// Redis Cluster: two Brook nodes on a three-master cluster (a replica
// each), messages sent through one node and a messageAdded subscriber on
// the other; the master that owns the busy channel's topic is killed and
// its replica takes over. No acknowledged message is lost (PostgreSQL has
// every one), the subscription resumes with every message exactly once,
// and every unread count is exact after the repair pass.
func TestRedisClusterMasterKilledFailover(t *testing.T) {
	local.ClusterTests(t)
	c := newCluster(t, true)
	ctx := context.Background()
	rc, err := local.StartRedisCluster(ctx, filepath.Join(t.TempDir(), "rediscluster"), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Kill)
	c.RedisURL = rc.URL()
	env := map[string]string{"BROOK_WORKERS": "2"}
	p1 := c.startBrook(t, nil, env)
	p2 := c.startBrook(t, nil, env)
	l, everyone := c.newChatLoad(t, p1, "rc")
	f := c.follow(t, p2, l, "r0")
	defer l.close()

	go l.run()
	l.waitFor(t, 30)

	// The master of the followed channel's topic (the bus hashes the
	// topic alone: its channel is prefix{topic}).
	m, err := rc.Master(ctx, "{"+chat.ChannelTopic(l.channels[0])+"}")
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	ackedBefore := len(l.acked[l.channels[0]])
	l.mu.Unlock()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt, atKill := time.Now(), l.total.Load()
	l.phase.Store("failover")
	// Recovered: the subscriber on the other node receives a message
	// acknowledged after the kill.
	var recovered time.Duration
	eventually(t, 60*time.Second, "the subscription delivers a message sent after the kill", func() bool {
		l.mu.Lock()
		after := append([]string(nil), l.acked[l.channels[0]][ackedBefore:]...)
		l.mu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, id := range f.got {
			if slices.Contains(after, id) {
				recovered = time.Since(killedAt)
				return true
			}
		}
		return false
	})
	if err := rc.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Since(killedAt)
	l.phase.Store("after")
	l.waitFor(t, 30)
	l.close()

	f.checkAll(t, c, l, fmt.Sprintf("master %s killed %s", m.Addr(), killedAt.UTC().Format("15:04:05.000")))
	// Every acknowledged message is in PostgreSQL.
	l.mu.Lock()
	var acked []string
	for _, ids := range l.acked {
		acked = append(acked, ids...)
	}
	l.mu.Unlock()
	var stored int
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM messages WHERE id::text = ANY($1)`, acked).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(acked) {
		t.Fatalf("PostgreSQL has %d of %d acknowledged messages", stored, len(acked))
	}
	var mismatch string
	eventually(t, 90*time.Second, "every unread count is exact", func() bool {
		for _, u := range everyone {
			for _, p := range []*proc{p1, p2} {
				if mismatch = c.unreadMismatch(t, p, u); mismatch != "" {
					return false
				}
			}
		}
		return true
	}, &mismatch)
	var parked int
	_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE parked_at IS NOT NULL`).Scan(&parked)
	if parked != 0 {
		t.Fatalf("%d jobs parked", parked)
	}
	errs := l.errors()
	failed := 0
	for _, n := range errs {
		failed += n
	}
	if !p1.Alive() || !p2.Alive() {
		t.Fatal("a Brook process died")
	}
	l.mu.Lock()
	upP50, foP50, foMax := percentile(l.lat[""], 0.5), percentile(l.lat["failover"], 0.5), percentile(l.lat["failover"], 1)
	l.mu.Unlock()
	t.Logf("redis cluster failover: killed master %s; cluster healthy again (replica promoted, every node agreeing) after %s; "+
		"the subscriber on the other node received a message sent after the kill %s after it",
		m.Addr(), promoted.Round(10*time.Millisecond), recovered.Round(10*time.Millisecond))
	t.Logf("redis cluster failover: %d messages acknowledged by the load (%d after the kill), all %d acknowledged (probes too) in PostgreSQL; requests failed: %d %v; "+
		"events lost: 0 (the subscription had all %d of its channel once each); unread counts of %d users exact on both nodes; "+
		"sendMessage p50 %s before, during failover p50 %s max %s",
		l.total.Load(), l.total.Load()-atKill, stored, failed, errs, f.received(), len(everyone), ms(upP50), ms(foP50), ms(foMax))
	if failed > 0 {
		t.Fatalf("requests failed during the failover: %v", errs)
	}
}
