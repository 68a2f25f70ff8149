package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// newChatLoad makes 3 senders and 8 readers, three messaging channels
// (named prefix-0..2) with all of them as members, and a chat load that
// sends to them; run it with go l.run(), stop it with l.close().
func (c *cluster) newChatLoad(t *testing.T, p *proc, prefix string) (l *chatLoad, everyone []string) {
	t.Helper()
	ctx := context.Background()
	senders := []string{"s0", "s1", "s2"}
	readers := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}
	everyone = append(append([]string{}, senders...), readers...)
	c.users(t, p, everyone...)
	l = &chatLoad{p: p, acked: map[string][]string{}, errs: map[string]int{}, lat: map[string][]time.Duration{},
		idle: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	for i := 0; i < 3; i++ {
		var out struct{ CreateChannel struct{ ID string } }
		if err := p.Client(c.token(t, "s0", false)).Run(ctx, `mutation($id: ID!, $m: [ID!]) {
			createChannel(input: {type: "messaging", id: $id, members: $m}) { id } }`,
			client.Vars{"id": fmt.Sprintf("%s-%d", prefix, i), "m": everyone[1:]}, &out); err != nil {
			t.Fatal(err)
		}
		l.channels = append(l.channels, out.CreateChannel.ID)
	}
	for _, u := range senders {
		l.senders = append(l.senders, p.Client(c.token(t, u, false)))
	}
	for _, u := range readers {
		l.readers = append(l.readers, p.Client(c.token(t, u, false)))
	}
	return l, everyone
}

// follower is a messageAdded subscription on the load's first channel.
type follower struct {
	mu  sync.Mutex
	got []string
	err error
}

func (f *follower) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// follow subscribes user to messageAdded on the load's first channel and
// returns once it delivers: a subscribe has no answer, and a message sent
// while it is still starting may come before the point it delivers from,
// so probes are sent until one arrives. Only then may the load start (a
// message of it did, in 3 of 5 runs of the whole suite on 2 cores). The
// probes before the first one received are not its to deliver.
func (c *cluster) follow(t *testing.T, p *proc, l *chatLoad, user string) *follower {
	t.Helper()
	ctx := context.Background()
	conn, err := client.Dial(ctx, client.WebsocketURL(p.URL), client.DialOptions{Payload: client.AuthPayload(c.token(t, user, false)), Buffer: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sub, err := conn.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id } }`, client.Vars{"c": l.channels[0]})
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{}
	go func() {
		for {
			r, err := sub.Next(ctx)
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
			var m struct{ MessageAdded struct{ ID string } }
			if err := r.Decode(&m); err == nil {
				f.mu.Lock()
				f.got = append(f.got, m.MessageAdded.ID)
				f.mu.Unlock()
			}
		}
	}()
	first := l.senders[0]
	eventually(t, 30*time.Second, "the subscription delivers", func() bool {
		if f.received() > 0 {
			return true
		}
		var out struct{ SendMessage struct{ ID string } }
		if err := first.Run(ctx, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "probe"}) { id } }`,
			client.Vars{"c": l.channels[0]}, &out); err != nil {
			t.Fatal(err)
		}
		l.acked[l.channels[0]] = append(l.acked[l.channels[0]], out.SendMessage.ID)
		time.Sleep(100 * time.Millisecond)
		return f.received() > 0
	})
	f.mu.Lock()
	probes := l.acked[l.channels[0]]
	firstGot := f.got[0]
	f.mu.Unlock()
	i := slices.Index(probes, firstGot)
	if i < 0 {
		t.Fatalf("the subscription's first message %s is none of the probes %v", firstGot, probes)
	}
	l.acked[l.channels[0]] = probes[i:]
	return f
}

// checkAll waits (up to 60 s) until the follower has every message the
// load had acknowledged in its channel, and checks it has each exactly
// once. phases says when the fault happened, for the failure message.
func (f *follower) checkAll(t *testing.T, c *cluster, l *chatLoad, phases string) {
	t.Helper()
	ctx := context.Background()
	l.mu.Lock()
	want := append([]string(nil), l.acked[l.channels[0]]...)
	l.mu.Unlock()
	stoppedAt := time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for f.received() < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) < len(want) {
		// Which messages, sent when: against the phases, they say which
		// path lost them.
		have := map[string]bool{}
		for _, id := range f.got {
			have[id] = true
		}
		var missing []string
		for i, id := range want {
			if !have[id] {
				var pos int64
				var at time.Time
				_ = c.DB.QueryRow(ctx, `SELECT pos, created_at FROM messages WHERE id = $1`, id).Scan(&pos, &at)
				missing = append(missing, fmt.Sprintf("#%d of %d %s (pos %d, sent %s)", i+1, len(want), id, pos, at.UTC().Format("15:04:05.000")))
			}
		}
		t.Fatalf("the subscription has %d of %d acknowledged messages after 60 s (ended: %v); missing %s; %s, sending stopped %s",
			len(f.got), len(want), f.err, strings.Join(missing, ", "), phases, stoppedAt.UTC().Format("15:04:05.000"))
	}
	seen := map[string]int{}
	for _, id := range f.got {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Fatalf("message %s received %d times; want once", id, seen[id])
		}
	}
	if len(f.got) != len(want) {
		t.Fatalf("subscription received %d messages, %d acknowledged", len(f.got), len(want))
	}
}
