package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// WatchedTopics returns the topics starting with topicPrefix that some node
// subscribes to now (every node holds one Redis subscription per topic it
// serves), in no order. It is one PUBSUB CHANNELS round trip, whose cost
// in Redis grows with the channels open on the server, not with a list of
// candidates; in a cluster it asks every shard (PUBSUB SHARDCHANNELS, per
// node), in parallel. A topic watched a moment later is not in it: callers
// use it to serve watched topics first, never to leave the others out.
func (b *Bus) WatchedTopics(ctx context.Context, topicPrefix string) ([]string, error) {
	pattern := globEscape(b.prefix)
	if b.cluster != nil {
		pattern += `\{` + globEscape(topicPrefix) + "*"
		return b.watchedSharded(ctx, pattern)
	}
	pattern += globEscape(topicPrefix) + "*"
	channels, err := b.rdb.PubSubChannels(ctx, pattern).Result()
	if err != nil {
		return nil, fmt.Errorf("bus: watched topics: %w", err)
	}
	return b.topicsOf(channels), nil
}

// watchedSharded is WatchedTopics in a cluster: sharded channels are
// listed by the node that holds their slot, masters and replicas alike.
func (b *Bus) watchedSharded(ctx context.Context, pattern string) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]struct{}{}
	err := b.cluster.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		channels, err := c.PubSubShardChannels(ctx, pattern).Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range channels {
			seen[ch] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bus: watched topics: %w", err)
	}
	channels := make([]string, 0, len(seen))
	for ch := range seen {
		channels = append(channels, ch)
	}
	return b.topicsOf(channels), nil
}

// topicsOf maps the bus's channels to their topics, dropping any other.
func (b *Bus) topicsOf(channels []string) []string {
	topics := channels[:0]
	for _, ch := range channels {
		if t, ok := b.topicOf(ch); ok {
			topics = append(topics, t)
		}
	}
	return topics
}

// globEscape quotes the characters Redis's glob patterns treat specially.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\{}^-`) {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
