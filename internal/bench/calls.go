package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/brookhq/brook/internal/client"
)

func init() { benchmarks["calls"] = benchCalls }

// callsBench is one run of the calls benchmark against one or two Brook
// server processes: 200 live calls of 2 to 8 participants, each
// participant with its own WebSocket and callEvents subscription.
type callsBench struct {
	h       *harness
	servers []*server
	tag     string
	calls   [][]*callsPeer // the participants of each call
	peers   []*callsPeer

	// sentAt[seq] is when the signal with that sequence number was sent
	// (Unix ns); the receiving peer turns it into a latency.
	sentAt   []atomic.Int64
	got      atomic.Int64
	lat      *latencies
	tracking atomic.Bool
}

// callsPeer is one participant: a user on a server with a subscription.
type callsPeer struct {
	user, token, pid string
	srv              *server
	http             *client.Client
	conn             *client.Conn
}

// callsSignalSeq finds a signal's sequence number in a callEvents message,
// where the payload is a JSON string inside the JSON message.
var callsSignalSeq = regexp.MustCompile(`seq\\":(\d+)`)

// benchCalls is `make bench-calls`. Flags go after "--":
// go run ./internal/bench calls -- -calls 20 -seconds 1 -rates 100,500.
func benchCalls(ctx context.Context, h *harness, args []string) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	nCalls := fs.Int("calls", 200, "live calls")
	seconds := fs.Float64("seconds", 5, "seconds per signal rate")
	ratesFlag := fs.String("rates", "100,1000,5000", "signal rates per second")
	transports := fs.String("transports", "http", "how sendSignal is sent: http, websocket or http,websocket")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rates []int
	for _, r := range strings.Split(*ratesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number", r)
		}
		rates = append(rates, n)
	}
	const cmd = "make bench-calls"
	relay := &table{title: "Calls: signal relay latency (sendSignal called → callEvents message received)",
		cols: []string{"Brook nodes", "sendSignal over", "target rate", "achieved rate", "signals", "p50", "p99", "max", "lost", "server CPU per 1,000 signals", "load generator CPU per 1,000 signals"}}
	joins := &table{title: fmt.Sprintf("Calls: joinCall and leaveCall latency with %d live calls", *nCalls),
		cols: []string{"Brook nodes", "joins", "joinCall p50", "joinCall p99", "joinCall max", "leaveCall p50", "leaveCall p99"}}
	for _, nodes := range []int{1, 2} {
		fmt.Fprintf(os.Stderr, "bench: calls on %d node(s): setting up %d calls\n", nodes, *nCalls)
		b := &callsBench{h: h, tag: fmt.Sprintf("n%d", nodes)}
		if err := b.setup(ctx, nodes, *nCalls); err != nil {
			b.close()
			return err
		}
		if err := b.measureJoins(ctx, joins, nodes); err != nil {
			b.close()
			return err
		}
		for _, transport := range strings.Split(*transports, ",") {
			if transport != "http" && transport != "websocket" {
				b.close()
				return fmt.Errorf("-transports: %q is neither http nor websocket", transport)
			}
			for _, rate := range rates {
				fmt.Fprintf(os.Stderr, "bench: calls on %d node(s): %d signals/s over %s\n", nodes, rate, transport)
				if err := b.measureRelay(ctx, relay, nodes, transport, rate, time.Duration(*seconds*float64(time.Second))); err != nil {
					b.close()
					return err
				}
			}
		}
		b.close()
	}
	relay.note("%d calls of 2 to 8 participants (%d participants), each participant with its own WebSocket "+
		"subscription; each signal goes from a random participant to another of the same call, with an "+
		"ICE-candidate-sized payload, over HTTP (a POST per signal) or over the sender's own WebSocket (a "+
		"graphql-transport-ws operation beside its callEvents subscription). With 2 nodes participants alternate between the nodes, so about half "+
		"the signals cross nodes through Redis. The load generator, Redis, PostgreSQL and the server(s) share the machine; "+
		"CPU is the server processes' user+system time.", *nCalls, callsParticipants(*nCalls))
	joins.note("Each join adds a second device of a member to one of the live calls; its leave follows. Concurrency 8.")
	relay.print(os.Stdout, cmd)
	joins.print(os.Stdout, cmd)
	return callsAllocs(ctx, cmd)
}

func callsParticipants(calls int) int {
	n := 0
	for i := 0; i < calls; i++ {
		n += 2 + i%7
	}
	return n
}

func (b *callsBench) close() {
	for _, p := range b.peers {
		if p.conn != nil {
			_ = p.conn.Close()
		}
	}
	for _, s := range b.servers {
		s.Stop()
	}
}

// setup starts the servers, creates the users and calls, joins every
// participant and subscribes it to callEvents.
func (b *callsBench) setup(ctx context.Context, nodes, nCalls int) error {
	env := map[string]string{
		"SFU_NODES": "eu-1@eu-west=wss://sfu-eu-1.example:443;eu-2@eu-west=wss://sfu-eu-2.example:443;us-1@us-east=wss://sfu-us-1.example:443",
	}
	for i := 0; i < nodes; i++ {
		s, err := b.h.startServer(ctx, env)
		if err != nil {
			return err
		}
		b.servers = append(b.servers, s)
	}
	admin := b.servers[0].Client(b.h.token("bench-admin", true))
	total := callsParticipants(nCalls)
	users := make([]string, total)
	for i := range users {
		users[i] = fmt.Sprintf("%s-u%d", b.tag, i)
	}
	for i := 0; i < total; i += 100 {
		batch := make([]map[string]any, 0, 100)
		for _, u := range users[i:min(i+100, total)] {
			batch = append(batch, map[string]any{"id": u, "name": u})
		}
		if err := admin.Run(ctx, `mutation($u: [UserInput!]!) { upsertUsers(users: $u) { id } }`, client.Vars{"u": batch}, nil); err != nil {
			return fmt.Errorf("create users: %w", err)
		}
	}
	next := 0
	b.calls = make([][]*callsPeer, nCalls)
	for c := 0; c < nCalls; c++ {
		size := 2 + c%7
		members := users[next : next+size]
		next += size
		host := b.servers[0].Client(b.h.token(members[0], false))
		var out struct{ CreateCall struct{ ID string } }
		if err := host.Run(ctx, `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
			client.Vars{"in": map[string]any{"type": "default", "id": fmt.Sprintf("%s-call-%d", b.tag, c), "members": members[1:]}}, &out); err != nil {
			return fmt.Errorf("create call: %w", err)
		}
		for _, u := range members {
			p := &callsPeer{user: u, token: b.h.token(u, false)}
			p.srv = b.servers[len(b.peers)%nodes]
			p.http = p.srv.Client(p.token)
			b.calls[c] = append(b.calls[c], p)
			b.peers = append(b.peers, p)
		}
		// Join in parallel: every call's session is started by whichever
		// join gets there first.
		var wg sync.WaitGroup
		errs := make(chan error, size)
		for _, p := range b.calls[c] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pid, err := callsJoin(ctx, p.http, out.CreateCall.ID)
				p.pid = pid
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return fmt.Errorf("join: %w", err)
			}
		}
	}
	// One WebSocket per participant, as one device each.
	var g errgroup.Group
	g.SetLimit(32)
	for _, p := range b.peers {
		g.Go(func() error { return b.subscribe(ctx, p) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	// Give the subscriptions a moment to be live everywhere.
	time.Sleep(500 * time.Millisecond)
	return nil
}

func callsJoin(ctx context.Context, c *client.Client, cid string) (string, error) {
	var out struct {
		JoinCall struct{ Participant struct{ ID string } }
	}
	err := c.Run(ctx, `mutation($id: ID!) { joinCall(id: $id) { participant { id } session { id sfu { id } } others { id } } }`, client.Vars{"id": cid}, &out)
	return out.JoinCall.Participant.ID, err
}

func (b *callsBench) subscribe(ctx context.Context, p *callsPeer) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := client.Dial(dctx, p.srv.WebsocketURL(), client.DialOptions{Payload: client.AuthPayload(p.token), Buffer: 4096})
	if err != nil {
		return err
	}
	p.conn = conn
	sub, err := conn.Subscribe(`subscription($p: ID!) { callEvents(participant: $p) { type signal { payload } } }`, client.Vars{"p": p.pid})
	if err != nil {
		return err
	}
	go func() {
		for m := range sub.C {
			if m.Type != "next" || !b.tracking.Load() {
				continue
			}
			match := callsSignalSeq.FindSubmatch(m.Payload)
			if match == nil {
				continue
			}
			seq, _ := strconv.Atoi(string(match[1]))
			if seq < len(b.sentAt) {
				if sent := b.sentAt[seq].Load(); sent > 0 {
					b.lat.add(m.Received.Sub(time.Unix(0, sent)))
					b.got.Add(1)
				}
			}
		}
	}()
	return nil
}

// measureJoins times joins of a second device into live calls, and their leaves.
func (b *callsBench) measureJoins(ctx context.Context, t *table, nodes int) error {
	const joinsN, concurrency = 400, 8
	var joinLat, leaveLat latencies
	work := make(chan int)
	var wg sync.WaitGroup
	// The first failure; atomic.Value would panic on errors of different types.
	var (
		failMu sync.Mutex
		failed error
	)
	fail := func(err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if failed == nil {
			failed = err
		}
	}
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := b.calls[i%len(b.calls)]
				p := c[i%len(c)]
				cid := fmt.Sprintf("default:%s-call-%d", b.tag, i%len(b.calls))
				start := time.Now()
				pid, err := callsJoin(ctx, p.http, cid)
				if err != nil {
					fail(err)
					continue
				}
				joinLat.add(time.Since(start))
				start = time.Now()
				if err := p.http.Run(ctx, `mutation($p: ID!) { leaveCall(participant: $p) }`, client.Vars{"p": pid}, nil); err != nil {
					fail(err)
					continue
				}
				leaveLat.add(time.Since(start))
			}
		}()
	}
	for i := 0; i < joinsN; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if failed != nil {
		return fmt.Errorf("join/leave: %w", failed)
	}
	jp50, jp99, jmax, n := joinLat.summary()
	lp50, lp99, _, _ := leaveLat.summary()
	t.add(nodes, n, ms(jp50), ms(jp99), ms(jmax), ms(lp50), ms(lp99))
	return nil
}

// measureRelay sends signals at rate for d, open loop, and records the
// latency of each from the send to its arrival at the addressee.
func (b *callsBench) measureRelay(ctx context.Context, t *table, nodes int, transport string, rate int, d time.Duration) error {
	total := int(float64(rate) * d.Seconds())
	b.sentAt = make([]atomic.Int64, total)
	b.got.Store(0)
	b.lat = &latencies{d: make([]time.Duration, 0, total)}
	b.tracking.Store(true)
	defer b.tracking.Store(false)
	cpuBefore, err := b.cpu()
	if err != nil {
		return err
	}
	selfBefore := selfCPU()
	const senders = 128
	work := make(chan int, senders)
	var wg sync.WaitGroup
	var sendErrs atomic.Int64
	var lastErr atomic.Value
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(rate)))
			for seq := range work {
				c := b.calls[rng.IntN(len(b.calls))]
				i := rng.IntN(len(c))
				j := (i + 1 + rng.IntN(len(c)-1)) % len(c)
				from, to := c[i], c[j]
				payload := `{"seq":` + strconv.Itoa(seq) + `,"candidate":"candidate:1966762134 1 udp 2130706431 10.0.0.1 52153 typ host","sdpMid":"0","sdpMLineIndex":0}`
				vars := client.Vars{"p": from.pid, "to": to.pid, "pl": payload}
				b.sentAt[seq].Store(time.Now().UnixNano())
				var err error
				if transport == "websocket" {
					err = from.conn.Run(ctx, callsSendSignal, vars, nil)
				} else {
					err = from.http.Run(ctx, callsSendSignal, vars, nil)
				}
				if err != nil {
					sendErrs.Add(1)
					lastErr.Store(err)
				}
			}
		}()
	}
	start := time.Now()
	for seq := 0; seq < total; seq++ {
		// Open loop: signal seq is due at start + seq/rate.
		if wait := time.Until(start.Add(time.Duration(float64(seq) / float64(rate) * float64(time.Second)))); wait > 0 {
			time.Sleep(wait)
		}
		work <- seq
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	// Let the last signals arrive.
	deadline := time.Now().Add(5 * time.Second)
	for b.got.Load() < int64(total)-sendErrs.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cpuAfter, err := b.cpu()
	if err != nil {
		return err
	}
	selfUsed := selfCPU() - selfBefore
	if n := sendErrs.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d sendSignal errors, the last: %v\n", n, lastErr.Load())
	}
	p50, p99, mx, n := b.lat.summary()
	cpuPer1000, selfPer1000 := time.Duration(0), time.Duration(0)
	if n > 0 {
		cpuPer1000 = (cpuAfter - cpuBefore) * 1000 / time.Duration(n)
		selfPer1000 = selfUsed * 1000 / time.Duration(n)
	}
	t.add(nodes, transport, fmt.Sprintf("%d/s", rate), fmt.Sprintf("%.0f/s", float64(total)/elapsed.Seconds()), n,
		ms(p50), ms(p99), ms(mx), int64(total)-int64(n), fmt.Sprintf("%.0f ms", float64(cpuPer1000.Microseconds())/1000),
		fmt.Sprintf("%.0f ms", float64(selfPer1000.Microseconds())/1000))
	return nil
}

// callsSendSignal is the mutation every signal is.
const callsSendSignal = `mutation($p: ID!, $to: ID!, $pl: String!) { sendSignal(participant: $p, to: $to, kind: ICE_CANDIDATE, payload: $pl) { id } }`

func (b *callsBench) cpu() (time.Duration, error) {
	var total time.Duration
	for _, s := range b.servers {
		c, err := s.CPUTime()
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

// callsAllocs runs the Go benchmark of the signaling hot path and prints
// its allocations per relayed signal.
func callsAllocs(ctx context.Context, command string) error {
	fmt.Fprintln(os.Stderr, "bench: go test -bench BenchmarkCallSignalRelay ./calls")
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkCallSignalRelay$", "-benchmem",
		"-benchtime", "20000x", "-count", "3", "./calls")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	t := &table{title: "Calls: the signaling hot path in process (Go benchmark)",
		cols: []string{"run", "time per relayed signal", "bytes allocated per signal", "allocations per signal"}}
	// A log line may land between the benchmark's name and its figures.
	re := regexp.MustCompile(`(\d+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op`)
	runs := 0
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		runs++
		ns, _ := strconv.Atoi(m[1])
		t.add(runs, fmt.Sprintf("%.1f µs", float64(ns)/1000), m[2]+" B", m[3])
	}
	if runs == 0 {
		return errors.New("BenchmarkCallSignalRelay printed no result:\n" + string(out))
	}
	t.note("`go test -run '^$' -bench BenchmarkCallSignalRelay -benchmem ./calls`: sendSignal → Redis (the publish-or-hold " +
		"script) → bus → callEvents channel, one signal at a time, in one process (GraphQL and WebSocket framing excluded). " +
		"Before the binary call-event codec and pooled buffers (call events as JSON) it measured 50 allocations and 4,443 B " +
		"per signal; with a plain PUBLISH rather than the script, 24 allocations and 2,217 B.")
	t.print(os.Stdout, command)
	return nil
}
