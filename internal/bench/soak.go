package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brookhq/brook/internal/client"
)

func init() { benchmarks["soak"] = benchSoak }

// soak is `make soak`: mixed traffic (feeds, chat, calls) against Brook
// server processes for a long time, to find what grows or breaks with time
// rather than with load: goroutines, memory, errors, latency.
type soak struct {
	h       *harness
	servers []*server
	rng     *rand.Rand
	rngMu   sync.Mutex

	chatChannels [][]string // members of each messaging channel
	chatIDs      []string
	feedUsers    []string
	posters      []string
	calls        [][]*soakPeer
	callIDs      []string
	conns        atomic.Int64

	ops        map[string]*latencies
	errs       map[string]*atomic.Int64
	firstErrs  sync.Map // op -> first error text
	delivered  map[string]*atomic.Int64
	deliveries map[string]*latencies
	measuring  atomic.Bool
	skipped    atomic.Int64
}

// soakPeer is a call participant with its own WebSocket.
type soakPeer struct {
	mu    sync.Mutex
	user  string
	cid   string
	pid   string
	srv   *server
	http  *client.Client
	conn  *client.Conn
	token string
}

var soakSentAt = regexp.MustCompile(`sent=(\d+)`)

// benchSoak runs the soak. Flags go after "--":
// go run ./internal/bench soak -- -duration 1m -connections 400.
func benchSoak(ctx context.Context, h *harness, args []string) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	duration := fs.Duration("duration", 10*time.Minute, "how long the measured traffic runs, after the warm-up")
	warmup := fs.Duration("warmup", time.Minute, "traffic before the start figures are taken")
	connections := fs.Int("connections", 2000, "WebSocket connections, each with a subscription (60% chat, 20% feeds, 20% calls)")
	nodes := fs.Int("nodes", 2, "Brook server processes")
	rate := fs.Int("rate", 100, "operations per second over HTTP, mixed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &soak{h: h, rng: rand.New(rand.NewPCG(7, 7)),
		ops: map[string]*latencies{}, errs: map[string]*atomic.Int64{},
		delivered: map[string]*atomic.Int64{}, deliveries: map[string]*latencies{}}
	for _, op := range soakOps {
		s.ops[op.name], s.errs[op.name] = &latencies{}, &atomic.Int64{}
	}
	for _, k := range []string{"message", "signal", "feed"} {
		s.delivered[k], s.deliveries[k] = &atomic.Int64{}, &latencies{}
	}
	env := map[string]string{"SFU_NODES": "eu-1@eu-west=wss://sfu-eu-1.example:443;us-1@us-east=wss://sfu-us-1.example:443"}
	for i := 0; i < *nodes; i++ {
		srv, err := h.startServer(ctx, env)
		if err != nil {
			return err
		}
		s.servers = append(s.servers, srv)
	}
	fmt.Fprintf(os.Stderr, "soak: setting up %d connections on %d nodes\n", *connections, *nodes)
	if err := s.setup(ctx, *connections); err != nil {
		return err
	}
	defer s.close()

	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	done := make(chan struct{})
	go func() { defer close(done); s.traffic(trafficCtx, *rate) }()

	fmt.Fprintf(os.Stderr, "soak: warm-up %s\n", *warmup)
	if !sleepCtx(ctx, *warmup) {
		return ctx.Err()
	}
	start, err := s.snapshot()
	if err != nil {
		return err
	}
	s.measuring.Store(true)
	began := time.Now()
	fmt.Fprintf(os.Stderr, "soak: measuring for %s\n", *duration)
	for elapsed := time.Duration(0); elapsed < *duration; {
		step := min(time.Minute, *duration-elapsed)
		if !sleepCtx(ctx, step) {
			return ctx.Err()
		}
		elapsed += step
		errs := int64(0)
		for _, e := range s.errs {
			errs += e.Load()
		}
		fmt.Fprintf(os.Stderr, "soak: %s of %s, %d connections, %d errors\n", elapsed, *duration, s.conns.Load(), errs)
	}
	s.measuring.Store(false)
	end, err := s.snapshot()
	if err != nil {
		return err
	}
	stopTraffic()
	<-done
	measured := time.Since(began)

	command := "make soak"
	if len(args) > 0 {
		command = "go run ./internal/bench soak -- " + joinArgs(args)
	}
	res := &table{title: "Soak: goroutines and memory after the warm-up and at the end",
		cols: []string{"node", "goroutines start", "goroutines end", "Go heap in use start", "Go heap in use end", "RSS start", "RSS end"}}
	for i := range s.servers {
		a, b := start[i], end[i]
		res.add(i+1, a.goroutines, b.goroutines, mb(a.heap), mb(b.heap), mb(a.rss), mb(b.rss))
	}
	res.note("%d WebSocket connections with one subscription each (%d chat members in %d messaging channels, %d feed readers, %d call participants in %d calls), "+
		"alternating between %d nodes; %d operations/s over HTTP; %s of warm-up, then %s measured. Goroutines and heap from each server's /metrics "+
		"(go_goroutines, go_memstats_heap_inuse_bytes), RSS from /proc.",
		*connections, soakCount(s.chatChannels), len(s.chatChannels), len(s.feedUsers), soakPeers(s.calls), len(s.calls),
		*nodes, *rate, *warmup, measured.Round(time.Second))
	opsT := &table{title: "Soak: operations and deliveries during the measured period",
		cols: []string{"operation", "count", "errors", "p50", "p99", "max"}}
	totalErrs := int64(0)
	for _, op := range soakOps {
		p50, p99, mx, n := s.ops[op.name].summary()
		e := s.errs[op.name].Load()
		totalErrs += e
		if op.weight == 0 {
			opsT.add("subscriptions ended by an error", "", e, "", "", "")
			continue
		}
		opsT.add(op.name, n, e, ms(p50), ms(p99), ms(mx))
	}
	for _, k := range []string{"message", "signal", "feed"} {
		p50, p99, mx, _ := s.deliveries[k].summary()
		opsT.add(k+" delivered (sent → received on a subscription)", s.delivered[k].Load(), "", ms(p50), ms(p99), ms(mx))
	}
	opsT.note("Errors in total: %d; operations skipped: %d. Operations are started at a fixed rate, each with a 30 s timeout (a timeout counts as an error); "+
		"an operation that finds 256 already in flight is skipped, so an overloaded machine shows in the counts rather than in a growing queue. "+
		"Deliveries are timed from just before the operation's request to the event read off a subscriber's socket.", totalErrs, s.skipped.Load())
	s.firstErrs.Range(func(k, v any) bool {
		opsT.note("First %s error: %s", k, v)
		return true
	})
	res.print(os.Stdout, command)
	opsT.print(os.Stdout, command)
	return nil
}

func joinArgs(args []string) string {
	out := ""
	for i, a := range args {
		if i > 0 {
			out += " "
		}
		out += a
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func mb(b float64) string { return fmt.Sprintf("%.1f MB", b/(1<<20)) }

func soakCount(groups [][]string) int {
	n := 0
	for _, g := range groups {
		n += len(g)
	}
	return n
}

func soakPeers(calls [][]*soakPeer) int {
	n := 0
	for _, c := range calls {
		n += len(c)
	}
	return n
}

// resources is one node's figures at one moment.
type resources struct {
	goroutines, heap, rss float64
}

func (s *soak) snapshot() ([]resources, error) {
	out := make([]resources, len(s.servers))
	for i, srv := range s.servers {
		g, err := metric(srv, "go_goroutines")
		if err != nil {
			return nil, err
		}
		heap, err := metric(srv, "go_memstats_heap_inuse_bytes")
		if err != nil {
			return nil, err
		}
		rss, err := srv.RSS()
		if err != nil {
			return nil, err
		}
		out[i] = resources{goroutines: g, heap: heap, rss: float64(rss)}
	}
	return out, nil
}

func (s *soak) intn(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

func (s *soak) server(i int) *server { return s.servers[i%len(s.servers)] }

// setup creates the users, channels, follows and calls, and opens every
// connection with its subscription.
func (s *soak) setup(ctx context.Context, connections int) error {
	nChat := connections * 6 / 10
	nFeed := connections * 2 / 10
	users := make([]string, 0, connections+20)
	for i := 0; i < connections; i++ {
		users = append(users, fmt.Sprintf("soak-u%d", i))
	}
	for i := 0; i < 20; i++ {
		s.posters = append(s.posters, fmt.Sprintf("soak-poster%d", i))
	}
	if err := chatUsers(ctx, s.h, s.servers[0], append(append([]string{}, users...), s.posters...)); err != nil {
		return err
	}
	// Chat: messaging channels of 50 members, every member subscribed.
	chatUsersList, feedList, callList := users[:nChat], users[nChat:nChat+nFeed], users[nChat+nFeed:]
	for i := 0; i < len(chatUsersList); i += 50 {
		members := chatUsersList[i:min(i+50, len(chatUsersList))]
		owner := s.servers[0].Client(s.h.token(members[0], false))
		var out struct{ CreateChannel struct{ ID string } }
		if err := owner.Run(ctx, `mutation($id: ID!, $m: [ID!]) { createChannel(input: {type: "messaging", id: $id, members: $m}) { id } }`,
			client.Vars{"id": fmt.Sprintf("soak-%d", i/50), "m": members[1:]}, &out); err != nil {
			return fmt.Errorf("create channel: %w", err)
		}
		s.chatChannels = append(s.chatChannels, members)
		s.chatIDs = append(s.chatIDs, out.CreateChannel.ID)
	}
	// Feeds: each reader follows 3 of the posters and watches its timeline.
	s.feedUsers = feedList
	if err := parallel(ctx, 16, len(feedList), func(i int) error {
		u := feedList[i]
		c := s.server(i).Client(s.h.token(u, false))
		for k := 0; k < 3; k++ {
			target := "user:" + s.posters[(i+k*7)%len(s.posters)]
			if err := c.Run(ctx, `mutation($s: ID!, $t: ID!) { follow(source: $s, target: $t) { createdAt } }`,
				client.Vars{"s": "timeline:" + u, "t": target}, nil); err != nil {
				return fmt.Errorf("follow: %w", err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	// Calls of 4 participants.
	for i := 0; i < len(callList); i += 4 {
		members := callList[i:min(i+4, len(callList))]
		if len(members) < 2 {
			break
		}
		host := s.servers[0].Client(s.h.token(members[0], false))
		var out struct{ CreateCall struct{ ID string } }
		if err := host.Run(ctx, `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
			client.Vars{"in": map[string]any{"type": "default", "id": fmt.Sprintf("soak-call-%d", i/4), "members": members[1:]}}, &out); err != nil {
			return fmt.Errorf("create call: %w", err)
		}
		var peers []*soakPeer
		for j, u := range members {
			p := &soakPeer{user: u, cid: out.CreateCall.ID, token: s.h.token(u, false), srv: s.server(i + j)}
			p.http = p.srv.Client(p.token)
			peers = append(peers, p)
		}
		s.calls = append(s.calls, peers)
		s.callIDs = append(s.callIDs, out.CreateCall.ID)
	}

	// Connections.
	type job struct {
		node int
		fn   func(node int) error
	}
	var jobs []job
	for ci, members := range s.chatChannels {
		for j, u := range members {
			tok, channel := s.h.token(u, false), s.chatIDs[ci]
			jobs = append(jobs, job{ci + j, func(node int) error { return s.subscribeChat(ctx, s.server(node), tok, channel) }})
		}
	}
	for i, u := range s.feedUsers {
		tok := s.h.token(u, false)
		jobs = append(jobs, job{i, func(node int) error { return s.subscribeFeed(ctx, s.server(node), tok, "timeline:"+u) }})
	}
	for _, peers := range s.calls {
		for _, p := range peers {
			jobs = append(jobs, job{0, func(int) error { return s.join(ctx, p) }})
		}
	}
	return parallel(ctx, 32, len(jobs), func(i int) error { return jobs[i].fn(jobs[i].node) })
}

// parallel runs f(0..n-1) with at most width at once and returns the first error.
func parallel(ctx context.Context, width, n int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var first atomic.Value
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				first.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

func (s *soak) dial(ctx context.Context, srv *server, token string) (*client.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, srv.WebsocketURL(), client.DialOptions{Payload: client.AuthPayload(token), Buffer: 1024})
	if err == nil {
		s.conns.Add(1)
		go func() { <-c.Done(); s.conns.Add(-1) }()
	}
	return c, err
}

// consume reads a subscription's messages, timing those that carry a
// sent= timestamp, until it ends.
func (s *soak) consume(sub *client.Subscription, kind string) {
	for m := range sub.C {
		if m.Type != "next" {
			if m.Type == "error" && s.measuring.Load() {
				s.errs["subscription"].Add(1)
				s.firstErrs.LoadOrStore("subscription", string(m.Payload))
			}
			continue
		}
		if !s.measuring.Load() {
			continue
		}
		if match := soakSentAt.FindSubmatch(m.Payload); match != nil {
			ns, _ := strconv.ParseInt(string(match[1]), 10, 64)
			s.deliveries[kind].add(m.Received.Sub(time.Unix(0, ns)))
			s.delivered[kind].Add(1)
		}
	}
}

func (s *soak) subscribeChat(ctx context.Context, srv *server, token, channel string) error {
	c, err := s.dial(ctx, srv, token)
	if err != nil {
		return err
	}
	sub, err := c.Subscribe(`subscription($c: ID!) { messageAdded(channel: $c) { id text } }`, client.Vars{"c": channel})
	if err != nil {
		return err
	}
	go s.consume(sub, "message")
	return nil
}

func (s *soak) subscribeFeed(ctx context.Context, srv *server, token, feed string) error {
	c, err := s.dial(ctx, srv, token)
	if err != nil {
		return err
	}
	sub, err := c.Subscribe(`subscription($f: ID!) { feedUpdated(feed: $f) { added { id object } removed } }`, client.Vars{"f": feed})
	if err != nil {
		return err
	}
	go s.consume(sub, "feed")
	return nil
}

// join joins the peer's call and subscribes to its events.
func (s *soak) join(ctx context.Context, p *soakPeer) error {
	pid, err := callsJoin(ctx, p.http, p.cid)
	if err != nil {
		return err
	}
	c, err := s.dial(ctx, p.srv, p.token)
	if err != nil {
		return err
	}
	sub, err := c.Subscribe(`subscription($p: ID!) { callEvents(participant: $p) { type signal { payload } } }`, client.Vars{"p": pid})
	if err != nil {
		c.Close()
		return err
	}
	go s.consume(sub, "signal")
	p.mu.Lock()
	p.pid, p.conn = pid, c
	p.mu.Unlock()
	return nil
}

func (s *soak) close() {
	for _, peers := range s.calls {
		for _, p := range peers {
			if p.conn != nil {
				p.conn.Close()
			}
		}
	}
}

// soakOps are the operations of the mixed traffic and their weights.
var soakOps = []struct {
	name   string
	weight int
}{
	{"sendMessage", 30}, {"addActivity", 10}, {"timeline read", 15}, {"unreadCounts", 10},
	{"sendSignal", 30}, {"leaveCall + joinCall", 5}, {"subscription", 0},
}

// traffic sends rate operations per second, each in its own goroutine (at
// most 256 at once), until ctx ends.
func (s *soak) traffic(ctx context.Context, rate int) {
	total := 0
	for _, op := range soakOps {
		total += op.weight
	}
	sem := make(chan struct{}, 256)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pick := s.intn(total)
		name := ""
		for _, op := range soakOps {
			if pick < op.weight {
				name = op.name
				break
			}
			pick -= op.weight
		}
		select {
		case sem <- struct{}{}:
		default:
			if s.measuring.Load() {
				s.skipped.Add(1)
			}
			continue // the system is saturated: skip rather than pile up
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			octx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			t0 := time.Now()
			err := s.do(octx, name)
			if ctx.Err() != nil || !s.measuring.Load() {
				return
			}
			if err != nil {
				s.errs[name].Add(1)
				s.firstErrs.LoadOrStore(name, err.Error())
				return
			}
			s.ops[name].add(time.Since(t0))
		}()
	}
}

func (s *soak) do(ctx context.Context, op string) error {
	sent := fmt.Sprintf("sent=%d", time.Now().UnixNano())
	switch op {
	case "sendMessage":
		ci := s.intn(len(s.chatChannels))
		members := s.chatChannels[ci]
		u := members[s.intn(len(members))]
		return s.server(s.intn(len(s.servers))).Client(s.h.token(u, false)).Run(ctx,
			`mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
			client.Vars{"c": s.chatIDs[ci], "t": "soak " + sent}, nil)
	case "addActivity":
		u := s.posters[s.intn(len(s.posters))]
		return s.server(s.intn(len(s.servers))).Client(s.h.token(u, false)).Run(ctx,
			`mutation($f: ID!, $o: String!) { addActivity(feed: $f, input: {verb: "post", object: $o}) { id } }`,
			client.Vars{"f": "user:" + u, "o": sent}, nil)
	case "timeline read":
		u := s.feedUsers[s.intn(len(s.feedUsers))]
		return s.server(s.intn(len(s.servers))).Client(s.h.token(u, false)).Run(ctx,
			`query($f: ID!) { feed(id: $f) { activities(first: 20) { edges { node { id verb object actor { id name } } } } } }`,
			client.Vars{"f": "timeline:" + u}, nil)
	case "unreadCounts":
		members := s.chatChannels[s.intn(len(s.chatChannels))]
		u := members[s.intn(len(members))]
		return s.server(s.intn(len(s.servers))).Client(s.h.token(u, false)).Run(ctx,
			`{ unreadCounts { totalUnreadCount channels { unreadCount } } }`, nil, nil)
	case "sendSignal":
		peers := s.calls[s.intn(len(s.calls))]
		from, to := peers[s.intn(len(peers))], peers[s.intn(len(peers))]
		if from == to {
			to = peers[(slicesIndex(peers, from)+1)%len(peers)]
		}
		from.mu.Lock()
		fp, c := from.pid, from.http
		from.mu.Unlock()
		to.mu.Lock()
		tp := to.pid
		to.mu.Unlock()
		if fp == "" || tp == "" {
			return nil // mid-rejoin
		}
		err := c.Run(ctx, `mutation($p: ID!, $to: ID!, $pl: String!) { sendSignal(participant: $p, to: $to, kind: ICE_CANDIDATE, payload: $pl) { id } }`,
			client.Vars{"p": fp, "to": tp, "pl": `{"candidate":"candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host","` + sent + `"}`}, nil)
		var r client.Error
		if errors.As(err, &r) && r.Code() == "NOT_FOUND" {
			return nil // the other participant was rejoining: its id changed
		}
		return err
	case "leaveCall + joinCall":
		peers := s.calls[s.intn(len(s.calls))]
		p := peers[s.intn(len(peers))]
		p.mu.Lock()
		pid, conn := p.pid, p.conn
		p.pid = ""
		p.mu.Unlock()
		if pid == "" {
			return nil // another rejoin of this peer is under way
		}
		if err := p.http.Run(ctx, `mutation($p: ID!) { leaveCall(participant: $p) }`, client.Vars{"p": pid}, nil); err != nil {
			p.mu.Lock()
			p.pid = pid
			p.mu.Unlock()
			return err
		}
		if conn != nil {
			conn.Close()
		}
		return s.join(ctx, p)
	}
	return fmt.Errorf("unknown operation %q", op)
}

func slicesIndex(peers []*soakPeer, p *soakPeer) int {
	for i, q := range peers {
		if q == p {
			return i
		}
	}
	return 0
}
