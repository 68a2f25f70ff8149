// Package cluster runs several Brook nodes behind HAProxy on one machine,
// with the PostgreSQL and Redis they share, all as child processes under
// one directory: what `make cluster` starts for trying a scaled-out Brook,
// and what the node-failover test kills nodes of.
//
// Nothing here is a fake: the nodes are the Brook binary, the balancer is
// the distribution's haproxy, the servers come from internal/local.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/migrations"
)

// Options say what to start.
type Options struct {
	// Dir holds everything: servers' data and logs, HAProxy's config, the
	// nodes' logs and shared files (make cluster: .data/cluster).
	Dir string
	// Binary is the Brook binary each node runs.
	Binary string
	// Nodes is how many Brook nodes to start (0: 3).
	Nodes int
	// Port is HAProxy's front port, the one URL clients use (0: a free one).
	Port int
	// StatsPort is HAProxy's stats page (0: a free one).
	StatsPort int
	// Durable keeps PostgreSQL's data across runs and syncs its commits,
	// as `make run` does; tests leave it off.
	Durable bool
	// RedisCluster starts a three-master Redis Cluster (one replica each)
	// instead of one Redis server. Brook reads a cluster REDIS_URL once
	// the Redis Cluster client is in; see redisClusterURL.
	RedisCluster bool
	// PostgresReplica adds a streaming replica of PostgreSQL that nodes
	// read from (DATABASE_REPLICA_URLS); see startReplica.
	PostgresReplica bool
	// JWTSecret is the secret every node signs and checks tokens with
	// (empty: one generated and kept in Dir, so tokens outlive a restart).
	JWTSecret string
	// Env adds to or overrides every node's environment.
	Env map[string]string
}

// Cluster is what Start started; Stop stops all of it.
type Cluster struct {
	// URL is HAProxy's front: the one URL for clients.
	URL string
	// StatsURL is HAProxy's stats page (append ";csv" for machines).
	StatsURL string
	// Nodes are the Brook nodes, named node1, node2, ... as in HAProxy.
	Nodes []*Node
	// DatabaseURL and RedisURL are what the nodes were given.
	DatabaseURL, RedisURL string
	// ReplicaURLs are the PostgreSQL replicas, when PostgresReplica is on.
	ReplicaURLs []string
	// Postgres is the primary; Redis or RedisCluster the Redis in use.
	Postgres     *local.Postgres
	Redis        *local.Redis
	RedisCluster *local.RedisCluster
	// JWTSecret signs tokens that every node accepts.
	JWTSecret string

	opts    Options
	haproxy *Process
	cleanup []func()
}

// Start starts PostgreSQL (and a replica when asked), Redis (or a Redis
// Cluster), migrates the database, starts the Brook nodes and then HAProxy
// in front of them, and returns once HAProxy sees every node up. On error
// it stops whatever it had started.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{opts: opts, JWTSecret: opts.JWTSecret}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if c.JWTSecret == "" {
		if c.JWTSecret, err = keptSecret(filepath.Join(opts.Dir, "jwt-secret")); err != nil {
			return nil, err
		}
	}
	if err := c.startData(ctx); err != nil {
		return nil, err
	}
	if err := migrations.Apply(ctx, c.DatabaseURL); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		n, err := c.startNode(ctx, "node"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	if err := c.startHAProxy(ctx); err != nil {
		return nil, err
	}
	if err := c.WaitUp(ctx, opts.Nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// startData starts PostgreSQL and Redis as the options ask.
func (c *Cluster) startData(ctx context.Context) error {
	pg, err := local.StartPostgres(ctx, filepath.Join(c.opts.Dir, "postgres"), c.opts.Durable)
	if err != nil {
		return err
	}
	c.Postgres = pg
	c.cleanup = append(c.cleanup, func() { _ = pg.Stop() })
	if err := pg.CreateDatabase(ctx, "brook"); err != nil {
		return err
	}
	c.DatabaseURL = pg.URL("brook")
	if c.opts.PostgresReplica {
		urls, stop, err := startReplica(ctx, pg, filepath.Join(c.opts.Dir, "replica"))
		if err != nil {
			return err
		}
		c.cleanup = append(c.cleanup, stop)
		c.ReplicaURLs = urls
	}
	if c.opts.RedisCluster {
		rc, err := local.StartRedisCluster(ctx, filepath.Join(c.opts.Dir, "redis-cluster"), 3, 1)
		if err != nil {
			return err
		}
		c.cleanup = append(c.cleanup, rc.Stop)
		c.RedisCluster, c.RedisURL = rc, redisClusterURL(rc.Addrs())
		return nil
	}
	r, err := local.StartRedis(ctx, filepath.Join(c.opts.Dir, "redis"))
	if err != nil {
		return err
	}
	c.cleanup = append(c.cleanup, func() { _ = r.Stop() })
	c.Redis, c.RedisURL = r, r.URL()
	return nil
}

// Stop stops HAProxy, then the nodes (SIGTERM: they drain), then the
// servers. It is safe to call more than once.
func (c *Cluster) Stop() {
	if c.haproxy != nil {
		c.haproxy.Stop()
	}
	for _, n := range c.Nodes {
		n.Stop()
	}
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	c.cleanup = nil
}

// keptSecret reads a secret from path, or makes one and writes it there.
func keptSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return string(b), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cluster: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	s := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	return s, nil
}
