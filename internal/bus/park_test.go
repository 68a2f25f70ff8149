package bus_test

// Parking: a reader that waits for its subscription's next event without
// a goroutine of its own, and subscriptions whose buffer is made at their
// first event.

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/bus"
)

// subscribeKinds are the two ways to subscribe that Park serves: with a
// buffer made at once, and with one made at the first event.
var subscribeKinds = []struct {
	name      string
	subscribe func(*bus.Bus, context.Context, string) (*bus.Subscription, error)
}{
	{"Subscribe", (*bus.Bus).Subscribe},
	{"SubscribeParked", (*bus.Bus).SubscribeParked},
}

// A parked subscriber is woken once for the next event and once for its
// end, and is not parked while an event waits in C.
func TestParkWakesAtTheNextEventAndAtTheEnd(t *testing.T) {
	for _, k := range subscribeKinds {
		t.Run(k.name, func(t *testing.T) { testParkWakes(t, k.subscribe) })
	}
}

func testParkWakes(t *testing.T, subscribe func(*bus.Bus, context.Context, string) (*bus.Subscription, error)) {
	b, _ := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := subscribe(b, ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	woken := make(chan string, 4)
	if !s.Park(func() { woken <- "first" }) {
		t.Fatal("an idle subscription did not park")
	}
	if err := b.PublishRaw(ctx, "room", []byte("a")); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-woken:
		if w != "first" {
			t.Fatalf("woke %q", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by an event")
	}
	// The event is still waiting: no parking until it is read.
	if s.Park(func() { woken <- "unexpected" }) {
		t.Fatal("parked with an event waiting")
	}
	if ev := receive(t, s); string(ev.Data) != "a" {
		t.Fatalf("got %+v", ev)
	}
	if !s.Park(func() { woken <- "end" }) {
		t.Fatal("did not park after reading")
	}
	cancel()
	select {
	case w := <-woken:
		if w != "end" {
			t.Fatalf("woke %q", w)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by the end")
	}
	if _, ok := <-s.Events(); ok {
		t.Fatal("C not closed at the end")
	}
	if s.Park(func() { woken <- "after end" }) {
		t.Fatal("parked after the end")
	}
	select {
	case w := <-woken:
		t.Fatalf("woke %q more than once", w)
	case <-time.After(100 * time.Millisecond):
	}
}

// A reader that parks whenever C is empty gets every event, in order, and
// never runs twice at once, however events and parking interleave.
func TestParkingReaderGetsEveryEventOnce(t *testing.T) {
	for _, k := range subscribeKinds {
		t.Run(k.name, func(t *testing.T) { testParkingReader(t, k.subscribe) })
	}
}

func testParkingReader(t *testing.T, subscribe func(*bus.Bus, context.Context, string) (*bus.Subscription, error)) {
	b, _ := newNode(t)
	ctx := context.Background()
	s, err := subscribe(b, ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var running atomic.Int32
	got := make(chan int, n)
	twice := make(chan struct{}, 1)
	var read func()
	read = func() {
		if running.Add(1) != 1 {
			select {
			case twice <- struct{}{}:
			default:
			}
		}
		for {
			// Counted out before parking: once parked, the next wake may
			// start at once.
			running.Add(-1)
			if s.Park(read) {
				return
			}
			running.Add(1)
			ev, ok := <-s.Events()
			if !ok {
				running.Add(-1)
				return
			}
			i, _ := strconv.Atoi(string(ev.Data))
			got <- i
		}
	}
	go read()
	// Published in bursts of 8, each awaited (the buffer holds 16): the
	// reader finds events waiting, parks between bursts, and is woken
	// while parking.
	for i := 0; i < n; i += 8 {
		for j := i; j < i+8; j++ {
			if err := b.PublishRaw(ctx, "room", []byte(strconv.Itoa(j))); err != nil {
				t.Fatal(err)
			}
		}
		for j := i; j < i+8; j++ {
			select {
			case g := <-got:
				if g != j {
					t.Fatalf("event %d arrived as number %d", g, j)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%d of %d events arrived (%v)", j, n, s.Err())
			}
		}
	}
	select {
	case <-twice:
		t.Fatal("two readers ran at once")
	default:
	}
}

// A parked subscription holds no buffer until its first event, ends closed
// without one, and is dropped like any other when its buffer fills.
func TestSubscribeParked(t *testing.T) {
	b, _ := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	idle, err := b.SubscribeParked(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if idle.C != nil || idle.Events() != nil {
		t.Fatal("a parked subscription has a buffer before its first event")
	}
	cancel()
	// Events is nil until the end (a parked reader is woken instead).
	for end := time.Now().Add(5 * time.Second); idle.Events() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("Events not closed at the end")
		}
	}
	if _, ok := <-idle.Events(); ok {
		t.Fatal("an event on an ended subscription")
	}
	if idle.Err() != nil {
		t.Fatalf("ended with %v, want nil", idle.Err())
	}

	// A parked reader gives the buffer back once it has read it empty.
	back, err := b.SubscribeParked(context.Background(), "room")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishRaw(context.Background(), "room", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, back); string(ev.Data) != "x" {
		t.Fatalf("got %q", ev.Data)
	}
	if !back.Park(func() {}) || back.Events() != nil {
		t.Fatal("a drained parked subscription kept its buffer")
	}
	back.Close()

	slow, err := b.SubscribeParked(context.Background(), "room")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ { // more than the buffer of 16
		if err := b.PublishRaw(context.Background(), "room", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	drained := 0
	deadline := time.After(5 * time.Second)
	for slow.Events() == nil {
		time.Sleep(time.Millisecond)
	}
	for done := false; !done; {
		select {
		case ev, ok := <-slow.Events():
			if !ok {
				done = true
				break
			}
			if string(ev.Data) != strconv.Itoa(drained) {
				t.Fatalf("event %d is %q", drained, ev.Data)
			}
			drained++
		case <-deadline:
			t.Fatalf("not dropped: %d events read", drained)
		}
	}
	if !errors.Is(slow.Err(), bus.ErrSlowSubscriber) || drained != 16 {
		t.Fatalf("ended with %v after %d events, want ErrSlowSubscriber after 16", slow.Err(), drained)
	}
}
