package local

// BROOK_TEST_REDIS=cluster: a test binary's environment gets a private
// three-master Redis Cluster (one replica each) instead of one Redis, so
// the product suites run against a cluster (make test-cluster).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TestRedisEnv is the variable that picks the test environment's Redis.
const TestRedisEnv = "BROOK_TEST_REDIS"

// testRedisCluster starts the cluster for e when BROOK_TEST_REDIS=cluster
// and reports whether it did. The URL names every node (go-redis's
// cluster URL), as an operator's REDIS_URL for a cluster would.
func testRedisCluster(ctx context.Context, e *Env, dir string) (bool, error) {
	switch v := os.Getenv(TestRedisEnv); v {
	case "":
		return false, nil
	case "cluster":
	default:
		return false, fmt.Errorf("local: %s=%q: want cluster or nothing", TestRedisEnv, v)
	}
	c, err := StartRedisCluster(ctx, filepath.Join(dir, "rediscluster"), 3, 1)
	if err != nil {
		return false, err
	}
	e.cleanup = append(e.cleanup, c.Kill)
	e.RedisCluster, e.RedisURL = c, c.URL()
	return true, nil
}

// URL is the cluster's redis:// URL: the first node, the others as addr
// parameters.
func (c *RedisCluster) URL() string {
	addrs := c.Addrs()
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

// Kill kills every node, for cleanup at the end of a test binary.
func (c *RedisCluster) Kill() {
	for _, n := range c.Nodes {
		if n.Running() {
			_ = n.Kill()
		}
	}
}
