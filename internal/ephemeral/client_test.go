package ephemeral_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/ephemeral"
)

// A REDIS_URL with addr parameters names a cluster, whose client gets the
// settings a single server's does; without them, a server that is no
// cluster node gets the plain client.
func TestNewClientKinds(t *testing.T) {
	ctx := context.Background()
	c, err := ephemeral.NewClient(ctx, "redis://:pw@127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("got a %T, want a cluster client", c)
	}
	o := cc.Options()
	if len(o.Addrs) != 3 || o.Password != "pw" || o.PoolSize != 50 || o.MaxRetries != 1 || o.DialerRetries != 1 ||
		o.ReadTimeout != 2*time.Second || o.ReadBufferSize != 8<<10 || !o.ContextTimeoutEnabled {
		t.Fatalf("cluster options: %+v", o)
	}
	if env.RedisCluster != nil {
		return
	}
	s, err := ephemeral.NewClient(ctx, env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*redis.Client); !ok {
		t.Fatalf("a single server: got a %T", s)
	}
}
