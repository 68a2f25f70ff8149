package ephemeral_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
)

// TestCluster runs the state's scenarios on a three-master Redis Cluster
// with a replica each: every script and transaction must keep to one hash
// slot there, and the counts stay exact for a channel whose members'
// counters lie on all three masters. One cluster for all subtests: it
// takes seconds to start.
func TestCluster(t *testing.T) {
	local.ClusterTests(t)
	ctx := context.Background()
	c, err := local.StartRedisCluster(ctx, t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	prefix := fmt.Sprintf("test:%d:", time.Now().UnixNano())
	state := func(t *testing.T) *ephemeral.State {
		s := ephemeral.NewOnClient(redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()}), ephemeral.Options{Prefix: prefix})
		t.Cleanup(s.Close)
		if !s.Cluster() {
			t.Fatal("a cluster client's state is not in cluster mode")
		}
		return s
	}
	users := members(30)

	t.Run("KeySlot", func(t *testing.T) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
		defer cc.Close()
		keys := []string{"foo", "{u:1}x", prefix + "chat:u:{u:" + users[0] + "}", prefix + "chat:seq:{c:ch}", prefix + "rate:{ip:::1}", "a{b}c{d}", "{}{x}"}
		for i := range 200 {
			keys = append(keys, fmt.Sprintf("k%d-%d", i, i*7919))
		}
		for _, k := range keys {
			want, err := cc.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := ephemeral.Slot(k); int64(got) != want {
				t.Fatalf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
			}
		}
	})

	t.Run("UnreadAcrossMasters", func(t *testing.T) {
		// The members' counters lie on every master.
		masters := map[string]bool{}
		for _, u := range users {
			m, err := c.Master(ctx, prefix+"chat:u:{u:"+u+"}")
			if err != nil {
				t.Fatal(err)
			}
			masters[m.Addr()] = true
		}
		if len(masters) != 3 {
			t.Fatalf("the members' counters lie on %d masters, want 3", len(masters))
		}
		unreadScenario(t, state(t), state(t), users)
	})

	t.Run("RateLimits", func(t *testing.T) {
		rateScenario(t, state(t), state(t))
	})

	t.Run("PresenceAndCalls", func(t *testing.T) {
		presenceCallsScenario(t, state(t), members(8))
	})

	t.Run("ScriptsLoadedAfterFlush", func(t *testing.T) {
		// A master that lost its scripts (restarted, or a replica just
		// promoted) gets them again; no call runs twice.
		s := state(t)
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
		defer cc.Close()
		if err := cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return n.ScriptFlush(ctx).Err()
		}); err != nil {
			t.Fatal(err)
		}
		unreadScenario(t, s, state(t), members(12))
	})
}
