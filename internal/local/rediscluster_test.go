package local

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A three-master cluster with a replica each serves every slot, and when
// a master is killed its replica takes its slots over.
func TestRedisClusterFailover(t *testing.T) {
	ClusterTests(t)
	ctx := context.Background()
	c, err := StartRedisCluster(ctx, t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	for _, k := range []string{"a", "b", "c", "{u1}x"} {
		if err := cc.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := c.Master(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: WAIT until the replica has the write.
	mc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer mc.Close()
	if err := mc.Do(ctx, "WAIT", 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica took over in %v", time.Since(start).Round(time.Millisecond))
	m2, err := c.Master(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if m2 == m {
		t.Fatal("the killed master still owns the slot")
	}
	// go-redis learns the new owner only when it reloads its slot map
	// (on MOVED, or on its own after a while): a dial error alone does not
	// make it reload, so a client of a failing-over cluster must. The
	// value is there since the replica had it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := cc.Get(ctx, "a").Result()
		if err == nil && got == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get a after failover: %q, %v", got, err)
		}
		cc.ReloadState(ctx)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("client read through the new master %v after the kill", time.Since(start).Round(time.Millisecond))
}
