package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"golang.org/x/sync/errgroup"

	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/store"
)

func init() { benchmarks["chat"] = benchChat }

// chatSeq finds a message's sequence number in a messageAdded payload.
var chatSeq = regexp.MustCompile(`bench-(\d+)`)

// benchChat is `make bench-chat`. Flags go after "--":
// go run ./internal/bench chat -- -subscribers 200 -idle 1000 -seconds 5.
func benchChat(ctx context.Context, h *harness, args []string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	subscribers := fs.Int("subscribers", 1000, "messageAdded subscribers on the channel")
	idle := fs.Int("idle", 10000, "idle WebSocket subscriptions for the memory figure")
	seconds := fs.Float64("seconds", 10, "seconds of sending at 10 messages/s per node count")
	nodeCounts := fs.String("nodes", "1,2", "node counts of the latency measurement")
	only := fs.String("only", "", "run only these parts, comma-separated: latency,memory,unread,slots,history,bignode (default all)")
	postgraphile := fs.Bool("postgraphile", true, "history part: PostGraphile 4 rows too (installed from npm once; skipped without node and npm)")
	bigSubs := fs.Int("bignode", 50000, "big node: channelEvents subscriptions on one node")
	bigMembers := fs.Int("bignode-members", 1000, "big node: members of the channel the messages go to")
	bigMessages := fs.Int("bignode-messages", 20, "big node: messages sent to it, 5 a second")
	bigPerConn := fs.Int("bignode-per-conn", 0, "big node: idle subscriptions per connection (0: 1, or as few as the file limit allows)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := func(part string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), part) }
	const cmd = "make bench-chat"
	lat := &table{title: "Chat: send-to-receive latency (sendMessage called → messageAdded received)",
		cols: []string{"Brook nodes", "subscribers", "rate", "messages", "deliveries", "p50", "p99", "max", "lost", "sendMessage request p99 / max"}}
	for _, f := range strings.Split(*nodeCounts, ",") {
		nodes, err := strconv.Atoi(f)
		if err != nil || nodes < 1 || !want("latency") {
			continue
		}
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat latency on %d node(s), %d subscribers\n", nodes, *subscribers)
		if err := chatLatency(ctx, h, lat, nodes, *subscribers, time.Duration(*seconds*float64(time.Second))); err != nil {
			return err
		}
	}
	lat.note("One messaging channel with %d members, each with its own WebSocket and messageAdded subscription "+
		"(alternating between the nodes with 2 nodes); one member sends 10 messages/s over HTTP. Latency runs from "+
		"just before the sendMessage request to the message read off each subscriber's socket (a bare "+
		"graphql-transport-ws reader per subscriber, one goroutine, no decoding); sendMessage publishes the event once it commits, so its request's own latency (last column) is part of every delivery's. "+
		"The load generator, Redis, PostgreSQL and the server(s) share the machine.", *subscribers+1)
	unread := &table{title: "Chat: unread counts",
		cols: []string{"measurement", "result"}}
	if want("unread") {
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat unread counts\n")
		if err := chatUnread(ctx, h, unread); err != nil {
			return err
		}
	}
	if want("slots") {
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat bookkeeping on one Redis and a Redis Cluster\n")
		if err := chatBookkeepingSlots(ctx, h, unread); err != nil {
			return err
		}
	}
	hist := &table{title: "Chat: message history page (`messages(last: 50) { user { name } reactionCounts }`)",
		cols: []string{"path", "concurrency", "pages/s", "p50", "p99"}}
	if want("history") {
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat history page\n")
		if err := chatHistory(ctx, h, hist, *postgraphile); err != nil {
			return err
		}
	}
	mem := &table{title: "Chat: memory per idle WebSocket subscription",
		cols: []string{"server", "connections", "server RSS before", "server RSS after", "per connection", "live heap per connection"}}
	// Last: the unread part, which calls the store from this process, had
	// p99 5.5 ms after it and 2.9-3.2 ms without it, even 15 s later. The
	// process keeps what 20,000 goroutines leave (the runtime never frees
	// their descriptors, and its collections walk them all).
	if want("memory") {
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat memory with %d idle subscriptions\n", *idle)
		if err := chatMemory(ctx, h, mem, *idle, "Brook: graphql-transport-ws, one messageAdded subscription", nil); err != nil {
			return err
		}
		// The heap floor (BROOK_GC_HEAP_FLOOR_MB) lets the heap grow to it
		// before a collection while the live heap is small: the same
		// connections, without it.
		settle()
		fmt.Fprintf(os.Stderr, "bench: chat memory with %d idle subscriptions, heap floor off\n", *idle)
		if err := chatMemory(ctx, h, mem, *idle, "Brook, the same, BROOK_GC_HEAP_FLOOR_MB=0 (heap floor off)", map[string]string{"BROOK_GC_HEAP_FLOOR_MB": "0"}); err != nil {
			return err
		}
		for _, f := range floorModes {
			fmt.Fprintf(os.Stderr, "bench: WebSocket floor (%s) with %d idle connections\n", f.mode, *idle)
			if err := wsFloor(ctx, mem, *idle, f.mode, f.what); err != nil {
				return err
			}
		}
	}
	mem.note("Brook's connections are each a graphql-transport-ws WebSocket with one messageAdded subscription on a livestream channel, then idle. " +
		"The second row is the same with the heap floor off (BROOK_GC_HEAP_FLOOR_MB, 128 MB by default: the heap may grow to it before a collection while the live heap is under half of it, which 10,000 connections' is not for long). " +
		"The bare rows are gorilla/websocket servers with nothing else (run by this benchmark's own binary): the floor of the transport Brook uses. " +
		"RSS delta divided by the connections, after a settle of 5 s; the live heap is the heap in use after a forced collection (pprof's HeapAlloc), read after the RSS, " +
		"before the connections and with them, divided by the connections: the collector's timing, which moves the RSS by several KB a connection from run to run, does not move it. Goroutine stacks (about 4 KB a connection in every row) are not in it.")
	big := &table{title: "Chat: a big node (idle channelEvents subscriptions on one node, then messages to a channel among them)",
		cols: []string{"subscriptions", "connections", "node RSS before", "node RSS with them / after delivery", "per subscription", "per connection",
			"messages × members", "p50", "p99", "max", "lost", "sendMessage request p99", "spread, first to last member", "load average"}}
	if want("bignode") {
		if err := bigNodeRows(ctx, h, big, bigNodeOptions{subscriptions: *bigSubs, members: *bigMembers, messages: *bigMessages, perConn: *bigPerConn}); err != nil {
			big.print(os.Stdout, cmd) // the rows measured before the failure
			return err
		}
	}
	lat.print(os.Stdout, cmd)
	big.print(os.Stdout, cmd)
	mem.print(os.Stdout, cmd)
	unread.print(os.Stdout, cmd)
	hist.print(os.Stdout, cmd)
	return nil
}

// settle lets what one part of a benchmark left behind pass before the
// next part measures: the data it wrote, which the kernel would otherwise
// write back during the next part (PostgreSQL's commits then wait on the
// disk: sendMessage requests of 100-180 ms, measured), and this process's
// garbage from thousands of connections (the unread counts part calls the
// store from here).
func settle() {
	syscall.Sync()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(3 * time.Second)
}

// chatUsers creates users through the API.
func chatUsers(ctx context.Context, h *harness, s *server, users []string) error {
	admin := s.Client(h.token("bench-admin", true))
	for i := 0; i < len(users); i += 100 {
		batch := make([]map[string]any, 0, 100)
		for _, u := range users[i:min(i+100, len(users))] {
			batch = append(batch, map[string]any{"id": u, "name": u})
		}
		if err := admin.Run(ctx, `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`, client.Vars{"u": batch}, nil); err != nil {
			return fmt.Errorf("create users: %w", err)
		}
	}
	return nil
}

func chatLatency(ctx context.Context, h *harness, t *table, nodes, subs int, d time.Duration) error {
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for i := 0; i < nodes; i++ {
		s, err := h.startServer(ctx, nil)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	tag := fmt.Sprintf("lat%d", nodes)
	sender := tag + "-sender"
	users := make([]string, subs)
	for i := range users {
		users[i] = fmt.Sprintf("%s-u%d", tag, i)
	}
	if err := chatUsers(ctx, h, servers[0], append(users, sender)); err != nil {
		return err
	}
	owner := servers[0].Client(h.token(sender, false))
	cid := "messaging:" + tag
	if err := owner.Run(ctx, `mutation($id: ID!) { createChannel(input: {type: "messaging", id: $id}) { id } }`, client.Vars{"id": tag}, nil); err != nil {
		return err
	}
	for i := 0; i < len(users); i += 100 {
		if err := owner.Run(ctx, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`,
			client.Vars{"c": cid, "u": users[i:min(i+100, len(users))]}, nil); err != nil {
			return err
		}
	}
	total := int(d.Seconds() * 10)
	sentAt := make([]atomic.Int64, total)
	lats := &latencies{}
	var got atomic.Int64
	// The sendMessage requests' own latency: the event is published when
	// the send has committed, so a slow commit delays every delivery.
	sends := &latencies{}
	var conns []io.Closer
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(32)
	for i, u := range users {
		g.Go(func() error {
			s := servers[i%nodes]
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conn, err := bareSubscribe(dctx, s.WebsocketURL(), client.AuthPayload(h.token(u, false)),
				`subscription($c: ID!) { messageAdded(channel: $c) { id text } }`, client.Vars{"c": cid},
				func(data []byte, at time.Time) {
					match := chatSeq.FindSubmatch(data)
					if match == nil || !bytes.Contains(data, []byte(`"type":"next"`)) {
						return
					}
					seq, _ := strconv.Atoi(string(match[1]))
					if seq < total {
						if sent := sentAt[seq].Load(); sent > 0 {
							lats.add(at.Sub(time.Unix(0, sent)))
							got.Add(1)
						}
					}
				})
			if err != nil {
				return err
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	time.Sleep(time.Second)
	fmt.Fprintf(os.Stderr, "bench: sending %d messages\n", total)
	cpu0, self0 := serversCPU(servers), selfCPU()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var swg sync.WaitGroup
	for seq := 0; seq < total; seq++ {
		<-tick.C
		swg.Add(1)
		go func() {
			defer swg.Done()
			sentAt[seq].Store(time.Now().UnixNano())
			defer func() { sends.add(time.Since(time.Unix(0, sentAt[seq].Load()))) }()
			if err := owner.Run(ctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
				client.Vars{"c": cid, "t": fmt.Sprintf("bench-%d", seq)}, nil); err != nil {
				fmt.Fprintln(os.Stderr, "bench: send:", err)
			}
		}()
	}
	swg.Wait()
	want := int64(total * subs)
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Where the CPU went: the server(s) or the load generator (this
	// process: 1,000 client sockets read and decoded on the same cores).
	fmt.Fprintf(os.Stderr, "bench: CPU during sending: server(s) %v, load generator %v, %d messages\n",
		(serversCPU(servers) - cpu0).Round(time.Millisecond), (selfCPU() - self0).Round(time.Millisecond), total)
	p50, p99, mx, n := lats.summary()
	_, sendP99, sendMax, _ := sends.summary()
	t.add(nodes, subs, "10/s", total, n, ms(p50), ms(p99), ms(mx), want-int64(n), ms(sendP99)+" / "+ms(sendMax))
	return nil
}

func chatMemory(ctx context.Context, h *harness, t *table, n int, what string, env map[string]string) error {
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["BROOK_RATE_IP"] = "off"
	if env["BROOK_PPROF_ADDR"] == "" {
		// The live heap per connection is read from the server's pprof
		// listener.
		pl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		env["BROOK_PPROF_ADDR"] = pl.Addr().String()
		pl.Close()
	}
	s, err := h.startServer(ctx, env)
	if err != nil {
		return err
	}
	defer s.Stop()
	owner := s.Client(h.token("mem-owner", false))
	if err := owner.Run(ctx, `mutation { createChannel(input: {type: "livestream", id: "mem"}) { id } }`, nil, nil); err != nil {
		return err
	}
	return memoryPerConnection(t, what, s.cmd.Process.Pid, "http://"+env["BROOK_PPROF_ADDR"]+"/debug/pprof/heap", n, func(i int) (io.Closer, error) {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		// A few users, each with many connections, as devices.
		conn, err := client.Dial(dctx, s.WebsocketURL(), client.DialOptions{Payload: client.AuthPayload(h.token(fmt.Sprintf("mem-%d", i%100), false)), Buffer: 4})
		if err != nil {
			return nil, err
		}
		sub, err := conn.Subscribe(`subscription { messageAdded(channel: "livestream:mem") { id } }`, nil)
		if err != nil {
			return conn, err
		}
		go func() {
			for range sub.C {
			}
		}()
		return conn, nil
	})
}

func chatUnread(ctx context.Context, h *harness, t *table) error {
	n, err := h.openNode(ctx, nil)
	if err != nil {
		return err
	}
	defer n.Close()
	st, db := n.Store, n.Store.DB()
	// A user in 1,000 channels, seeded with SQL: each channel has 1 to 50
	// messages of which the user read some; 5 channels are above the push
	// limit (read at read time).
	const user = "heavy"
	if _, err := db.Exec(ctx, `INSERT INTO users (id, name) VALUES ($1, $1), ('other', 'other') ON CONFLICT DO NOTHING`, user); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO channels (id, type, created_by, last_seq, last_pos, member_count)
		SELECT 'messaging:heavy-' || i, 'messaging', 'other', 1 + i % 50, 1 + i % 50, CASE WHEN i % 200 = 0 THEN 5000 ELSE 20 END
		FROM generate_series(1, 1000) AS i ON CONFLICT DO NOTHING`); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `
		INSERT INTO channel_members (channel_id, user_id, role, last_read_seq)
		SELECT 'messaging:heavy-' || i, $1, 'member', (i * 7) % (1 + i % 50)
		FROM generate_series(1, 1000) AS i ON CONFLICT DO NOTHING`, user); err != nil {
		return err
	}
	first, err := n.Chat.UnreadCounts(ctx, user) // rebuilds the counters
	if err != nil {
		return err
	}
	truth, _ := st.UnreadCountsFromDB(ctx, user)
	if first.TotalUnreadCount != truth.TotalUnreadCount {
		return fmt.Errorf("unread counts disagree: %d vs %d", first.TotalUnreadCount, truth.TotalUnreadCount)
	}
	lat := &latencies{}
	_ = n.State.Redis().ConfigResetStat(ctx).Err()
	self0 := selfCPU()
	for i := 0; i < 2000; i++ {
		start := time.Now()
		c, err := n.Chat.UnreadCounts(ctx, user)
		if err != nil {
			return err
		}
		lat.add(time.Since(start))
		if c.TotalUnreadCount != truth.TotalUnreadCount {
			return fmt.Errorf("unread counts changed")
		}
	}
	// CPU per call, which a loaded machine disturbs far less than latency:
	// the script in Redis (INFO commandstats) and this process's decoding.
	selfPer := (selfCPU() - self0) / 2000
	if info, err := n.State.Redis().Info(ctx, "commandstats").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
				fmt.Fprintf(os.Stderr, "bench: unreadCounts: redis %s\n", strings.TrimSpace(line))
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: unreadCounts: client CPU %v per call (Go: send, decode, sort)\n", selfPer)
	p50, p99, _, _ := lat.summary()
	t.add("unreadCounts for a user in 1,000 channels (store, one Redis round trip), p50 / p99", ms(p50)+" / "+ms(p99))
	s, err := h.startServer(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Stop()
	c := s.Client(h.token(user, false))
	lat = &latencies{}
	for i := 0; i < 1000; i++ {
		start := time.Now()
		if err := c.Run(ctx, `{ unreadCounts { totalUnreadCount unreadChannels channels { unreadCount } } }`, nil, nil); err != nil {
			return err
		}
		lat.add(time.Since(start))
	}
	p50, p99, _, _ = lat.summary()
	t.add("unreadCounts over HTTP (GraphQL, all 1,000 channels listed), p50 / p99", ms(p50)+" / "+ms(p99))
	t.add("unreadCounts from PostgreSQL alone (the Redis-down fallback), one call", timeOne(func() { _, _ = st.UnreadCountsFromDB(ctx, user) }))

	// Bookkeeping for 100-member channels.
	members := make([]string, 100)
	for i := range members {
		members[i] = fmt.Sprintf("bk-%d", i)
	}
	const msgs = 2000
	for _, conc := range []int{1, 8} {
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > msgs {
						return
					}
					ch := fmt.Sprintf("messaging:bk-%d", i%20)
					if _, err := n.State.BumpUnread(ctx, ch, i, members, &store.ReadPosition{ChannelID: ch, UserID: members[0], Seq: i}); err != nil {
						fmt.Fprintln(os.Stderr, "bench: bump:", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		t.add(fmt.Sprintf("bookkeeping, 100-member channels, Brook (one Lua script per message, watermarks, totals), %d at once", conc),
			fmt.Sprintf("%.0f messages/s", msgs/time.Since(start).Seconds()))
	}
	rdb := n.State.Redis()
	start := time.Now()
	const naive = 200
	for i := 0; i < naive; i++ {
		for _, m := range members[1:] {
			if err := rdb.HIncrBy(ctx, "naive:"+m, fmt.Sprintf("messaging:bk-%d", i%20), 1).Err(); err != nil {
				return err
			}
		}
	}
	t.add("bookkeeping, 100-member channels, naive (one HINCRBY per member per round trip)",
		fmt.Sprintf("%.0f messages/s", naive/time.Since(start).Seconds()))
	t.note("The user's 1,000 channels include 5 above CHAT_PUSH_MEMBER_LIMIT, counted at read time in the same round trip. " +
		"Bookkeeping rows: messages per second applied to Redis for channels of 100 members.")
	return nil
}

func timeOne(f func()) string {
	start := time.Now()
	f()
	return ms(time.Since(start))
}

func chatHistory(ctx context.Context, h *harness, t *table, postgraphile bool) error {
	s, err := h.startServer(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Stop()
	users := []string{"hist-a", "hist-b", "hist-c", "hist-d"}
	if err := chatUsers(ctx, h, s, users); err != nil {
		return err
	}
	owner := s.Client(h.token(users[0], false))
	if err := owner.Run(ctx, `mutation($m: [ID!]) { createChannel(input: {type: "messaging", id: "hist", members: $m}) { id } }`, client.Vars{"m": users[1:]}, nil); err != nil {
		return err
	}
	hn, err := h.openNode(ctx, nil)
	if err != nil {
		return err
	}
	defer hn.Close()
	st := hn.Store
	for i := 0; i < 200; i++ {
		m, _, err := st.SendMessage(ctx, "messaging:hist", users[i%4], store.SendAs{Member: true}, store.MessageInput{Text: fmt.Sprintf("history message %d", i)})
		if err != nil {
			return err
		}
		for j := 0; j < i%4; j++ {
			if _, err := st.AddMessageReaction(ctx, m.ID, users[j], []string{"like", "love", "haha"}[j%3]); err != nil {
				return err
			}
		}
	}
	q := `{ channel(id: "messaging:hist") { messages(last: 50) { edges { node { id text createdAt user { name } reactionCounts { kind count } } } } } }`
	c := s.Client(h.token(users[1], false))
	const conc = 8
	d := 5 * time.Second
	run := func(f func() error) (float64, *latencies, error) {
		lat := &latencies{}
		var n atomic.Int64
		var firstErr atomic.Value
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					start := time.Now()
					if err := f(); err != nil {
						firstErr.Store(err)
						return
					}
					lat.add(time.Since(start))
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, nil, err
		}
		return float64(n.Load()) / d.Seconds(), lat, nil
	}
	meter, err := newCPUMeter(ctx, h, s)
	if err != nil {
		return err
	}
	var cpuLines []string
	// measured is run with each process's CPU per page noted: on a shared
	// machine it moves far less than the page rate, and it says which
	// process a page's cost is in.
	measured := func(what string, f func() error) (float64, *latencies, error) {
		s0 := meter.sample()
		rate, lat, err := run(f)
		if err != nil {
			return 0, nil, err
		}
		line := meter.perPage(s0, int(rate*d.Seconds()+0.5))
		fmt.Fprintf(os.Stderr, "bench: %s: %.0f pages/s, CPU per page: %s\n", what, rate, line)
		cpuLines = append(cpuLines, what+": "+line)
		return rate, lat, nil
	}
	rate, lat, err := measured("Brook GraphQL over HTTP", func() error { return c.Run(ctx, q, nil, nil) })
	if err != nil {
		return err
	}
	brookRate := rate
	p50, p99, _, _ := lat.summary()
	t.add("Brook GraphQL over HTTP", conc, fmt.Sprintf("%.0f", rate), ms(p50), ms(p99))
	// The same rows by hand: one query, straight from pgx, no HTTP.
	sql := `
		SELECT m.id, m.text, m.created_at, u.name, coalesce(rc.counts, '[]')
		FROM (SELECT * FROM messages WHERE channel_id = $1 AND parent_id IS NULL ORDER BY pos DESC LIMIT 50) m
		JOIN users u ON u.id = m.user_id
		LEFT JOIN LATERAL (SELECT json_agg(json_build_object('kind', kind, 'count', n) ORDER BY n DESC, kind) AS counts
			FROM (SELECT kind, count(*) AS n FROM message_reactions WHERE message_id = m.id GROUP BY kind) k) rc ON true
		ORDER BY m.pos`
	rate, lat, err = measured("hand-written pgx query", func() error {
		rows, err := st.DB().Query(ctx, sql, "messaging:hist")
		if err != nil {
			return err
		}
		_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		return err
	})
	if err != nil {
		return err
	}
	p50, p99, _, _ = lat.summary()
	t.add("hand-written pgx query (no HTTP, no GraphQL)", conc, fmt.Sprintf("%.0f", rate), ms(p50), ms(p99))
	handRate := rate
	if postgraphile {
		if err := postGraphileRows(ctx, h, t, run, s, func() error { return c.Run(ctx, q, nil, nil) }); err != nil {
			return err
		}
	}
	t.note("200 messages with reactions in the channel; each page is the newest 50 with the author's name and reaction counts. "+
		"Brook runs 2 statements per page in one round trip (channel and membership; the messages with their authors and reaction counts) plus auth and rate limiting; "+
		"the load generator shares the %d cores. Brook reaches %.0f%% of the hand-written query's pages/s.", runtime.NumCPU(), 100*brookRate/handRate)
	t.note("CPU per page by process (the postmaster and its backends, Redis, Brook's server, the load generator), from /proc around each part: %s.", strings.Join(cpuLines, "; "))
	return nil
}

// cpuOrZero is the server's CPU time so far, zero where /proc does not say.
func (s *server) cpuOrZero() time.Duration {
	d, _ := s.CPUTime()
	return d
}

// serversCPU is the CPU time the servers have used so far.
func serversCPU(servers []*server) time.Duration {
	var d time.Duration
	for _, s := range servers {
		c, _ := s.CPUTime()
		d += c
	}
	return d
}

// selfCPU is the CPU time this process (the load generator) has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
