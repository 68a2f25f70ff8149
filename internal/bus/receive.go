package bus

// Receiving: the loop that reads a subscription connection, reconnects
// when it fails, signals the gap, and dispatches events to the local
// subscribers. One loop runs per connection (shard.go).

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/tracing"
)

// Health-check timing of the subscription connection.
const (
	receiveTimeout = 5 * time.Second
	deadAfter      = 3 * receiveTimeout
)

// receive reads from c and dispatches events until the bus closes or c is
// retired. When the connection fails it is replaced, c's topics are
// subscribed again, and their subscribers get a Gap event.
func (b *Bus) receive(ctx context.Context, c *conn) {
	defer b.running.Done()
	lastHeard := time.Now()
	backoff := 50 * time.Millisecond
	// broken: the connection failed and events may have been missed since;
	// resyncing: the resync PING is on its way, and its answer ends that.
	broken, resyncing := false, false
	for ctx.Err() == nil {
		b.mu.Lock()
		ps, retired := c.ps, c.retired
		b.mu.Unlock()
		if retired {
			return
		}
		msg, err := ps.ReceiveTimeout(ctx, receiveTimeout)
		if err == nil && b.cluster != nil {
			err = b.lostShard(c, msg)
		}
		if err != nil {
			if ctx.Err() != nil || b.isRetired(c) {
				return
			}
			if isTimeout(err) && !broken && time.Since(lastHeard) < deadAfter {
				// Quiet: ask for a sign of life. A ping that fails means the
				// connection broke, and go-redis dials a new one unseen:
				// events may have been lost, so resync as for any failure.
				if err = ps.Ping(ctx, ""); err == nil {
					continue
				}
			}
			if !broken {
				if isTimeout(err) {
					b.log.Warn("bus: redis subscription connection is silent; reconnecting", "server", c.addr)
				} else {
					b.log.Warn("bus: redis subscription connection failed; reconnecting", "server", c.addr, "err", err)
				}
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, b.maxBackoff())
			resyncing = b.reconnect(ctx, c)
			continue
		}
		lastHeard = time.Now()
		backoff = 50 * time.Millisecond
		if broken && !resyncing {
			// The resync PING failed (Redis was still away) but go-redis has
			// since dialed and subscribed again on its own: events flow, so
			// ask again for the answer that proves it and signals the gap.
			resyncing = ps.Ping(ctx, resyncPing) == nil
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.mu.Lock()
			if answered, ok := b.pings[m.Payload]; ok {
				delete(b.pings, m.Payload)
				answered()
			}
			if m.Payload == resyncPing && broken {
				broken, resyncing = false, false
				b.signalGapLocked(keys(c.topics))
			}
			b.mu.Unlock()
		}
	}
}

// maxBackoff caps the wait between reconnects: 2 s for a single Redis,
// which may be down a while; 250 ms in a cluster, where a dead master's
// replica takes over within a second or two and the wait would add to it
// (doubling to 2 s made a failover's gap come 3.2 s after the kill,
// against 2.4 s for the promotion).
func (b *Bus) maxBackoff() time.Duration {
	if b.cluster != nil {
		return 250 * time.Millisecond
	}
	return 2 * time.Second
}

// lostShard turns a SUNSUBSCRIBE the bus did not ask for into an error:
// the master no longer owns a topic's slot (a failover, or slots moved),
// so the conn reconnects and finds the owner now.
func (b *Bus) lostShard(c *conn, msg any) error {
	s, ok := msg.(*redis.Subscription)
	if !ok || s.Kind != "sunsubscribe" {
		return nil
	}
	topic, ok := b.topicOf(s.Channel)
	if !ok {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := c.unsubscribing[topic]; n > 0 {
		if n == 1 {
			delete(c.unsubscribing, topic)
		} else {
			c.unsubscribing[topic] = n - 1
		}
		return nil
	}
	if _, wanted := c.topics[topic]; !wanted {
		return nil
	}
	return errors.New("the server dropped the subscription to " + topic + ": its slot moved")
}

func (b *Bus) isRetired(c *conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.retired
}

// resyncPing is the payload of the PING sent after reconnecting; its answer
// proves that the re-issued SUBSCRIBEs have taken effect.
const resyncPing = "brook-bus-resync"

// reconnect replaces c's connection with a new one subscribed to c's
// topics, then sends the resync PING. It reports whether the PING was
// sent.
func (b *Bus) reconnect(ctx context.Context, c *conn) bool {
	// Outside b.mu: a network round trip.
	b.reloadSlots(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || c.retired {
		return false
	}
	b.resubscribeLocked(ctx, c)
	b.gaps.Inc()
	// Pending subscribers waited on the old connection; they time out and
	// report an error rather than wait for an answer that will not come.
	if err := c.ps.Ping(ctx, resyncPing); err != nil {
		b.log.Debug("bus: resync ping failed; will retry", "err", err)
		return false
	}
	return true
}

// signalGap tells every subscriber that events may have been missed.
func (b *Bus) signalGap() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.signalGapLocked(keys(b.topics))
}

// signalGapLocked tells the subscribers of topics that events may have
// been missed. The caller holds b.mu.
func (b *Bus) signalGapLocked(topics []string) {
	for _, topic := range topics {
		gap := &Event{Topic: topic, Gap: true}
		for s := range b.topics[topic] {
			if s.offer(gap) {
				s.woken(false)
			} else {
				b.dropped.Inc()
				b.removeLocked(s, ErrSlowSubscriber)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// dispatch hands an event to every local subscriber of its topic without
// ever blocking: a subscriber whose buffer is full is dropped.
func (b *Bus) dispatch(m *redis.Message) {
	topic, ok := b.topicOf(m.Channel)
	if !ok {
		return
	}
	parent, state, data := tracing.Unstamp([]byte(m.Payload))
	ev := &Event{Topic: topic, Data: data}
	b.delivered.Inc()
	b.mu.Lock()
	defer b.mu.Unlock()
	if parent != "" && b.tracer != nil {
		defer b.traceDelivery(parent, state, ev.Topic, len(b.topics[ev.Topic]))()
	}
	for s := range b.topics[ev.Topic] {
		if s.offer(ev) {
			s.woken(false)
		} else {
			b.dropped.Inc()
			b.removeLocked(s, ErrSlowSubscriber)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
