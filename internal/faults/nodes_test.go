package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// subscriber is one client following a channel with messageAdded: when its
// connection ends it reconnects (to the other node, as a load balancer
// would send it) and resumes with after: the last message it has.
type subscriber struct {
	nodes   []*proc
	node    int
	token   string
	channel string

	mu         sync.Mutex
	got        []string
	last       string
	live       bool
	reconnects int
}

func (s *subscriber) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		conn, err := client.Dial(ctx, client.WebsocketURL(s.nodes[s.node].URL),
			client.DialOptions{Payload: client.AuthPayload(s.token), Buffer: 4096})
		if err != nil {
			s.node = (s.node + 1) % len(s.nodes)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		after := s.last
		s.mu.Unlock()
		sub, err := conn.Subscribe(`subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { id } }`,
			client.Vars{"c": s.channel, "a": after})
		for err == nil {
			var r *client.Response
			if r, err = sub.Next(ctx); err == nil {
				if err = r.Err(); err == nil {
					var m struct{ MessageAdded struct{ ID string } }
					if err = r.Decode(&m); err == nil {
						s.mu.Lock()
						s.got = append(s.got, m.MessageAdded.ID)
						s.last, s.live = m.MessageAdded.ID, true
						s.mu.Unlock()
					}
				}
			}
		}
		_ = conn.Close()
		if ctx.Err() != nil {
			return
		}
		var ce *client.CloseError
		if errors.As(err, &ce) {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
		}
		s.node = (s.node + 1) % len(s.nodes)
	}
}

func (s *subscriber) received() (n int, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got), s.live
}

// Fault 4: one of two Brook nodes is SIGKILLed while 500 clients, half on
// each node, follow a channel and messages keep flowing. The clients of the
// killed node reconnect to the other one and, resuming with
// messageAdded(after:), every client receives every message exactly once.
func TestNodeKilledWithSubscribers(t *testing.T) {
	const clients = 500
	c := newCluster(t, false)
	env := map[string]string{"BROOK_WORKERS": "1"}
	a, b := c.startBrook(t, nil, env), c.startBrook(t, nil, env)
	nodes := []*proc{a, b}
	ctx := context.Background()
	users := []string{"host"}
	for i := 0; i < clients; i++ {
		users = append(users, fmt.Sprintf("c%d", i))
	}
	c.users(t, a, users...)
	host := c.token(t, "host", false)
	var ch struct{ CreateChannel struct{ ID string } }
	if err := a.Client(host).Run(ctx, `mutation { createChannel(input: {type: "livestream", id: "f4"}) { id } }`, nil, &ch); err != nil {
		t.Fatal(err)
	}
	channel := ch.CreateChannel.ID
	send := func(p *proc, text string) (string, error) {
		var out struct{ SendMessage struct{ ID string } }
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err := p.Client(host).Run(cctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
			client.Vars{"c": channel, "t": text}, &out)
		return out.SendMessage.ID, err
	}
	// Every client starts after this message, so all expect the same ones.
	first, err := send(a, "before")
	if err != nil {
		t.Fatal(err)
	}

	subCtx, stopSubs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSubs(); wg.Wait() }()
	subs := make([]*subscriber, clients)
	for i := range subs {
		subs[i] = &subscriber{nodes: nodes, node: i % 2, token: c.token(t, users[i+1], false), channel: channel, last: first}
		wg.Add(1)
		go subs[i].run(subCtx, &wg)
	}

	// The sender sends to both nodes in turn, and only to the living one
	// once a node is gone; it counts what was acknowledged.
	var (
		ackMu   sync.Mutex
		acked   []string
		failed  int
		sending atomic.Bool
		aDead   atomic.Bool
	)
	sending.Store(true)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for i := 0; sending.Load(); i++ {
			p := nodes[i%2]
			if aDead.Load() {
				p = b
			}
			id, err := send(p, fmt.Sprintf("m%d", i))
			ackMu.Lock()
			if err != nil {
				failed++
			} else {
				acked = append(acked, id)
			}
			ackMu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	ackedCount := func() int { ackMu.Lock(); defer ackMu.Unlock(); return len(acked) }
	allLive := func() bool {
		for _, s := range subs {
			if _, live := s.received(); !live {
				return false
			}
		}
		return true
	}
	eventually(t, 120*time.Second, "all 500 subscriptions deliver", allLive)
	start := ackedCount()
	eventually(t, 60*time.Second, "15 more messages acknowledged", func() bool { return ackedCount() >= start+15 })

	// Kill node A under the 250 clients connected to it, mid-stream.
	a.Kill()
	aDead.Store(true)
	killedAt := time.Now()
	atKill := ackedCount()
	eventually(t, 60*time.Second, "15 more messages acknowledged", func() bool { return ackedCount() >= atKill+15 })
	sending.Store(false)
	<-sendDone

	// The truth: every message of the channel after the first, which
	// includes every acknowledged one (and any that committed on A without
	// an answer reaching the sender).
	rows, err := c.DB.Query(ctx, `SELECT id::text FROM messages WHERE channel_id = $1 AND pos > (SELECT pos FROM messages WHERE id = $2) ORDER BY pos`,
		channel, first)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		want = append(want, id)
	}
	rows.Close()
	inPG := map[string]bool{}
	for _, id := range want {
		inPG[id] = true
	}
	ackMu.Lock()
	for _, id := range acked {
		if !inPG[id] {
			t.Errorf("acknowledged message %s is not in PostgreSQL", id)
		}
	}
	sent, unanswered := len(acked), failed
	ackMu.Unlock()

	var state string
	eventually(t, 120*time.Second, "every client has every message", func() bool {
		behind := 0
		for _, s := range subs {
			if n, _ := s.received(); n < len(want) {
				behind++
			}
		}
		state = fmt.Sprintf("%d of %d clients behind", behind, clients)
		return behind == 0
	}, &state)
	caughtUp := time.Since(killedAt)
	stopSubs()
	wg.Wait()

	lost, dup, reconnected := 0, 0, 0
	minGot, maxGot := len(want)*10, 0
	for _, s := range subs {
		seen := map[string]int{}
		for _, id := range s.got {
			seen[id]++
		}
		for _, id := range want {
			if seen[id] == 0 {
				lost++
			}
		}
		for id, n := range seen {
			dup += n - 1
			if !inPG[id] {
				dup++ // a message that is not the channel's: counted as extra
			}
		}
		minGot, maxGot = min(minGot, len(s.got)), max(maxGot, len(s.got))
		if s.reconnects > 0 {
			reconnected++
		}
	}
	if lost != 0 || dup != 0 {
		t.Fatalf("%d deliveries lost, %d duplicated", lost, dup)
	}
	if reconnected < clients/2 {
		t.Fatalf("only %d clients reconnected; the %d on the killed node must have", reconnected, clients/2)
	}
	if !b.Alive() {
		t.Fatal("the surviving node died")
	}
	t.Logf("fault 4: node A SIGKILLed under %d of %d subscribers: %d messages acknowledged (%d unanswered sends to A), "+
		"%d in the channel; %d clients reconnected to node B; every client received %d to %d messages "+
		"(want %d): lost 0, duplicated 0; all caught up %s after the kill",
		clients/2, clients, sent, unanswered, len(want), reconnected, minGot, maxGot, len(want), caughtUp.Round(10*time.Millisecond))
}
