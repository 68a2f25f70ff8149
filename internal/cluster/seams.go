package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/brookhq/brook/internal/local"
)

// Where this package meets the Redis Cluster client (the URL form REDIS_URL
// takes for a cluster) and PostgreSQL replicas (how a streaming replica is
// made).

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

// startReplica starts a streaming replica of primary under dir, copied
// afresh each time (a replica holds nothing the primary does not), and
// returns its URLs (for DATABASE_REPLICA_URLS) and how to stop it.
func startReplica(ctx context.Context, primary *local.Postgres, dir string) ([]string, func(), error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, nil, fmt.Errorf("cluster: remove the old replica: %w", err)
	}
	r, err := local.StartReplica(ctx, primary, dir, false)
	if err != nil {
		return nil, nil, err
	}
	return []string{r.URL("brook")}, func() { _ = r.Stop() }, nil
}
