package redisguard

// Redis Cluster: the guard of a *redis.ClusterClient treats the cluster as
// one Redis. It answers when every master answers a PING; a master that
// dies opens the circuit until its replica has taken its slots over (about
// a second with cluster-node-timeout 1000), and the recovery steps and
// announcements run then as after any outage.
//
// go-redis reloads its slot map on MOVED, or every ClusterStateReloadInterval
// (60 s by default), but not when a master refuses connections: until then every
// command for the dead master's slots fails. So the guard reloads it
// itself, at most every reloadEvery, after a failure for want of an
// answer, and at every probe while the circuit is open.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// reloadEvery bounds how often failures make the guard reload the slot map.
const reloadEvery = 100 * time.Millisecond

// clusterState is the guard's part for a cluster client.
type clusterState struct {
	client *redis.ClusterClient
	pinger *redis.ClusterClient
	// lastReload is when a reload was last asked for, in Unix nanoseconds.
	lastReload atomic.Int64
}

// newClusterPinger returns a cluster client of cc's options with one
// connection a node, for the guard's checks.
func newClusterPinger(cc *redis.ClusterClient) *redis.ClusterClient {
	opts := *cc.Options()
	opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns, opts.MaxRetries = 1, 0, 1, -1
	opts.ContextTimeoutEnabled = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// The pinger's own hooks and state must not be cc's.
	opts.NewClient = nil
	return redis.NewClusterClient(&opts)
}

// failed asks for a reload of the slot map after a command failed for
// want of an answer, at most every reloadEvery: a dead master's replica
// may own its slots by now.
func (c *clusterState) failed() {
	now := time.Now().UnixNano()
	last := c.lastReload.Load()
	if now-last < int64(reloadEvery) || !c.lastReload.CompareAndSwap(last, now) {
		return
	}
	c.client.ReloadState(context.Background())
}

// ping reports whether every master answers, as the pinger's fresh slot
// map names them, and on success reloads the client's slot map too
// (ForEachMaster reloads it before it runs), so that the commands let
// through when the circuit closes go to the masters that answered.
func (c *clusterState) ping(ctx context.Context) error {
	err := c.pinger.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	})
	if err != nil {
		return err
	}
	return c.client.ForEachMaster(ctx, func(context.Context, *redis.Client) error { return nil })
}

// isClusterDown reports a reply that says the cluster cannot serve the
// slot now (a master failed and its replica has not taken over yet):
// an outage, like a refused connection, not an answer.
func isClusterDown(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && (strings.HasPrefix(re.Error(), "CLUSTERDOWN") || strings.HasPrefix(re.Error(), "MASTERDOWN"))
}
