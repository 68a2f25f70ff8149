package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/brookhq/brook/internal/client"
)

// bigSeq finds a message's sequence number in a channelEvents payload.
var bigSeq = regexp.MustCompile(`"bn-(\d+)"`)

// bigNodeOptions sizes the big-node row.
type bigNodeOptions struct {
	subscriptions int // all channelEvents subscriptions on the node, members' included
	members       int // members of the channel the messages go to, each subscribed on its own connection
	messages      int // messages sent, 5 a second
	perConn       int // idle subscriptions per idle connection (0: 1, or as few as the file limit allows)
}

// idleChannels is how many livestream channels the idle subscriptions
// spread over: many topics on the node, as on a real one.
const idleChannels = 50

// fdMargin is what a process needs besides its client sockets: its
// database and Redis pools, listeners, files.
const fdMargin = 500

// raiseFileLimit raises this process's soft RLIMIT_NOFILE to its hard
// limit (which only a privileged process could raise) and returns it. The
// node it starts inherits the same hard limit and raises its soft limit
// too (Go programs do at startup).
func raiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Max, nil
}

// bigNodeFigures is the big-node row: o.subscriptions idle channelEvents
// subscriptions on one node, o.members of them the members of one
// messaging channel, each on a connection of its own; then messages to
// that channel, timed from the sendMessage call to each member's event.
// Where the file limit cannot hold a connection per subscription (a
// socket is a file on both ends), the idle subscriptions share
// connections, as a client's several open channels do; the row says so.
func bigNodeFigures(ctx context.Context, h *harness, t *table, o bigNodeOptions) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("file limit: %w", err)
	}
	idleSubs := o.subscriptions - o.members
	perConn := max(o.perConn, 1)
	if o.perConn == 0 {
		// Each of the node's and this process's sockets is a file.
		room := int(limit) - fdMargin - o.members
		for room > 0 && (idleSubs+perConn-1)/perConn > room {
			perConn++
		}
	}
	idleConns := (idleSubs + perConn - 1) / perConn
	conns := idleConns + o.members
	if uint64(conns+fdMargin) > limit {
		return fmt.Errorf("%d connections need a file limit of %d; the hard limit is %d (ulimit -Hn)", conns, conns+fdMargin, limit)
	}
	fmt.Fprintf(os.Stderr, "bench: big node: %d subscriptions (%d members + %d idle, %d per idle connection) over %d connections; file limit %d\n",
		o.subscriptions, o.members, idleSubs, perConn, conns, limit)
	// The node's own cap (BROOK_MAX_CONNECTIONS, nine tenths of the file
	// limit by default) off: the row measures what the limit holds.
	s, err := h.startServer(ctx, map[string]string{"BROOK_RATE_IP": "off", "BROOK_MAX_CONNECTIONS": "0"})
	if err != nil {
		return err
	}
	defer s.Stop()
	prefix := fmt.Sprintf("bn%d-%d", o.subscriptions, perConn)
	members := make([]string, o.members)
	for i := range members {
		members[i] = fmt.Sprintf("%s-m%d", prefix, i)
	}
	if err := chatUsers(ctx, h, s, members); err != nil {
		return err
	}
	owner := s.Client(h.token(members[0], false))
	cid := "messaging:" + prefix
	if err := owner.Run(ctx, `mutation($id: ID!) { createChannel(input: {type: "messaging", id: $id}) { id } }`, client.Vars{"id": prefix}, nil); err != nil {
		return err
	}
	for i := 1; i < len(members); i += 100 {
		if err := owner.Run(ctx, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`,
			client.Vars{"c": cid, "u": members[i:min(i+100, len(members))]}, nil); err != nil {
			return err
		}
	}
	for j := 0; j < idleChannels; j++ {
		if err := owner.Run(ctx, `mutation($id: ID!) { createChannel(input: {type: "livestream", id: $id}) { id } }`,
			client.Vars{"id": fmt.Sprintf("%s-idle%d", prefix, j)}, nil); err != nil {
			return err
		}
	}
	settle()
	before, err := s.RSS()
	if err != nil {
		return err
	}

	const events = `subscription($c: ID!) { channelEvents(channel: $c) { type message { id text } } }`
	sentAt := make([]atomic.Int64, o.messages)
	spans := make([]span, o.messages)
	lats := &latencies{}
	var got atomic.Int64
	var mu sync.Mutex
	var open []io.Closer
	defer func() {
		for _, c := range open {
			_ = c.Close()
		}
	}()
	var g errgroup.Group
	g.SetLimit(64)
	start := time.Now()
	for i := 0; i < conns; i++ {
		g.Go(func() error {
			var user string
			var channels []string
			on := func([]byte, time.Time) {}
			if i < o.members {
				user, channels = members[i], []string{cid}
				on = func(data []byte, at time.Time) {
					m := bigSeq.FindSubmatch(data)
					if m == nil || !bytes.Contains(data, []byte(`"message.new"`)) {
						return
					}
					if seq, _ := strconv.Atoi(string(m[1])); seq < o.messages {
						if sent := sentAt[seq].Load(); sent > 0 {
							lats.add(at.Sub(time.Unix(0, sent)))
							spans[seq].observe(at.Sub(time.Unix(0, sent)))
							got.Add(1)
						}
					}
				}
			} else {
				c := i - o.members
				user = fmt.Sprintf("%s-idle%d", prefix, c)
				for q := 0; q < perConn && c*perConn+q < idleSubs; q++ {
					channels = append(channels, fmt.Sprintf("livestream:%s-idle%d", prefix, (c*perConn+q)%idleChannels))
				}
			}
			dctx, cancel := context.WithTimeout(ctx, 120*time.Second)
			defer cancel()
			conn, err := subscribeFrom(dctx, sourceAddr(i), s.WebsocketURL(), client.AuthPayload(h.token(user, false)), events, channels, on)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			mu.Lock()
			open = append(open, conn)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	opened := time.Since(start)
	time.Sleep(5 * time.Second)
	after, err := s.RSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: big node: %d connections open in %v; node RSS %.1f MB -> %.1f MB\n",
		conns, opened.Round(time.Second), float64(before)/1e6, float64(after)/1e6)

	fmt.Fprintf(os.Stderr, "bench: big node: sending %d messages\n", o.messages)
	sends := &latencies{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var swg sync.WaitGroup
	for seq := 0; seq < o.messages; seq++ {
		<-tick.C
		swg.Add(1)
		go func() {
			defer swg.Done()
			sentAt[seq].Store(time.Now().UnixNano())
			defer func() { sends.add(time.Since(time.Unix(0, sentAt[seq].Load()))) }()
			if err := owner.Run(ctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
				client.Vars{"c": cid, "t": fmt.Sprintf("bn-%d", seq)}, nil); err != nil {
				fmt.Fprintln(os.Stderr, "bench: send:", err)
			}
		}()
	}
	swg.Wait()
	want := int64(o.messages * o.members)
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	delivered, err := s.RSS()
	if err != nil {
		return err
	}
	p50, p99, mx, n := lats.summary()
	_, sendP99, _, _ := sends.summary()
	// The node's own delivery to the members, without the send's commit
	// (which every delivery waits for): each message's last event less
	// its first.
	spread := &latencies{}
	for i := range spans {
		spread.add(spans[i].latest() - spans[i].earliest())
	}
	s50, _, smax, _ := spread.summary()
	t.add(o.subscriptions, fmt.Sprintf("%d: %d idle with %d subscription(s) each, %d members with 1", conns, idleConns, perConn, o.members),
		fmt.Sprintf("%.1f MB", float64(before)/1e6), fmt.Sprintf("%.1f MB / %.1f MB", float64(after)/1e6, float64(delivered)/1e6),
		fmt.Sprintf("%.1f KB", float64(after-before)/float64(o.subscriptions)/1024),
		fmt.Sprintf("%.1f KB", float64(after-before)/float64(conns)/1024),
		fmt.Sprintf("%d × %d", o.messages, o.members), ms(p50), ms(p99), ms(mx), want-int64(n), ms(sendP99), ms(s50)+" / "+ms(smax), loadAverage())
	return nil
}

// sourceAddr is the loopback address connection i comes from: one per
// 20,000 connections, under the default ephemeral port range (about
// 28,000 ports per source address towards one server address).
func sourceAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/20000))}
}

// subscribeFrom opens a graphql-transport-ws connection from the local
// address from and starts one subscription of query per channel on it
// ($c), handing every message to on from the connection's one reader
// goroutine, which also answers the server's pings. Small buffers: tens of
// thousands of these share the machine with the node they measure.
func subscribeFrom(ctx context.Context, from *net.TCPAddr, url string, initPayload any, query string, channels []string,
	on func(data []byte, at time.Time)) (io.Closer, error) {
	nd := &net.Dialer{LocalAddr: from, Timeout: 30 * time.Second}
	d := websocket.Dialer{Subprotocols: []string{client.TransportWS}, HandshakeTimeout: 60 * time.Second,
		NetDialContext: nd.DialContext, ReadBufferSize: 512, WriteBufferSize: 512}
	payloads := make([]map[string]any, len(channels))
	for i, c := range channels {
		payloads[i] = map[string]any{"query": query, "variables": map[string]any{"c": c}}
	}
	return subscribeWS(ctx, d, url, initPayload, payloads, on, nil)
}

// bigNodeRows runs the big-node row as asked; if the file limit makes its
// idle subscriptions share connections, it adds the most subscriptions the
// limit holds with a connection each, as the memory row's are.
func bigNodeRows(ctx context.Context, h *harness, t *table, o bigNodeOptions) error {
	started, load := time.Now().UTC(), loadAverage()
	limit, err := raiseFileLimit()
	if err != nil {
		return fmt.Errorf("file limit: %w", err)
	}
	settle()
	fmt.Fprintf(os.Stderr, "bench: big node: %d subscriptions\n", o.subscriptions)
	if err := bigNodeFigures(ctx, h, t, o); err != nil {
		return err
	}
	shared := o.perConn == 0 && uint64(o.subscriptions+fdMargin) > limit
	if shared {
		one := o
		one.perConn = 1
		one.subscriptions = (int(limit) - fdMargin) / 1000 * 1000
		settle()
		fmt.Fprintf(os.Stderr, "bench: big node: %d subscriptions, a connection each\n", one.subscriptions)
		if err := bigNodeFigures(ctx, h, t, one); err != nil {
			return err
		}
		t.note("The hard file limit here (RLIMIT_NOFILE %d, which only a privileged process raises) holds at most about %d sockets per process, "+
			"and every connection is a socket in the node and one in the load generator: %d connections of one subscription each cannot be opened. "+
			"The first row's idle subscriptions therefore share connections (several channels' subscriptions on one graphql-transport-ws connection, "+
			"as a client with several channels open does); the second row is the most subscriptions the limit holds with a connection each. "+
			"With `ulimit -Hn` above %d, the command runs the asked row with a connection per subscription.", limit, int(limit)-fdMargin, o.subscriptions, o.subscriptions+fdMargin)
	}
	t.note("The idle subscriptions are channelEvents on %d livestream channels no one writes to, each connection a user of its own; the %d members of one messaging channel "+
		"each hold channelEvents on it on a connection of their own, and one of them sends %d messages, 5 a second, over HTTP. Latency runs from just before the sendMessage "+
		"request to the event read off each member's socket (a bare graphql-transport-ws reader per connection, one goroutine, answering the server's pings). "+
		"Connections come from 127.0.0.2 and up, one source address per 20,000 (the ephemeral port range holds about 28,000 per address). "+
		"The node runs with BROOK_MAX_CONNECTIONS=0 (its default cap is nine tenths of the file limit). RSS is the node process's VmRSS from /proc/<pid>/status (the node is a subprocess): before is after its start and the channels' creation, "+
		"with them is 5 s after the last subscription opened; per subscription and per connection divide the difference. Started %s UTC, load average %s. "+
		"Every delivery waits for the send's commit, so a slow sendMessage request (its p99 is a column) is in the tail; the spread column is "+
		"each message's last event less its first (p50 / max over the messages): the node's own delivery to the members. "+
		"Target: p99 under 50 ms for the 1,000-member delivery with 50,000 subscriptions on the node.",
		idleChannels, o.members, o.messages, started.Format("15:04"), load)
	return nil
}
