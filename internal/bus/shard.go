package bus

// Connections: the bus reads events from one subscription connection per
// Redis server it subscribes on. With a single Redis that is one
// connection for every topic (SUBSCRIBE, PUBLISH). With a Redis Cluster
// events use sharded pub/sub (SSUBSCRIBE, SPUBLISH): a topic's events go
// only to the master that owns its channel's slot, and the bus holds one
// connection per master it has topics on, each read by its own receive
// loop. When a master fails over, its connection breaks; its receive loop
// reloads the slot map and subscribes its topics again on their owners
// now (the promoted replica), then gives their subscribers a Gap.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// conn is one subscription connection and the topics subscribed on it.
// Its fields are guarded by the bus's mu; its receive loop owns nothing
// else.
type conn struct {
	ps *redis.PubSub
	// addr is the cluster master it subscribes on ("" with a single Redis).
	addr   string
	topics map[string]struct{}
	// unsubscribing counts the SUNSUBSCRIBEs of each topic the bus sent and
	// whose confirmation has not arrived: one that arrives without is the
	// server's (lostShard).
	unsubscribing map[string]int
	// retired: the conn was closed for good (its last topic left, or the
	// bus closed); its receive loop ends.
	retired bool
}

// channel is the Redis channel of topic. In a cluster the topic is the
// channel's hash tag, so keys that go with it (held messages, once-keys)
// can share its slot, as the scripts that publish require.
func (b *Bus) channel(topic string) string {
	if b.cluster != nil {
		return b.prefix + "{" + topic + "}"
	}
	return b.prefix + topic
}

// topicOf is the inverse of channel; ok is false for a channel that is
// not the bus's.
func (b *Bus) topicOf(channel string) (string, bool) {
	t, ok := strings.CutPrefix(channel, b.prefix)
	if !ok || b.cluster == nil {
		return t, ok
	}
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return "", false
	}
	return t[1 : len(t)-1], true
}

// key is a key that goes with topic's events, in its slot in a cluster.
func (b *Bus) key(kind, topic, rest string) string {
	if b.cluster != nil {
		return b.prefix + kind + ":{" + topic + "}" + rest
	}
	return b.prefix + kind + ":" + topic + rest
}

// subscribeOn issues topic's SUBSCRIBE (or SSUBSCRIBE) on c.
func (b *Bus) subscribeOn(ctx context.Context, c *conn, topic string) error {
	c.topics[topic] = struct{}{}
	if b.cluster != nil {
		return c.ps.SSubscribe(ctx, b.channel(topic))
	}
	return c.ps.Subscribe(ctx, b.channel(topic))
}

// unsubscribeOn issues topic's UNSUBSCRIBE (or SUNSUBSCRIBE) on c.
func (b *Bus) unsubscribeOn(ctx context.Context, c *conn, topic string) error {
	delete(c.topics, topic)
	if b.cluster != nil {
		c.unsubscribing[topic]++
		return c.ps.SUnsubscribe(ctx, b.channel(topic))
	}
	return c.ps.Unsubscribe(ctx, b.channel(topic))
}

// connForLocked returns the conn to subscribe topic on: the only one with
// a single Redis; in a cluster the one on the master that owns the
// topic's slot, started if there is none. The caller holds b.mu.
func (b *Bus) connForLocked(ctx context.Context, topic string) (*conn, error) {
	if b.cluster == nil {
		return b.single, nil
	}
	node, err := b.cluster.MasterForKey(ctx, b.channel(topic))
	if err != nil {
		return nil, fmt.Errorf("bus: owner of %s: %w", topic, err)
	}
	addr := node.Options().Addr
	for c := range b.conns {
		if c.addr == addr && !c.retired {
			return c, nil
		}
	}
	c := &conn{ps: node.SSubscribe(b.ctx), addr: addr, topics: map[string]struct{}{}, unsubscribing: map[string]int{}}
	b.startLocked(c)
	return c, nil
}

// startLocked starts c's receive loop. The caller holds b.mu.
func (b *Bus) startLocked(c *conn) {
	b.conns[c] = struct{}{}
	b.running.Add(1)
	go b.receive(b.ctx, c)
}

// retireLocked closes c for good. The caller holds b.mu.
func (b *Bus) retireLocked(c *conn) {
	c.retired = true
	delete(b.conns, c)
	_ = c.ps.Close()
}

// reloadTimeout bounds the slot-map reload before a conn reconnects.
const reloadTimeout = time.Second

// reloadSlots loads the cluster's slot map afresh, so that a reconnect
// finds the master that owns each topic's slot now; go-redis would keep
// the dead master's address until a MOVED or its reload interval.
// (ForEachMaster reloads the map before it runs; the function is a no-op.)
func (b *Bus) reloadSlots(ctx context.Context) {
	if b.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := b.cluster.ForEachMaster(ctx, func(context.Context, *redis.Client) error { return nil }); err != nil {
		b.log.Debug("bus: reload cluster slot map", "err", err)
	}
}

// resubscribeLocked replaces c's connection with a new one on the server
// that serves its topics now. In a cluster, topics whose slot another
// master owns now (slots moved) are handed to that master's conn, whose
// subscribers get a Gap once it confirms. The caller holds b.mu.
func (b *Bus) resubscribeLocked(ctx context.Context, c *conn) {
	_ = c.ps.Close()
	clear(c.unsubscribing)
	if b.cluster == nil {
		channels := make([]string, 0, len(c.topics))
		for topic := range c.topics {
			channels = append(channels, b.channel(topic))
		}
		c.ps = b.rdb.Subscribe(ctx, channels...)
		return
	}
	topics := c.topics
	c.topics = map[string]struct{}{}
	moved := map[*conn][]string{}
	var own *redis.Client
	for topic := range topics {
		node, err := b.cluster.MasterForKey(ctx, b.channel(topic))
		if err != nil {
			// No slot map: stay on the old master; the next attempt tries
			// again.
			c.topics[topic] = struct{}{}
			continue
		}
		addr := node.Options().Addr
		if own == nil {
			own, c.addr = node, addr
		}
		if addr == c.addr {
			c.topics[topic] = struct{}{}
			continue
		}
		target, err := b.connForLocked(ctx, topic)
		if err != nil {
			c.topics[topic] = struct{}{}
			continue
		}
		b.route[topic] = target
		moved[target] = append(moved[target], topic)
	}
	if own == nil {
		c.ps = b.cluster.SSubscribe(ctx)
	} else {
		c.ps = own.SSubscribe(ctx)
	}
	// One SSUBSCRIBE a topic: one command may name channels of one slot
	// only.
	for topic := range c.topics {
		if err := c.ps.SSubscribe(ctx, b.channel(topic)); err != nil {
			break
		}
	}
	for target, ts := range moved {
		for _, topic := range ts {
			if err := b.subscribeOn(ctx, target, topic); err != nil {
				b.log.Debug("bus: subscribe moved topic", "topic", topic, "err", err)
			}
		}
		token := "brook-bus-moved-" + fmt.Sprint(b.pingSeq.Add(1))
		b.pings[token] = func() { b.signalGapLocked(ts) }
		_ = target.ps.Ping(ctx, token)
	}
}

// Topics returns the topics this node's bus has local subscribers for.
func (b *Bus) Topics() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.topics))
	for t := range b.topics {
		out = append(out, t)
	}
	return out
}

// RedisSubscribers returns how many Redis subscriptions topic's channel
// has, from every node: asked of the master that owns it on a cluster
// (SHARDNUMSUB), of the server otherwise (NUMSUB). Tests wait on it for a
// subscription to be live before they publish.
func (b *Bus) RedisSubscribers(ctx context.Context, topic string) (int64, error) {
	channel := b.channel(topic)
	if b.cluster != nil {
		m, err := b.cluster.MasterForKey(ctx, channel)
		if err != nil {
			return 0, fmt.Errorf("bus: master of %s: %w", channel, err)
		}
		n, err := m.PubSubShardNumSub(ctx, channel).Result()
		return n[channel], err
	}
	n, err := b.rdb.PubSubNumSub(ctx, channel).Result()
	return n[channel], err
}
