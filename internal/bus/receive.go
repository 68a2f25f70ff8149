package bus

// Receiving: the loop that reads the Redis subscription connection,
// reconnects when it fails, signals the gap, and dispatches events to the
// local subscribers.

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

// receive reads from the Redis subscription connection and dispatches
// events until the bus closes. When the connection fails it is replaced, the
// wanted topics are subscribed again, and every subscriber gets a Gap event.
func (b *Bus) receive(ctx context.Context) {
	defer close(b.done)
	lastHeard := time.Now()
	backoff := 50 * time.Millisecond
	// broken: the connection failed and events may have been missed since;
	// resyncing: the resync PING is on its way, and its answer ends that.
	broken, resyncing := false, false
	for ctx.Err() == nil {
		b.mu.Lock()
		ps := b.ps
		b.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, receiveTimeout)
		if err != nil {
			if ctx.Err() != nil {
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
					b.log.Warn("bus: redis subscription connection is silent; reconnecting")
				} else {
					b.log.Warn("bus: redis subscription connection failed; reconnecting", "err", err)
				}
			}
			broken = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			resyncing = b.reconnect(ctx)
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
			if ready, ok := b.pings[m.Payload]; ok {
				delete(b.pings, m.Payload)
				close(ready)
			}
			b.mu.Unlock()
			if m.Payload == resyncPing && broken {
				broken, resyncing = false, false
				b.signalGap()
			}
		}
	}
}

// resyncPing is the payload of the PING sent after reconnecting; its answer
// proves that the re-issued SUBSCRIBEs have taken effect.
const resyncPing = "brook-bus-resync"

// reconnect replaces the subscription connection with a new one subscribed
// to every wanted topic, then sends the resync PING. It reports whether the
// PING was sent.
func (b *Bus) reconnect(ctx context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	_ = b.ps.Close()
	channels := make([]string, 0, len(b.topics))
	for topic := range b.topics {
		channels = append(channels, b.prefix+topic)
	}
	b.ps = b.rdb.Subscribe(ctx, channels...)
	b.gaps.Inc()
	// Pending subscribers waited on the old connection; they time out and
	// report an error rather than wait for an answer that will not come.
	if err := b.ps.Ping(ctx, resyncPing); err != nil {
		b.log.Debug("bus: resync ping failed; will retry", "err", err)
		return false
	}
	return true
}

// signalGap tells every subscriber that events may have been missed.
func (b *Bus) signalGap() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, subs := range b.topics {
		gap := &Event{Topic: topic, Gap: true}
		for s := range subs {
			select {
			case s.c <- gap:
				s.woken(false)
			default:
				b.dropped.Inc()
				b.removeLocked(s, ErrSlowSubscriber)
			}
		}
	}
}

// dispatch hands an event to every local subscriber of its topic without
// ever blocking: a subscriber whose buffer is full is dropped.
func (b *Bus) dispatch(m *redis.Message) {
	if len(m.Channel) < len(b.prefix) {
		return
	}
	parent, state, data := tracing.Unstamp([]byte(m.Payload))
	ev := &Event{Topic: m.Channel[len(b.prefix):], Data: data}
	b.delivered.Inc()
	b.mu.Lock()
	defer b.mu.Unlock()
	if parent != "" && b.tracer != nil {
		defer b.traceDelivery(parent, state, ev.Topic, len(b.topics[ev.Topic]))()
	}
	for s := range b.topics[ev.Topic] {
		select {
		case s.c <- ev:
			s.woken(false)
		default:
			b.dropped.Inc()
			b.removeLocked(s, ErrSlowSubscriber)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
