package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/brookhq/brook/internal/bus"
	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/internal/local"
)

var env *local.Env

func TestMain(m *testing.M) {
	os.Exit(local.TestMain(m, func(e *local.Env) error { env = e; return nil }))
}

// newNode returns a bus with its own Redis client, as a separate Brook node has.
func newNode(t *testing.T) (*bus.Bus, redis.UniversalClient) {
	t.Helper()
	rdb, err := ephemeral.NewClient(context.Background(), env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(rdb, bus.Options{Prefix: env.RedisPrefix + t.Name() + ":", Buffer: 16})
	t.Cleanup(func() {
		_ = b.Close()
		_ = rdb.Close()
	})
	return b, rdb
}

func receive(t *testing.T, s *bus.Subscription) *bus.Event {
	t.Helper()
	// A parked subscription's channel is nil until an event comes.
	for end := time.Now().Add(5 * time.Second); s.Events() == nil && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	select {
	case ev, ok := <-s.Events():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return nil
}

func TestDeliversAcrossNodes(t *testing.T) {
	a, _ := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	subA, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	subB, err := b.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "room", map[string]string{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*bus.Subscription{subA, subB} {
		ev := receive(t, s)
		if ev.Topic != "room" || string(ev.Data) != `{"text":"hi"}` || ev.Gap {
			t.Fatalf("got %+v", ev)
		}
	}
}

// Every event published after Subscribe returns is delivered: the subscription
// is live in Redis before Subscribe returns. Gap-free resume depends on it.
func TestSubscribeIsLiveOnReturn(t *testing.T) {
	a, _ := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		topic := fmt.Sprintf("t%d", i)
		s, err := a.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PublishRaw(ctx, topic, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if ev := receive(t, s); string(ev.Data) != "x" {
			t.Fatalf("topic %s: got %+v", topic, ev)
		}
	}
}

func TestOneRedisSubscriptionPerTopicPerNode(t *testing.T) {
	a, rdb := newNode(t)
	b, _ := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	var subs []*bus.Subscription
	for i := 0; i < 100; i++ {
		for _, n := range []*bus.Bus{a, b} {
			s, err := n.Subscribe(ctx, "crowd")
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
	}
	if n := numSub(t, rdb, "crowd"); n != 2 {
		t.Fatalf("redis subscriptions for the topic: got %d, want 2 (one per node)", n)
	}
	if err := a.Publish(ctx, "crowd", 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		receive(t, s)
	}
	cancel()
	for _, s := range subs {
		for range s.C {
		}
		if s.Err() != nil {
			t.Fatalf("ended with %v, want nil", s.Err())
		}
	}
	waitFor(t, func() bool { return numSub(t, rdb, "crowd") == 0 })
}

// Close ends one subscription as the end of its context would: its C is
// closed, a parked reader wakes, the others go on, and the topic is
// unsubscribed in Redis with the last of them.
func TestCloseEndsOneSubscription(t *testing.T) {
	a, rdb := newNode(t)
	ctx := context.Background()
	first, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan struct{})
	if !first.Park(func() { close(woke) }) {
		t.Fatal("Park refused with nothing to read")
	}
	first.Close()
	first.Close() // a second Close does nothing
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("the parked reader did not wake at Close")
	}
	if _, ok := <-first.C; ok || first.Err() != nil {
		t.Fatalf("after Close: C open %v, Err %v; want closed and nil", ok, first.Err())
	}
	if err := a.Publish(ctx, "room", 1); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, second); string(ev.Data) != "1" {
		t.Fatalf("the other subscription got %+v", ev)
	}
	if n := numSub(t, rdb, "room"); n != 1 {
		t.Fatalf("redis subscriptions with one left: %d, want 1", n)
	}
	second.Close()
	waitFor(t, func() bool { return numSub(t, rdb, "room") == 0 })
}

func TestSlowSubscriberIsDroppedAlone(t *testing.T) {
	a, _ := newNode(t)
	ctx := context.Background()
	slow, err := a.Subscribe(ctx, "feed")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := a.Subscribe(ctx, "feed")
	if err != nil {
		t.Fatal(err)
	}
	const n = 100 // far more than the buffer of 16
	// The fast subscriber reads each event before the next is published; the
	// slow one reads nothing.
	acks := make(chan bool)
	go func() {
		for range fast.C {
			acks <- true
		}
		close(acks)
	}()
	for i := 0; i < n; i++ {
		if err := a.Publish(ctx, "feed", i); err != nil {
			t.Fatal(err)
		}
		select {
		case ok := <-acks:
			if !ok {
				t.Fatalf("fast subscriber ended after %d events: %v", i, fast.Err())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fast subscriber did not get event %d", i)
		}
	}
	drained := 0
	for range slow.C {
		drained++
	}
	if !errors.Is(slow.Err(), bus.ErrSlowSubscriber) {
		t.Fatalf("slow subscriber ended with %v, want ErrSlowSubscriber", slow.Err())
	}
	if drained != 16 {
		t.Fatalf("slow subscriber kept %d buffered events, want 16", drained)
	}
}

func TestNoGoroutineLeakAfter10000Cycles(t *testing.T) {
	a, _ := newNode(t)
	ctx := context.Background()
	// Warm up connections so pool goroutines are not counted as leaks.
	for i := 0; i < 10; i++ {
		c, cancel := context.WithCancel(ctx)
		if _, err := a.Subscribe(c, "warm"); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000/8; i++ {
				c, cancel := context.WithCancel(ctx)
				s, err := a.Subscribe(c, fmt.Sprintf("cycle-%d", i%50))
				if err != nil {
					cancel()
					errs <- err
					return
				}
				cancel()
				for range s.C {
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
	if topics, subs := a.Stats(); topics != 0 || subs != 0 {
		t.Fatalf("bus still holds %d topics and %d subscribers", topics, subs)
	}
}

func TestGapAfterRedisRestart(t *testing.T) {
	if env.Redis == nil {
		t.Skip("needs a private Redis server to restart")
	}
	a, _ := newNode(t)
	ctx := context.Background()
	s, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Redis.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := env.Redis.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ev := receive(t, s)
	if !ev.Gap {
		t.Fatalf("first event after restart: got %+v, want a gap", ev)
	}
	// The subscription is live again: a new event arrives.
	waitFor(t, func() bool { return a.Publish(ctx, "room", "after") == nil })
	ev = receive(t, s)
	if string(ev.Data) != `"after"` {
		t.Fatalf("got %+v after resubscribe", ev)
	}
}

// numSub is how many Redis subscriptions topic of newNode's buses has:
// its channel's PUBSUB NUMSUB, or SHARDNUMSUB on a cluster.
func numSub(t *testing.T, rdb redis.UniversalClient, topic string) int64 {
	t.Helper()
	ctx := context.Background()
	prefix := env.RedisPrefix + t.Name() + ":"
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		// Asked of the master that owns the channel: go-redis would send
		// PUBSUB SHARDNUMSUB to any node.
		channel := prefix + "{" + topic + "}"
		m, err := cc.MasterForKey(ctx, channel)
		if err != nil {
			t.Fatal(err)
		}
		return m.PubSubShardNumSub(ctx, channel).Val()[channel]
	}
	return rdb.PubSubNumSub(ctx, prefix+topic).Val()[prefix+topic]
}

// killPubSub has Redis drop every subscription connection: on every
// master of a cluster.
func killPubSub(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err()
		})
	}
	return rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A subscription connection that Redis drops (here CLIENT KILL) is replaced,
// and subscribers hear of the gap before the next live event.
func TestGapAfterTheConnectionIsKilled(t *testing.T) {
	a, rdb := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	s, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := killPubSub(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	ev := receive(t, s)
	if !ev.Gap {
		t.Fatalf("first event after the kill: got %+v, want a gap", ev)
	}
	if err := b.Publish(ctx, "room", "after"); err != nil {
		t.Fatal(err)
	}
	if ev = receive(t, s); string(ev.Data) != `"after"` {
		t.Fatalf("got %+v after resubscribe", ev)
	}
}

// A message for a topic no node listens to is held, the newest few of them
// for a while, until a subscriber takes them; one for a watched topic is
// delivered and not held.
func TestPublishOrHold(t *testing.T) {
	a, _ := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	for i := 1; i <= 4; i++ {
		if err := a.PublishOrHold(ctx, "inbox", []byte(fmt.Sprintf("m%d", i)), time.Minute, 3); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := b.Subscribe(ctx, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	held, err := b.TakeHeld(ctx, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%s", held) != "[m2 m3 m4]" {
		t.Fatalf("held %s, want the newest 3 in order", held)
	}
	if again, err := b.TakeHeld(ctx, "inbox"); err != nil || len(again) != 0 {
		t.Fatalf("taken twice: %s %v", again, err)
	}
	if err := a.PublishOrHold(ctx, "inbox", []byte("live"), time.Minute, 3); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, sub); string(ev.Data) != "live" {
		t.Fatalf("live message %q", ev.Data)
	}
	if held, _ := b.TakeHeld(ctx, "inbox"); len(held) != 0 {
		t.Fatalf("a delivered message was held too: %s", held)
	}

	// Held messages expire.
	if err := a.PublishOrHold(ctx, "quiet", []byte("stale"), 50*time.Millisecond, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if held, _ := b.TakeHeld(ctx, "quiet"); len(held) != 0 {
		t.Fatalf("expired messages still held: %s", held)
	}
}

// Of the PublishOnce calls that share a key, exactly one publishes, from
// whichever node.
func TestPublishOnce(t *testing.T) {
	a, _ := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	sub, err := a.Subscribe(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	// Keys outlive the test: unique ones, for -count.
	k1, k2 := fmt.Sprintf("m1-%d", time.Now().UnixNano()), fmt.Sprintf("m2-%d", time.Now().UnixNano())
	var published atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := node.PublishOnce(ctx, "room", k1, time.Minute, []byte("m1"))
			if err != nil {
				t.Error(err)
			}
			if ok {
				published.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := published.Load(); n != 1 {
		t.Fatalf("%d calls published, want 1", n)
	}
	if ok, err := a.PublishOnce(ctx, "room", k2, time.Minute, []byte("m2")); err != nil || !ok {
		t.Fatalf("another key: published %v, %v", ok, err)
	}
	for _, want := range []string{"m1", "m2"} {
		if ev := receive(t, sub); string(ev.Data) != want {
			t.Fatalf("got %q, want %q", ev.Data, want)
		}
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("extra event %q", ev.Data)
	case <-time.After(100 * time.Millisecond):
	}
}
