package bus_test

import (
	"context"
	"slices"
	"testing"

	"github.com/brookhq/brook/internal/bus"
)

// TestWatchedTopics lists the topics of a prefix that some node
// subscribes to, and only the bus's own: a prefix with glob characters
// matches itself only.
func TestWatchedTopics(t *testing.T) {
	a, rdb := newNode(t)
	b, _ := newNode(t)
	ctx := context.Background()
	for _, topic := range []string{"feed:x", "feed:y", "other:z"} {
		s, err := a.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	s, err := b.Subscribe(ctx, "feed:w")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Another bus whose prefix, with a *, would match the first's channels
	// were it not quoted.
	other := bus.New(rdb, bus.Options{Prefix: env.RedisPrefix + "Test*:"})
	defer other.Close()
	for _, n := range []*bus.Bus{a, b} {
		got, err := n.WatchedTopics(ctx, "feed:")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{"feed:w", "feed:x", "feed:y"}; !slices.Equal(got, want) {
			t.Fatalf("watched %v, want %v", got, want)
		}
	}
	if got, err := other.WatchedTopics(ctx, "feed:"); err != nil || len(got) != 0 {
		t.Fatalf("another prefix's watched topics: %v, %v", got, err)
	}
}
