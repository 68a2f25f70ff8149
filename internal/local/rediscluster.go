package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a private Redis Cluster: Masters masters with Replicas
// replicas each, every node a child process on loopback, made with
// `redis-cli --cluster create` as an operator would.
type RedisCluster struct {
	// Nodes are the servers, masters first as created (a failover may
	// promote a replica later: ask Master for the current owner of a slot).
	Nodes []*Redis
	// Masters and Replicas are the shape the cluster was created with.
	Masters, Replicas int
}

// StartRedisCluster starts masters*(1+replicas) cluster-enabled servers
// under dir, joins them into one cluster and waits until every node says
// the cluster is ok. The caller stops it with Stop.
func StartRedisCluster(ctx context.Context, dir string, masters, replicas int) (*RedisCluster, error) {
	cli, err := findBinary("redis-cli")
	if err != nil {
		return nil, err
	}
	c := &RedisCluster{Masters: masters, Replicas: replicas}
	for i := 0; i < masters*(1+replicas); i++ {
		r, err := startRedis(ctx, filepath.Join(dir, "node"+strconv.Itoa(i)),
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			// A killed master is replaced within about a second, so
			// failover tests are short; a replica may always be promoted.
			"--cluster-node-timeout", "1000",
			"--cluster-replica-validity-factor", "0",
			"--cluster-allow-reads-when-down", "no")
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, r)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("local: redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// healthyReplicas is every running replica's link to its master up: a
// replica still syncing would lose what its master took if the master
// died now.
func (c *RedisCluster) healthyReplicas(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		info, err := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil {
			return err
		}
		if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s: link to its master is down", n.Addr())
		}
	}
	return nil
}

// Addrs are the host:port of every node, the seed list a client takes.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// WaitHealthy waits until every running node reports cluster_state:ok,
// every slot is served by a running master and every running replica is
// linked to its master, as after creation or a failover.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := c.healthy(ctx)
		if err == nil {
			err = c.healthyReplicas(ctx)
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: redis cluster not healthy: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *RedisCluster) healthy(ctx context.Context) error {
	running := map[string]bool{}
	for _, a := range c.runningAddrs() {
		running[a] = true
	}
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1})
		info, err := rc.ClusterInfo(ctx).Result()
		if err != nil {
			rc.Close()
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			rc.Close()
			return fmt.Errorf("node %s: %s", n.Addr(), firstLine(info))
		}
		// A node that has not noticed a killed master yet still says ok:
		// every slot's owner must be a running node in every node's view.
		slots, err := rc.ClusterSlots(ctx).Result()
		rc.Close()
		if err != nil {
			return err
		}
		for _, s := range slots {
			if len(s.Nodes) == 0 || !running[s.Nodes[0].Addr] {
				return fmt.Errorf("node %s: slots %d-%d served by a stopped node", n.Addr(), s.Start, s.End)
			}
		}
	}
	return nil
}

// Master returns the running node that serves key's slot now.
func (c *RedisCluster) Master(ctx context.Context, key string) (*Redis, error) {
	addrs := c.runningAddrs()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("local: no redis cluster node is running")
	}
	rc := redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1})
	defer rc.Close()
	slot, err := rc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("local: slot of %q: %w", key, err)
	}
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("local: cluster slots: %w", err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			for _, n := range c.Nodes {
				if n.Addr() == s.Nodes[0].Addr {
					return n, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("local: no node serves %q", key)
}

func (c *RedisCluster) runningAddrs() []string {
	var addrs []string
	for _, n := range c.Nodes {
		if n.Running() {
			addrs = append(addrs, n.Addr())
		}
	}
	return addrs
}

// Stop stops every node.
func (c *RedisCluster) Stop() {
	for _, n := range c.Nodes {
		_ = n.Stop()
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// ClusterTests skips t unless BROOK_CLUSTER_TESTS is set (make test-cluster
// sets it): tests that start clusters of servers run there, not in make
// test, to keep that one short.
func ClusterTests(t testing.TB) {
	t.Helper()
	if os.Getenv("BROOK_CLUSTER_TESTS") == "" {
		t.Skip("starts a cluster of servers: run with BROOK_CLUSTER_TESTS=1 (make test-cluster)")
	}
}
