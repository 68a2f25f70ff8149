package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/brookhq/brook/internal/client"
)

// rtObject finds the round trip's post number in a feedUpdated payload.
var rtObject = regexp.MustCompile(`"rt-\d+-(\d+)"`)

// roundtripOptions sizes the fan-out round trip.
type roundtripOptions struct {
	sizes       []int // followers of each actor measured
	subscribers int   // followers holding a feedUpdated subscription, per size
	posts       int   // measured posts per size (after one warm-up)
	pulled      []int // sizes also measured as a pulled actor (FEED_PULL_THRESHOLD at its default)
}

// roundtripPart runs the round trip part of bench-feeds from its flags and
// prints its table.
func roundtripPart(ctx context.Context, h *harness, db *pgxpool.Pool, cmd, sizes, pulled string, subscribers, posts int) error {
	o := roundtripOptions{subscribers: subscribers, posts: posts}
	var err error
	if o.sizes, err = parseSizes(sizes); err != nil {
		return err
	}
	if pulled != "" {
		if o.pulled, err = parseSizes(pulled); err != nil {
			return err
		}
	}
	t := &table{title: "Feeds: fan-out round trip (addActivity called → feedUpdated received on followers' timelines)",
		cols: []string{"followers", "subscribers", "posts", "events received / expected", "first event", "p50", "p99", "max",
			"addActivity request p50 / max", "last timeline row committed p50 / max", "load average"}}
	if err := roundtripFigures(ctx, h, db, o, t); err != nil {
		return err
	}
	t.print(os.Stdout, cmd)
	return nil
}

// parseSizes parses a comma-separated list of follower counts.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// roundtripFigures is the fan-out round trip: for each size, an actor with
// that many followers posts over GraphQL while some of its followers hold
// a feedUpdated subscription on their timelines, spread over two Brook
// nodes whose workers (the defaults: 2 each) run the fan-out. It times the
// addActivity call to each subscriber's event, and to the commit of the
// last follower's timeline row.
func roundtripFigures(ctx context.Context, h *harness, db *pgxpool.Pool, o roundtripOptions, t *table) error {
	largest := 0
	for _, n := range append(slices.Clone(o.sizes), o.pulled...) {
		largest = max(largest, n)
	}
	fmt.Fprintf(os.Stderr, "bench: feeds: round trip: seeding actors with %v followers (pulled: %v)\n", o.sizes, o.pulled)
	if _, err := db.Exec(ctx, `INSERT INTO users (id, name) SELECT 'u' || g, 'User ' || g FROM generate_series(1, $1) g
		ON CONFLICT DO NOTHING`, largest); err != nil {
		return err
	}
	for _, n := range o.sizes {
		// The follow graph by one INSERT ... SELECT, as the other parts
		// seed theirs: a raw write, far faster than importFollows, and
		// the same rows.
		actor := fmt.Sprintf("rt%d", n)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING`, []any{actor}},
			{`INSERT INTO follows (source, target, pull_from)
				SELECT 'timeline:u' || g, 'user:' || $1, '00000000-0000-0000-0000-000000000000' FROM generate_series(1, $2::int) g
				ON CONFLICT DO NOTHING`, []any{actor, n}},
			{`INSERT INTO feeds (id, follower_count) VALUES ('user:' || $1, $2::int)
				ON CONFLICT (id) DO UPDATE SET follower_count = $2::int`, []any{actor, n}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("seed round trip: %w", err)
			}
		}
	}
	for _, n := range o.pulled {
		// Above the default threshold and marked pulled, as the demote
		// job leaves such an actor: merged into timelines at read time.
		actor := fmt.Sprintf("rtp%d", n)
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO users (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING`, []any{actor}},
			{`INSERT INTO follows (source, target, pull_from, pulled)
				SELECT 'timeline:u' || g, 'user:' || $1, '00000000-0000-0000-0000-000000000000', true FROM generate_series(1, $2::int) g
				ON CONFLICT DO NOTHING`, []any{actor, n}},
			{`INSERT INTO feeds (id, follower_count, pulled_since) VALUES ('user:' || $1, $2::int, '00000000-0000-7000-8000-000000000000')
				ON CONFLICT (id) DO UPDATE SET follower_count = $2::int, pulled_since = excluded.pulled_since`, []any{actor, n}},
		} {
			if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("seed round trip: %w", err)
			}
		}
	}
	if _, err := db.Exec(ctx, `VACUUM ANALYZE follows`); err != nil {
		return err
	}
	// Two nodes, workers on (the default 2 each) and every actor pushed:
	// the threshold is raised so that the 100,000-follower actor fans out
	// as the 10,000 one does, which is the case with timeline rows to
	// commit (above the default threshold an actor is merged at read
	// time, and its followers' streams get one publish on its topic).
	started, load := time.Now().UTC(), loadAverage()
	for _, mode := range []struct {
		pulled bool
		sizes  []int
		env    map[string]string
	}{{false, o.sizes, map[string]string{"FEED_PULL_THRESHOLD": "1000000"}}, {true, o.pulled, nil}} {
		if len(mode.sizes) == 0 {
			continue
		}
		if err := roundtripNodes(ctx, h, mode.env, func(nodes []*server) error {
			for _, n := range mode.sizes {
				settle()
				if err := roundtripSize(ctx, h, db, nodes, n, mode.pulled, o, t); err != nil {
					return fmt.Errorf("round trip with %d followers: %w", n, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	t.note("Each actor posts %d times (after one warm-up post), one post at a time, over HTTP to node 1; %d of its followers, evenly spread "+
		"over its follower list (so over the fan-out's pages), each hold a feedUpdated subscription on their own timeline over their own "+
		"WebSocket, alternating between the two nodes (a bare graphql-transport-ws reader per subscriber, one goroutine, no decoding). "+
		"Latency runs from just before the addActivity request to the event read off each subscriber's socket; \"first event\" is the median over the posts of each post's earliest event (the commit and the publish, before the nodes' delivery to the rest). "+
		"Both nodes run the default workers (2 each), which take the fan-out's pages of 10,000 followers; FEED_PULL_THRESHOLD is raised so "+
		"that these actors are pushed. The last column runs from just before the request to the moment no feed job is left "+
		"(the jobs table polled every 5 ms; a page's job is deleted in its transaction), after which every follower's row is checked. "+
		"The load generator, both nodes, PostgreSQL and Redis share the machine's cores; the load average is /proc/loadavg's 1-minute figure "+
		"after each size. Targets: p99 under 100 ms at 10,000 followers and under 1 s at 100,000, nothing lost.", o.posts, o.subscribers)
	if len(o.pulled) > 0 {
		t.note("Rows marked pulled: the same actor above the default FEED_PULL_THRESHOLD (10,000) on two nodes at the default, as Brook runs it: " +
			"its followers' timelines merge it at read time, so a post writes no timeline rows (checked: none) and its one publish on the actor's topic " +
			"reaches every follower's stream, which listens to the feeds its timeline pulls.")
	}
	t.note("The events column counts per subscriber: an event that never came is one a subscriber whose subscription was live " +
		"throughout did not get; a subscriber whose subscription ended before the bench closed it (an error frame, a complete frame, " +
		"a next frame with errors, its connection dropped) is counted apart, with the events it missed, and a note names each way they ended with its first message.")
	t.note("Started %s UTC, load average %s before the first size.", started.Format("15:04"), load)
	return nil
}

// roundtripNodes starts two Brook nodes with env, workers on, runs f on
// them and stops them.
func roundtripNodes(ctx context.Context, h *harness, env map[string]string, f func(nodes []*server) error) error {
	var nodes []*server
	defer func() {
		for _, s := range nodes {
			s.Stop()
		}
	}()
	for i := 0; i < 2; i++ {
		s, err := h.startServer(ctx, env)
		if err != nil {
			return err
		}
		nodes = append(nodes, s)
	}
	return f(nodes)
}

// roundtripSize measures one actor's posts.
func roundtripSize(ctx context.Context, h *harness, db *pgxpool.Pool, nodes []*server, size int, pulled bool, o roundtripOptions, t *table) error {
	actor, label := fmt.Sprintf("rt%d", size), fmt.Sprintf("%d", size)
	want := size // timeline rows a post writes
	if pulled {
		actor, label, want = fmt.Sprintf("rtp%d", size), fmt.Sprintf("%d, pulled (default threshold)", size), 0
	}
	subs := min(o.subscribers, size)
	total := o.posts + 1 // post 0 warms up
	sentAt := make([]atomic.Int64, total)
	got := make([]atomic.Int64, total)
	spans := make([]span, total) // each post's earliest and latest event
	var dupes atomic.Int64
	lats := &latencies{}
	endings := &rtEndings{}
	subscribers := make([]*rtSubscriber, subs)
	fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %d subscribers of %s on %d nodes\n", subs, actor, len(nodes))
	conns := make([]io.Closer, subs)
	connsBefore := openConns(nodes)
	defer func() {
		endings.closing.Store(true)
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
		// A thousand disconnects at once are a burst of presence writes
		// to Redis (hundreds time out on a loaded machine, each counted
		// by the nodes' Redis guards): the next size's start-up must not
		// overlap it.
		quiesce(ctx, nodes, connsBefore)
	}()
	var g errgroup.Group
	g.SetLimit(32)
	// subscribe starts subscriber i's subscription, a new one each time:
	// a retry's callbacks never touch the outcome of the attempt before.
	subscribe := func(i int) {
		user := fmt.Sprintf("u%d", 1+i*size/subs)
		sub := &rtSubscriber{user: user}
		subscribers[i] = sub
		g.Go(func() error {
			seen := make([]bool, total) // this subscriber's posts; its reader is one goroutine
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conn, err := bareSubscribeUntil(dctx, nodes[i%len(nodes)].WebsocketURL(), client.AuthPayload(h.token(user, false)),
				`subscription($f: ID!) { feedUpdated(feed: $f) { added { id object } } }`, client.Vars{"f": "timeline:" + user},
				func(data []byte, at time.Time) {
					if !bytes.Contains(data, []byte(`"type":"next"`)) || bytes.Contains(data, []byte(`"errors":`)) {
						if !endings.frame(sub, data) && !bytes.Contains(data, []byte(`"type":"pong"`)) {
							fmt.Fprintf(os.Stderr, "bench: %s: %s\n", user, data)
						}
						return
					}
					m := rtObject.FindSubmatch(data)
					if m == nil {
						return
					}
					k, _ := strconv.Atoi(string(m[1]))
					if k >= total {
						return
					}
					if seen[k] {
						dupes.Add(1)
						return
					}
					seen[k] = true
					got[k].Add(1)
					d := at.Sub(time.Unix(0, sentAt[k].Load()))
					spans[k].observe(d)
					if k > 0 {
						lats.add(d)
						sub.got.Add(1)
					}
				}, func(err error) { endings.closed(sub, err) })
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", user, err)
			}
			conns[i] = conn
			return nil
		})
	}
	guardStart := readGuards(nodes)
	for i := 0; i < subs; i++ {
		subscribe(i)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // every subscription started on its node
	// A subscription the node ended at start-up with UNAVAILABLE (its
	// Redis guard tripped: the machine's load, or the burst of
	// subscriptions) or whose connection dropped is started again, as a
	// client does after the error's retryAfter (1 s): the posts measure
	// delivery to live subscribers, and the notes say how many it took.
	resubscribed, rounds := 0, 0
	for ; rounds < 5; rounds++ {
		var again []int
		for i, s := range subscribers {
			if s.ended.Load() && s.retryable() {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s: %d subscriptions ended at start-up (%s); subscribing them again in 1 s\n",
			actor, len(again), endings.summary())
		time.Sleep(time.Second)
		for _, i := range again {
			_ = conns[i].Close()
			subscribe(i)
		}
		resubscribed += len(again)
		if err := g.Wait(); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
	}
	guardPosts := readGuards(nodes)
	startup := guardPosts.since(guardStart)
	if startup != "" {
		fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s: Redis guards during start-up: %s\n", actor, startup)
	}
	author := nodes[0].Client(h.token(actor, false))
	var committed, requests, firsts latencies
	cpu0, self0 := serversCPU(nodes), selfCPU()
	for k := 0; k < total; k++ {
		time.Sleep(500 * time.Millisecond)
		var out struct{ AddActivity struct{ ID string } }
		start := time.Now()
		sentAt[k].Store(start.UnixNano())
		endings.next.Store(int64(k + 1))
		if err := author.Run(ctx, `mutation($f: ID!, $o: String!) { addActivity(feed: $f, input: {verb: "post", object: $o}) { id } }`,
			client.Vars{"f": "user:" + actor, "o": fmt.Sprintf("rt-%d-%d", size, k)}, &out); err != nil {
			return err
		}
		requested := time.Since(start)
		// The last follower's row: no feed job left. Pages run on either node.
		for {
			var left int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind LIKE 'feed.%'`).Scan(&left); err != nil {
				return err
			}
			if left == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		done := time.Since(start)
		var rows int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM feed_entries WHERE activity_id = $1 AND feed_id LIKE 'timeline:%'`, out.AddActivity.ID).Scan(&rows); err != nil {
			return err
		}
		if rows != want {
			return fmt.Errorf("post %d: %d timeline rows, want %d", k, rows, want)
		}
		// Every subscriber still live: one that ended gets nothing more.
		live := func() int64 {
			n := int64(0)
			for _, s := range subscribers {
				if !s.ended.Load() {
					n++
				}
			}
			return n
		}
		deadline := time.Now().Add(10 * time.Second)
		for got[k].Load() < live() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if k > 0 {
			committed.add(done)
			requests.add(requested)
			firsts.add(spans[k].earliest())
		}
		fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s post %d: request %v, rows committed %v, events %d/%d, first %v, last %v\n",
			actor, k, requested.Round(time.Microsecond), done.Round(time.Millisecond), got[k].Load(), subs,
			spans[k].earliest().Round(time.Millisecond), spans[k].latest().Round(time.Millisecond))
	}
	fmt.Fprintf(os.Stderr, "bench: feeds: round trip: CPU during the posts: nodes %v, load generator %v\n",
		(serversCPU(nodes) - cpu0).Round(time.Millisecond), (selfCPU() - self0).Round(time.Millisecond))
	// Counted before the deferred close, which ends every connection.
	tl := tally(subscribers, o.posts)
	posts := readGuards(nodes).since(guardPosts)
	if posts != "" {
		fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s: Redis guards during the posts: %s\n", actor, posts)
		t.note("%s: the nodes' Redis guards during the posts: %s.", label, posts)
	}
	if resubscribed > 0 {
		t.note("%s: %d subscriptions were started again at start-up, in %d rounds, after ending with UNAVAILABLE or a dropped connection; "+
			"the nodes' Redis guards during start-up: %s.", label, resubscribed, rounds, startup)
	}
	ended := endings.summary()
	if ended != "" {
		fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s: subscriptions that ended before the bench closed them: %s\n", actor, ended)
		t.note("%s: subscriptions that ended before the bench closed them (each subscription counted once, under the first way it ended; those started again at start-up included): %s.", label, ended)
	}
	fmt.Fprintf(os.Stderr, "bench: feeds: round trip: %s: events %s\n", actor, tl.cell())
	p50, p99, mx, _ := lats.summary()
	c50, _, cmax, _ := committed.summary()
	r50, _, rmax, _ := requests.summary()
	f50, _, _, _ := firsts.summary()
	lost := tl.cell()
	if d := dupes.Load(); d > 0 {
		lost += fmt.Sprintf(" (%d duplicates)", d)
	}
	rowsDone := ms(c50) + " / " + ms(cmax)
	if pulled {
		rowsDone = "none written (job done " + rowsDone + ")"
	}
	t.add(label, fmt.Sprintf("%d on 2 nodes", subs), o.posts, lost, ms(f50), ms(p50), ms(p99), ms(mx),
		ms(r50)+" / "+ms(rmax), rowsDone, loadAverage())
	return nil
}

// loadAverage is the machine's 1-minute load average, as /proc/loadavg says.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// span is the earliest and latest of a set of durations observed from
// many goroutines: one post's or message's first and last delivery.
type span struct{ first, last atomic.Int64 }

func (s *span) observe(d time.Duration) {
	for {
		f := s.first.Load()
		if (f != 0 && f <= int64(d)) || s.first.CompareAndSwap(f, int64(d)) {
			break
		}
	}
	for {
		l := s.last.Load()
		if l >= int64(d) || s.last.CompareAndSwap(l, int64(d)) {
			break
		}
	}
}

func (s *span) earliest() time.Duration { return time.Duration(s.first.Load()) }
func (s *span) latest() time.Duration   { return time.Duration(s.last.Load()) }
