package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/brookhq/brook/internal/client"
)

// metric reads one unlabelled metric of a Brook process from /metrics.
func metric(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// dialSlow subscribes over a raw WebSocket with a tiny receive buffer and
// then never reads again, as a stalled or malicious client would.
func dialSlow(t *testing.T, p *proc, token, query string, vars map[string]any) {
	t.Helper()
	d := websocket.Dialer{
		Subprotocols: []string{client.TransportWS},
		NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		},
	}
	ws, _, err := d.Dial(client.WebsocketURL(p.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "connection_init", "payload": client.AuthPayload(token)}); err != nil {
		t.Fatal(err)
	}
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m client.Message
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "connection_ack" {
			break
		}
	}
	if err := ws.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}}); err != nil {
		t.Fatal(err)
	}
}

// Fault 5: a client that stops reading its WebSocket is disconnected by the
// server, and delivery to the other subscribers of the same channel goes on
// meanwhile: they receive every message. The figure is the others' p99
// send-to-receive latency without and with the slow client (reported, not
// asserted: tests are not timed assertions).
func TestSlowConsumerDisconnected(t *testing.T) {
	const others = 50
	c := newCluster(t, false)
	p := c.startBrook(t, nil, map[string]string{"BROOK_WORKERS": "1"})
	ctx := context.Background()
	users := []string{"host", "slow"}
	for i := 0; i < others; i++ {
		users = append(users, fmt.Sprintf("o%d", i))
	}
	c.users(t, p, users...)
	host := p.Client(c.token(t, "host", false))
	var ch struct{ CreateChannel struct{ ID string } }
	if err := host.Run(ctx, `mutation { createChannel(input: {type: "livestream", id: "f5"}) { id } }`, nil, &ch); err != nil {
		t.Fatal(err)
	}
	channel := ch.CreateChannel.ID
	const query = `subscription($c: ID!) { messageAdded(channel: $c) { text } }`

	type delivery struct {
		key string
		at  time.Time
	}
	got := make([][]delivery, others)
	var gotMu sync.Mutex
	for i := 0; i < others; i++ {
		conn, err := client.Dial(ctx, client.WebsocketURL(p.URL), client.DialOptions{Payload: client.AuthPayload(c.token(t, users[i+2], false)), Buffer: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sub, err := conn.Subscribe(query, client.Vars{"c": channel})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for m := range sub.C {
				var r struct {
					Data struct{ MessageAdded struct{ Text string } }
				}
				if m.Type != "next" || json.Unmarshal(m.Payload, &r) != nil {
					continue
				}
				key, _, _ := strings.Cut(r.Data.MessageAdded.Text, "|")
				gotMu.Lock()
				got[i] = append(got[i], delivery{key, m.Received})
				gotMu.Unlock()
			}
		}()
	}
	eventually(t, 30*time.Second, "all subscribers connected", func() bool {
		return metric(t, p, "brook_graphql_subscriptions_open") == others
	})

	// Messages of 4,000 characters at 20 per second, so a client that does
	// not read fills its socket buffers within seconds.
	filler := strings.Repeat("x", 4000)
	var (
		sentMu sync.Mutex
		sentAt = map[string]time.Time{}
		order  []string
	)
	send := func(key string) {
		start := time.Now()
		sentMu.Lock()
		sentAt[key] = start
		sentMu.Unlock()
		if err := host.Run(ctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
			client.Vars{"c": channel, "t": key + "|" + filler}, nil); err != nil {
			t.Fatal(err)
		}
		sentMu.Lock()
		order = append(order, key)
		sentMu.Unlock()
		time.Sleep(time.Until(start.Add(50 * time.Millisecond)))
	}
	// p99 of the others' latency for the messages whose key has prefix.
	p99 := func(prefix string) (time.Duration, int) {
		gotMu.Lock()
		defer gotMu.Unlock()
		sentMu.Lock()
		defer sentMu.Unlock()
		var ds []time.Duration
		for _, g := range got {
			for _, d := range g {
				if strings.HasPrefix(d.key, prefix) {
					ds = append(ds, d.at.Sub(sentAt[d.key]))
				}
			}
		}
		return percentile(ds, 0.99), len(ds)
	}
	allDelivered := func() bool {
		sentMu.Lock()
		n := len(order)
		sentMu.Unlock()
		gotMu.Lock()
		defer gotMu.Unlock()
		for _, g := range got {
			if len(g) < n {
				return false
			}
		}
		return true
	}

	// Phase 1: no slow client.
	for i := 0; i < 60; i++ {
		send(fmt.Sprintf("a%d", i))
	}
	eventually(t, 60*time.Second, "phase 1 delivered", allDelivered)

	// Phase 2: a client subscribes to the same channel and stops reading.
	dialSlow(t, p, c.token(t, "slow", false), query, map[string]any{"c": channel})
	eventually(t, 30*time.Second, "the slow client's subscription is open", func() bool {
		return metric(t, p, "brook_graphql_subscriptions_open") == others+1
	})
	subscribed := time.Now()
	var disconnected time.Duration
	for i := 0; disconnected == 0 || i < 60; i++ {
		send(fmt.Sprintf("b%d", i))
		if disconnected == 0 && metric(t, p, "brook_websocket_connections_open") == others {
			disconnected = time.Since(subscribed)
		}
		if i > 2400 {
			t.Fatal("the slow client was not disconnected after 2,400 messages (about 2 minutes)")
		}
	}
	eventually(t, 60*time.Second, "phase 2 delivered", allDelivered)
	// The server has let go of the connection: no goroutine, subscription
	// or connection of it is left. (From the client's side the socket stays
	// half-open for a while: the server's kernel still holds the bytes the
	// client never read, and retries them with backoff.)
	eventually(t, 30*time.Second, "the slow client's subscription is gone", func() bool {
		return metric(t, p, "brook_graphql_subscriptions_open") == others && metric(t, p, "brook_websocket_connections_open") == others
	})

	// Every other client received every message, once, in order.
	sentMu.Lock()
	for i, g := range got {
		if len(g) != len(order) {
			t.Fatalf("client %d received %d messages, %d sent", i, len(g), len(order))
		}
		for j := range g {
			if g[j].key != order[j] {
				t.Fatalf("client %d: message %d is %s, want %s", i, j, g[j].key, order[j])
			}
		}
	}
	total := len(order)
	sentMu.Unlock()
	without, n1 := p99("a")
	with, n2 := p99("b")
	dropped := metric(t, p, "brook_bus_slow_subscribers_dropped_total")
	t.Logf("fault 5: %d subscribers plus one that stopped reading, %d messages of 4 KB at 20/s: the slow client was disconnected "+
		"%s after subscribing (it read nothing after subscribing; slow subscribers dropped by the bus: %.0f); the others received all %d messages in order; "+
		"their p99 %s without the slow client (%d deliveries), %s with it (%d deliveries)",
		others, total, disconnected.Round(100*time.Millisecond), dropped, total, ms(without), n1, ms(with), n2)
}
