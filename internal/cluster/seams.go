package cluster

import (
	"context"
	"errors"
	"strings"

	"github.com/brookhq/brook/internal/local"
)

// The two places where this package meets work of other branches of
// issue 23: the Redis Cluster client (which URL form REDIS_URL takes for
// a cluster) and PostgreSQL replicas (how a streaming replica is made).
// Each is one function, so the switch-over is one edit here.

// redisClusterURL is REDIS_URL naming a cluster by its seed addresses, in
// go-redis' ParseClusterURL form (redis://first?addr=second&addr=third).
func redisClusterURL(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("redis://" + addrs[0])
	for i, a := range addrs[1:] {
		if i == 0 {
			b.WriteString("?addr=" + a)
		} else {
			b.WriteString("&addr=" + a)
		}
	}
	return b.String()
}

// errNoReplicas says that replicas need the PostgreSQL replica support.
var errNoReplicas = errors.New("cluster: PostgreSQL replicas (DATABASE_REPLICA_URLS) are not in this build yet: run without -replica")

// startReplica starts a streaming replica of primary under dir and returns
// its URLs (for DATABASE_REPLICA_URLS) and how to stop it.
func startReplica(ctx context.Context, primary *local.Postgres, dir string) ([]string, func(), error) {
	_, _, _ = ctx, primary, dir
	return nil, nil, errNoReplicas
}
