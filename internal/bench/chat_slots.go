package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
	"github.com/brookhq/brook/store"
)

// The unread bookkeeping of one message on one Redis and on a Redis
// Cluster of three masters (each with a replica), where the members'
// counters are split by hash slot: one script call per slot, pipelined,
// so each master gets one round trip carrying its slots' calls. Measured
// at the ephemeral level (the state on a cluster client), since the node
// opens one Redis URL.

// roundTrips counts what a client sends its servers: each pipeline and
// each lone command is one round trip to one server.
type roundTrips struct{ n, cmds atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		r.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		r.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// chatBookkeepingSlots adds the bookkeeping rows: per Redis shape and
// channel size, script calls, round trips and milliseconds per message.
func chatBookkeepingSlots(ctx context.Context, h *harness, t *table) error {
	ropts, err := redis.ParseURL(h.env.RedisURL)
	if err != nil {
		return err
	}
	single := redis.NewClient(ropts)
	soloTrips := &roundTrips{}
	single.AddHook(soloTrips)
	solo := ephemeral.NewOnClient(single, ephemeral.Options{Prefix: h.env.RedisPrefix + "slots:"})
	defer solo.Close()

	dir, err := os.MkdirTemp(h.dir, "rediscluster-")
	if err != nil {
		return err
	}
	c, err := local.StartRedisCluster(ctx, dir, 3, 1)
	if err != nil {
		return fmt.Errorf("bench: start a Redis Cluster: %w", err)
	}
	defer c.Stop()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	clusterTrips := &roundTrips{}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(clusterTrips) })
	cluster := ephemeral.NewOnClient(cc, ephemeral.Options{Prefix: "slots:"})
	defer cluster.Close()

	for _, size := range []int{100, 1000} {
		for _, shape := range []struct {
			name  string
			s     *ephemeral.State
			trips *roundTrips
		}{{"one Redis", solo, soloTrips}, {"Redis Cluster, 3 masters", cluster, clusterTrips}} {
			row, err := bookkeepingRow(ctx, shape.s, shape.trips, size)
			if err != nil {
				return fmt.Errorf("bench: bookkeeping on %s, %d members: %w", shape.name, size, err)
			}
			t.add(fmt.Sprintf("bookkeeping, %d-member channel, %s: script calls / commands sent / round trips (servers) / ms per message, p50 / mean", size, shape.name), row)
		}
	}
	t.note("Bookkeeping rows by Redis shape: one message's BumpUnread for all members with complete counters (totals computed), " +
		"one message at a time, measured at the ephemeral level (the state on a go-redis client); commands sent and round trips are averages over 200 messages " +
		"(in a cluster: the script calls, the GET of the epoch, and the first message's reloading of scripts new to the cluster); a round trip is a pipeline or command one server received, a cluster's masters getting theirs at once. In a cluster the members' counters are split by hash slot, one script call per slot.")
	return nil
}

// bookkeepingRow rebuilds size members' counters on s, then bumps 200
// messages for all of them, checks the counts, and returns the row.
func bookkeepingRow(ctx context.Context, s *ephemeral.State, trips *roundTrips, size int) (string, error) {
	run := fmt.Sprint(time.Now().UnixNano())
	ch := "messaging:slots-" + run
	members := make([]string, size)
	for i := range members {
		members[i] = fmt.Sprintf("slots-%d-%s", i, run)
		_, _, gen, err := s.ReadUnread(ctx, members[i])
		if err != nil {
			return "", err
		}
		if err := s.RebuildUnread(ctx, members[i], gen, []store.UnreadRow{{Channel: ch, Members: size}}, 5000); err != nil {
			return "", err
		}
	}
	const msgs = 200
	lat := &latencies{}
	var elapsed time.Duration
	n0, c0 := trips.n.Load(), trips.cmds.Load()
	for i := int64(1); i <= msgs; i++ {
		start := time.Now()
		totals, err := s.BumpUnread(ctx, ch, i, members, &store.ReadPosition{ChannelID: ch, UserID: members[0], Seq: i})
		if err != nil {
			return "", err
		}
		d := time.Since(start)
		lat.add(d)
		elapsed += d
		if !totals[1].Known || totals[1].Total != int(i) {
			return "", fmt.Errorf("message %d: totals %+v", i, totals[1])
		}
	}
	n, cmds := trips.n.Load()-n0, trips.cmds.Load()-c0
	counts, complete, _, err := s.ReadUnread(ctx, members[size-1])
	if err != nil || !complete || len(counts) != 1 || counts[0].UnreadCount != msgs {
		return "", fmt.Errorf("counts after %d messages: %v, complete %v, %v", msgs, counts, complete, err)
	}
	p50, _, _, _ := lat.summary()
	// The script calls a message needs: one per slot of the members'
	// counters in a cluster (their hash tag is u:<id>), one on one Redis.
	calls := 1
	if s.Cluster() {
		slots := map[int]bool{}
		for _, m := range members {
			slots[ephemeral.Slot("u:"+m)] = true
		}
		calls = len(slots)
	}
	return fmt.Sprintf("%d / %.1f / %.1f / %s, %s", calls, float64(cmds)/msgs, float64(n)/msgs, ms(p50), ms(elapsed/msgs)), nil
}
