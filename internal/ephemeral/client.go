package ephemeral

// The Redis client: one server, or a Redis Cluster. REDIS_URL names a
// cluster either with several seeds (go-redis's cluster URL,
// redis://host1:port1?addr=host2:port2&addr=host3:port3) or with one seed
// whose INFO says cluster_enabled:1. Either kind gets the same timeouts,
// retries and buffers (tune).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// settings are the client settings both kinds of client share; see tune.
type settings struct {
	MaxRetries, DialerRetries, PoolSize, ReadBufferSize, WriteBufferSize int
	DialTimeout, ReadTimeout, WriteTimeout                               time.Duration
}

// tune returns Brook's client settings.
func tune() settings {
	return settings{
		// Fail fast while Redis is down: callers fall back to PostgreSQL.
		MaxRetries: 1,
		// One dial per attempt: go-redis otherwise retries a refused dial 5
		// times, 100 ms apart, which made every Redis call of a request take
		// about a second while Redis was down (fault test 2).
		DialerRetries: 1,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   2 * time.Second,
		WriteTimeout:  2 * time.Second,
		// Per server: a cluster client holds a pool per node.
		PoolSize: 50,
		// Brook's commands and replies are small (the largest, a user's
		// unread counts in 1,000 channels, is about 20 KB and is read in a
		// few fills); go-redis's 32 KiB buffers each way held 10 MB on a
		// node whose pool and subscriptions had grown while 10,000 clients
		// connected. Pipelines keep their pool's larger buffers.
		ReadBufferSize:  8 << 10,
		WriteBufferSize: 8 << 10,
	}
}

// NewClient returns the client Brook uses for rawURL, with Brook's
// settings but no guard: a *redis.ClusterClient when it names a cluster, a
// *redis.Client otherwise. It asks a single seed whether it is part of a
// cluster, once. Open uses it; so do tests and tools that need a client
// of their own.
func NewClient(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ephemeral: parse redis URL: %w", err)
	}
	if u.Query().Has("addr") {
		copts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("ephemeral: parse redis cluster URL: %w", err)
		}
		return newClusterClient(copts), nil
	}
	ropts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ephemeral: parse redis URL: %w", err)
	}
	s := tune()
	ropts.MaxRetries, ropts.DialerRetries, ropts.PoolSize = s.MaxRetries, s.DialerRetries, s.PoolSize
	ropts.DialTimeout, ropts.ReadTimeout, ropts.WriteTimeout = s.DialTimeout, s.ReadTimeout, s.WriteTimeout
	ropts.ReadBufferSize, ropts.WriteBufferSize = s.ReadBufferSize, s.WriteBufferSize
	// Commands take their deadline from the context, which the guard sets
	// short on the request path.
	ropts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(ropts)
	cluster, err := clusterEnabled(ctx, rdb)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	if !cluster {
		return rdb, nil
	}
	_ = rdb.Close()
	if ropts.DB != 0 {
		return nil, fmt.Errorf("ephemeral: redis URL names database %d, but %s is a cluster node (clusters have database 0 only)", ropts.DB, ropts.Addr)
	}
	return newClusterClient(&redis.ClusterOptions{Addrs: []string{ropts.Addr}, Username: ropts.Username,
		Password: ropts.Password, TLSConfig: ropts.TLSConfig, ClientName: ropts.ClientName, Protocol: ropts.Protocol}), nil
}

// newClusterClient applies Brook's settings to copts.
func newClusterClient(copts *redis.ClusterOptions) *redis.ClusterClient {
	s := tune()
	copts.MaxRetries, copts.DialerRetries, copts.PoolSize = s.MaxRetries, s.DialerRetries, s.PoolSize
	copts.DialTimeout, copts.ReadTimeout, copts.WriteTimeout = s.DialTimeout, s.ReadTimeout, s.WriteTimeout
	copts.ReadBufferSize, copts.WriteBufferSize = s.ReadBufferSize, s.WriteBufferSize
	copts.ContextTimeoutEnabled = true
	return redis.NewClusterClient(copts)
}

// clusterEnabled asks the one server rdb talks to whether it is a cluster
// node. A server that refuses INFO (renamed away) is taken for a single one.
func clusterEnabled(ctx context.Context, rdb *redis.Client) (bool, error) {
	info, err := rdb.Info(ctx, "cluster").Result()
	if err != nil {
		var re redis.Error
		if errors.As(err, &re) {
			return false, nil
		}
		return false, fmt.Errorf("ephemeral: redis: %w", err)
	}
	return strings.Contains(info, "cluster_enabled:1"), nil
}
