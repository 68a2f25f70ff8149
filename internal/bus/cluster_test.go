package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
)

// When the master that owns a topic's slot is killed, its replica takes
// over; the bus of each node subscribes the topic again on the promoted
// replica, its subscribers get one Gap (so ordered streams re-read
// PostgreSQL), and events published after flow again.
func TestClusterFailoverResubscribesOnThePromotedReplica(t *testing.T) {
	local.ClusterTests(t)
	ctx := context.Background()
	c, err := local.StartRedisCluster(ctx, t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	node := func(url string) *bus.Bus {
		st, err := ephemeral.Open(ctx, ephemeral.Options{RedisURL: url})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Redis().(*redis.ClusterClient); !ok {
			t.Fatalf("REDIS_URL %s: got a %T, want a cluster client", url, st.Redis())
		}
		b := bus.New(st.Redis(), bus.Options{Prefix: "bus:", Buffer: 16, Health: st.Guard()})
		t.Cleanup(func() {
			_ = b.Close()
			st.Close()
		})
		return b
	}
	// One node names every seed; the other one seed, which says it is a
	// cluster node.
	a, b := node(c.URL()), node("redis://"+c.Nodes[1].Addr())
	// A topic on each master: the killed one's and the others'.
	topics := []string{"hot", "cold", "warm", "busy", "idle"}
	subs := map[string]*bus.Subscription{}
	for _, topic := range topics {
		s, err := a.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		subs[topic] = s
	}
	if err := b.Publish(ctx, "hot", "before"); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, subs["hot"]); string(ev.Data) != `"before"` {
		t.Fatalf("before the kill: %+v", ev)
	}
	m, err := c.Master(ctx, "{hot}")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ev := receive(t, subs["hot"])
	if !ev.Gap {
		t.Fatalf("first event on the killed master's topic: %+v, want a gap", ev)
	}
	gapAfter := time.Since(killed)
	// Publishes fail until the replica has the slot and b's client knows.
	failed := 0
	for b.Publish(ctx, "hot", "after") != nil {
		failed++
		if time.Since(killed) > 15*time.Second {
			t.Fatal("publishes still fail 15 s after the kill")
		}
		time.Sleep(20 * time.Millisecond)
	}
	published := time.Since(killed)
	for {
		ev = receive(t, subs["hot"])
		if ev.Gap {
			continue
		}
		if string(ev.Data) != `"after"` {
			t.Fatalf("after failover: %+v", ev)
		}
		break
	}
	t.Logf("killed master %s: gap to subscribers after %v, publishing again after %v (%d publishes failed), event delivered after %v",
		m.Addr(), gapAfter.Round(time.Millisecond), published.Round(time.Millisecond), failed, time.Since(killed).Round(time.Millisecond))
	// Every topic is live: those on other masters too.
	for _, topic := range topics[1:] {
		if err := b.Publish(ctx, topic, topic); err != nil {
			t.Fatal(err)
		}
		for {
			ev := receive(t, subs[topic])
			if !ev.Gap {
				break
			}
		}
	}
}
