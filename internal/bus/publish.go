package bus

// Publishing: Publish, PublishRaw, PublishOnce, PublishOrHold and TakeHeld,
// PublishMany and PublishBatch.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/tracing"
)

// Publish sends v, encoded as JSON, to every subscriber of topic on every node.
func (b *Bus) Publish(ctx context.Context, topic string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bus: encode event for %s: %w", topic, err)
	}
	return b.PublishRaw(ctx, topic, data)
}

// PublishRaw sends data as is to every subscriber of topic on every node.
func (b *Bus) PublishRaw(ctx context.Context, topic string, data []byte) error {
	if err := b.publish(ctx, b.rdb, topic, b.stamp(ctx, data)).Err(); err != nil {
		return fmt.Errorf("bus: publish to %s: %w", topic, err)
	}
	return nil
}

// publishOnce publishes ARGV[2] on channel ARGV[1] unless the key KEYS[1]
// exists, and sets it (for ARGV[3] ms): one script, so of the calls that
// share a key exactly one publishes. ARGV[4] is PUBLISH, or SPUBLISH in a
// cluster (where the key shares the channel's slot: Bus.key). The key is set after the PUBLISH, so
// a PUBLISH that fails (scripts do not roll back) leaves it unset.
var publishOnce = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call(ARGV[4], ARGV[1], ARGV[2])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
return 1`)

// PublishOnce sends data to every subscriber of topic on every node, as
// PublishRaw does, unless a PublishOnce with the same key did within ttl,
// and reports whether this call published. It lets two paths that must
// each make sure an event goes out (the request that made it, and a
// durable job in case that request's node died first) publish it once.
func (b *Bus) PublishOnce(ctx context.Context, topic, key string, ttl time.Duration, data []byte) (bool, error) {
	n, err := publishOnce.Run(ctx, b.rdb, []string{b.onceKey(topic, key)}, b.channel(topic), b.stamp(ctx, data), ttl.Milliseconds(), b.publishCommand()).Int()
	if err != nil {
		return false, fmt.Errorf("bus: publish to %s: %w", topic, err)
	}
	return n == 1, nil
}

// publishOrHold publishes ARGV[2] on channel ARGV[1]; when no node
// listens, it keeps it in the list KEYS[1] (the newest ARGV[4] of them, for
// ARGV[3] ms) for TakeHeld. One script, so a subscription confirmed after
// it runs finds the message held, and one confirmed before receives it.
// ARGV[5] is PUBLISH, or SPUBLISH in a cluster (SPUBLISH counts the
// subscribers of the shard, which are all a sharded channel has).
var publishOrHold = redis.NewScript(`
local n = redis.call(ARGV[5], ARGV[1], ARGV[2])
if n == 0 then
  redis.call('RPUSH', KEYS[1], ARGV[2])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[4]), -1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return n`)

// PublishOrHold sends data to every subscriber of topic on every node, as
// PublishRaw does; when topic has no subscriber anywhere it keeps data
// instead, with at most the last max others, for ttl, until a subscriber
// takes it with TakeHeld. It is for messages addressed to one receiver
// that may not have subscribed yet (a WebRTC offer to a participant whose
// stream is starting), and costs one round trip, as PublishRaw does.
func (b *Bus) PublishOrHold(ctx context.Context, topic string, data []byte, ttl time.Duration, max int) error {
	err := publishOrHold.Run(ctx, b.rdb, []string{b.heldKey(topic)}, b.channel(topic), b.stamp(ctx, data), ttl.Milliseconds(), max, b.publishCommand()).Err()
	if err != nil {
		return fmt.Errorf("bus: publish to %s: %w", topic, err)
	}
	return nil
}

// TakeHeld returns, oldest first, and forgets the messages PublishOrHold
// kept for topic. Call it once a subscription to topic is live: every
// message published after that reaches the subscription instead.
func (b *Bus) TakeHeld(ctx context.Context, topic string) ([][]byte, error) {
	key := b.heldKey(topic)
	var held *redis.StringSliceCmd
	_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		held = p.LRange(ctx, key, 0, -1)
		p.Del(ctx, key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bus: take held messages of %s: %w", topic, err)
	}
	out := make([][]byte, len(held.Val()))
	for i, m := range held.Val() {
		_, _, out[i] = tracing.Unstamp([]byte(m))
	}
	return out, nil
}

func (b *Bus) heldKey(topic string) string { return b.key("held", topic, "") }

// onceKey is PublishOnce's key; in a cluster it names the topic too, to
// share the channel's slot.
func (b *Bus) onceKey(topic, key string) string {
	if b.cluster != nil {
		return b.key("once", topic, ":"+key)
	}
	return b.prefix + "once:" + key
}

// publishCommand is the command that publishes in the scripts.
func (b *Bus) publishCommand() string {
	if b.cluster != nil {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// publish publishes data on topic's channel through c (the client, or a
// pipeline): SPUBLISH in a cluster.
func (b *Bus) publish(ctx context.Context, c redis.Cmdable, topic string, data []byte) *redis.IntCmd {
	if b.cluster != nil {
		return c.SPublish(ctx, b.channel(topic), data)
	}
	return c.Publish(ctx, b.channel(topic), data)
}

// publishChunk bounds how many publishes go to Redis in one pipeline.
const publishChunk = 1000

// PublishMany sends the same data to every subscriber of each of topics, on
// every node. It asks Redis which topics have subscribers (every node holds
// one Redis subscription per topic it serves) and publishes only to those,
// pipelined: a fan-out to 100,000 feeds of which a few are watched costs a
// few round trips, not 100,000 messages.
func (b *Bus) PublishMany(ctx context.Context, topics []string, data []byte) error {
	data = b.stamp(ctx, data)
	if b.cluster != nil {
		return b.publishManySharded(ctx, topics, data)
	}
	channels := make([]string, 0, publishChunk)
	for len(topics) > 0 {
		n := min(len(topics), publishChunk)
		channels = channels[:0]
		for _, t := range topics[:n] {
			channels = append(channels, b.channel(t))
		}
		counts, err := b.rdb.PubSubNumSub(ctx, channels...).Result()
		if err != nil {
			return fmt.Errorf("bus: count subscribers of %d topics: %w", n, err)
		}
		topics = topics[n:]
		watched := 0
		for _, ch := range channels {
			if counts[ch] > 0 {
				watched++
			}
		}
		if watched == 0 {
			continue
		}
		_, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, ch := range channels {
				if counts[ch] > 0 {
					p.Publish(ctx, ch, data)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bus: publish to %d topics: %w", watched, err)
		}
	}
	return nil
}

// publishManySharded is PublishMany in a cluster. PUBSUB SHARDNUMSUB of
// many channels is refused across slots, and asking per channel costs as
// much as publishing: each topic gets its SPUBLISH, pipelined (go-redis
// splits a pipeline by master), one round trip per master and chunk.
func (b *Bus) publishManySharded(ctx context.Context, topics []string, data []byte) error {
	for len(topics) > 0 {
		n := min(len(topics), publishChunk)
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, t := range topics[:n] {
				b.publish(ctx, p, t, data)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bus: publish to %d topics: %w", n, err)
		}
		topics = topics[n:]
	}
	return nil
}

// Message is one event of a PublishBatch.
type Message struct {
	Topic string
	Data  []byte
}

// PublishBatch sends several events, each to its topic, in one round trip.
func (b *Bus) PublishBatch(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			b.publish(ctx, p, m.Topic, b.stamp(ctx, m.Data))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bus: publish batch: %w", err)
	}
	return nil
}
