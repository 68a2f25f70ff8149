package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/brookhq/brook/internal/auth"
	"github.com/brookhq/brook/internal/client"
	"github.com/brookhq/brook/internal/local"
)

const testSecret = "cluster-failover-secret-cluster-failover-0123456789"

// Test sizes: subscribers through HAProxy (about a third per node), of
// which feedSubs follow a timeline with feedUpdated, and the followers of
// the actor whose posts fan out in pages of 10,000 (jobs that take long
// enough that the killed node is caught holding some).
const (
	msgSubs   = 300
	feedSubs  = 30
	followers = 30_000
)

// A Brook node behind HAProxy is SIGKILLed while it holds the most
// subscribers and, at that moment, holds claimed jobs: its subscribers
// reconnect through HAProxy and resume with messageAdded(after:), getting
// every message exactly once and in order; feedUpdated subscribers are
// back too; the jobs it had claimed are finished by the other nodes.
func TestNodeFailoverBehindHAProxy(t *testing.T) {
	local.ClusterTests(t)
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "brook")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/brookhq/brook").CombinedOutput(); err != nil {
		t.Fatalf("build brook: %v\n%s", err, out)
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	// As make cluster runs it: a Redis Cluster and a PostgreSQL replica.
	c, err := Start(startCtx, Options{Dir: t.TempDir(), Binary: bin, Nodes: 3, JWTSecret: testSecret, RedisCluster: true, PostgresReplica: true, Env: map[string]string{
		"BROOK_RATE_IP": "10000000/s", "BROOK_RATE_USER": "10000000/s", "BROOK_RATE_ADD_ACTIVITY": "10000000/s",
		"BROOK_RATE_SEND_MESSAGE": "10000000/s", "BROOK_MAX_CONNECTIONS_PER_USER": "0",
		"BROOK_SHUTDOWN_TIMEOUT_SECONDS": "5", "FEED_PULL_THRESHOLD": "1000000", "BROOK_LOG_LEVEL": "warn",
	}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("%s log ends:\n%s", n.Name, tail(n.Log(), 3000))
			}
		}
		c.Stop()
	})
	db, err := pgxpool.New(ctx, c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	keys, _ := auth.NewKeys([]byte(testSecret))
	token := func(user string) string {
		tok, err := keys.Issue(user, false, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	seed(t, db)
	api := func(user string) *client.Client { return client.New(c.URL, token(user)) }

	var ch struct{ CreateChannel struct{ ID string } }
	if err := api("host").Run(ctx, `mutation { createChannel(input: {type: "livestream", id: "failover"}) { id } }`, nil, &ch); err != nil {
		t.Fatal(err)
	}
	channel := ch.CreateChannel.ID
	// Clients send as a careful client does through a balancer: with a
	// client-chosen message id (and a post's foreignId and time), so that
	// a request that failed mid-failover is retried without a duplicate.
	// failedAttempts counts every attempt that failed.
	var failedAttempts sync.Map // error text -> *atomic.Int64
	retry := func(what string, do func(context.Context) error) error {
		var err error
		wait := 100 * time.Millisecond
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); wait = min(2*wait, 2*time.Second) {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err = do(cctx)
			cancel()
			if err == nil {
				return nil
			}
			n, _ := failedAttempts.LoadOrStore(what+": "+tail(err.Error(), 80), new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			time.Sleep(wait)
		}
		return err
	}
	send := func(text string) (string, error) {
		id := uuid.NewString()
		var out struct{ SendMessage struct{ ID string } }
		err := retry("sendMessage", func(cctx context.Context) error {
			return api("host").Run(cctx, `mutation($c: ID!, $id: ID!, $t: String!) { sendMessage(channel: $c, input: {id: $id, text: $t}) { id } }`,
				client.Vars{"c": channel, "id": id, "t": text}, &out)
		})
		return out.SendMessage.ID, err
	}
	post := func(object string) (string, error) {
		at := time.Now().UTC().Format(time.RFC3339Nano)
		var out struct{ AddActivity struct{ ID string } }
		err := retry("addActivity", func(cctx context.Context) error {
			return api("star").Run(cctx, `mutation($o: String!, $t: Time!) { addActivity(feed: "user:star", input: {verb: "post", object: $o, foreignId: $o, time: $t}) { id } }`,
				client.Vars{"o": object, "t": at}, &out)
		})
		return out.AddActivity.ID, err
	}
	first, err := send("before")
	if err != nil {
		t.Fatal(err)
	}

	// The subscribers, all through HAProxy's one URL.
	subCtx, stopSubs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopSubs(); wg.Wait() }()
	type msgLog struct {
		mu   sync.Mutex
		got  []string
		last string
	}
	logs := make([]*msgLog, msgSubs)
	var subs []*follower
	for i := range logs {
		l := &msgLog{last: first}
		logs[i] = l
		f := &follower{url: c.URL, token: token(fmt.Sprintf("s%d", i)),
			query: `subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { id } }`,
			vars:  func() client.Vars { l.mu.Lock(); defer l.mu.Unlock(); return client.Vars{"c": channel, "a": l.last} },
			onNext: func(r *client.Response) {
				var m struct{ MessageAdded struct{ ID string } }
				if r.Decode(&m) == nil {
					l.mu.Lock()
					l.got, l.last = append(l.got, m.MessageAdded.ID), m.MessageAdded.ID
					l.mu.Unlock()
				}
			}}
		subs = append(subs, f)
	}
	feedGot := make([]map[string]int, feedSubs)
	var feedMu sync.Mutex
	for i := range feedGot {
		feedGot[i] = map[string]int{}
		got := feedGot[i]
		user := fmt.Sprintf("f%d", 1+i*(followers/feedSubs))
		subs = append(subs, &follower{url: c.URL, token: token(user),
			query: `subscription($f: ID!) { feedUpdated(feed: $f) { added { object } } }`,
			vars:  func() client.Vars { return client.Vars{"f": "timeline:" + user} },
			onNext: func(r *client.Response) {
				var u struct {
					FeedUpdated struct{ Added []struct{ Object string } }
				}
				if r.Decode(&u) == nil {
					feedMu.Lock()
					for _, a := range u.FeedUpdated.Added {
						got[a.Object]++
					}
					feedMu.Unlock()
				}
			}})
	}
	for _, f := range subs {
		wg.Add(1)
		go f.run(subCtx, &wg)
	}
	eventually(t, 2*time.Minute, "every subscription open", func() bool {
		for _, f := range subs {
			if ok, _ := f.state(); !ok {
				return false
			}
		}
		return true
	})

	// Traffic through HAProxy: a message every 50 ms, a post (a fan-out
	// of 3 pages) every 500 ms; failures counted, not retried.
	var (
		ackMu   sync.Mutex
		acked   []string
		posts   []string
		failed  = map[string]int{}
		sending atomic.Bool
	)
	sending.Store(true)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for i := 0; sending.Load(); i++ {
			id, err := send(fmt.Sprintf("m%d", i))
			var pid string
			var perr error
			if i%10 == 0 {
				pid, perr = post(fmt.Sprintf("p%d", i))
			}
			ackMu.Lock()
			if err != nil {
				failed["sendMessage: "+err.Error()]++
			} else {
				acked = append(acked, id)
			}
			if perr != nil {
				failed["addActivity: "+perr.Error()]++
			} else if pid != "" {
				posts = append(posts, pid)
			}
			ackMu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	ackedCount := func() int { ackMu.Lock(); defer ackMu.Unlock(); return len(acked) }
	eventually(t, time.Minute, "traffic flows", func() bool { return ackedCount() >= 20 })

	// The victim: the node with the most connections in HAProxy.
	servers, err := c.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim *Node
	for _, n := range c.Nodes {
		if victim == nil || servers[n.Name].Sessions > servers[victim.Name].Sessions {
			victim = n
		}
	}
	claimed := catchHoldingJobs(t, db, victim)
	// Its connections now, frozen as it is killed (subscribers that a node
	// refused move between nodes meanwhile).
	sessionsBefore := -1
	if s, err := c.Servers(ctx); err == nil {
		sessionsBefore = s[victim.Name].Sessions
	}
	// The clock starts as the signal goes: Kill returns once the process
	// is reaped, which its clients may notice before.
	killedAt := time.Now()
	victim.Kill()
	atKill := ackedCount()

	// HAProxy's view: the node marked down.
	var markedDown time.Duration
	eventually(t, 30*time.Second, "HAProxy marks the node down", func() bool {
		s, err := c.Servers(ctx)
		if err == nil && !s[victim.Name].Up() {
			markedDown = time.Since(killedAt)
			return true
		}
		return false
	})
	eventually(t, time.Minute, "every subscription open again", func() bool {
		for _, f := range subs {
			if ok, _ := f.state(); !ok {
				return false
			}
		}
		return true
	})
	eventually(t, time.Minute, "20 more messages acknowledged", func() bool { return ackedCount() >= atKill+20 })
	sending.Store(false)
	<-sendDone

	// The claimed jobs: finished by the other nodes. A finished job's row
	// is deleted in the transaction that did its work; a periodic job's
	// one row stays, moved to its next run with no error recorded.
	var jobState string
	eventually(t, 2*time.Minute, "the killed node's claimed jobs finished", func() bool {
		var left int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM jobs j JOIN unnest($1::uuid[], $2::timestamptz[]) AS c(id, run_at) ON j.id = c.id
			WHERE j.run_at <= c.run_at OR j.attempts > 0 OR j.last_error IS NOT NULL`, claimed.ids, claimed.runAts).Scan(&left)
		jobState = fmt.Sprintf("%d of %d left: %v", left, len(claimed.ids), claimed.kinds)
		return left == 0
	}, &jobState)
	finishedAt := time.Since(killedAt)
	eventually(t, 2*time.Minute, "every feed job done", func() bool {
		var left int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind LIKE 'feed.%'`).Scan(&left)
		return left == 0
	})
	var parked int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE parked_at IS NOT NULL`).Scan(&parked); err != nil || parked != 0 {
		t.Fatalf("parked jobs: %d (%v)", parked, err)
	}
	// Every post reached every follower's timeline exactly once, the
	// pages the killed node held included.
	ackMu.Lock()
	allPosts := slices.Clone(posts)
	ackMu.Unlock()
	rows, err := db.Query(ctx, `SELECT a.id::text, count(e.feed_id), count(DISTINCT e.feed_id) FROM activities a
		LEFT JOIN feed_entries e ON e.activity_id = a.id AND e.feed_id LIKE 'timeline:%' WHERE a.feed_id = 'user:star' GROUP BY a.id`)
	if err != nil {
		t.Fatal(err)
	}
	fanned := 0
	for rows.Next() {
		var id string
		var n, distinct int
		_ = rows.Scan(&id, &n, &distinct)
		if n != followers || distinct != followers {
			t.Errorf("post %s: %d timeline rows (%d distinct), want %d", id, n, distinct, followers)
		}
		fanned++
	}
	rows.Close()
	if fanned != len(allPosts) {
		// A retried post with its foreignId and time is one activity.
		t.Errorf("%d posts in PostgreSQL, %d acknowledged", fanned, len(allPosts))
	}

	// Messages: every subscriber has every message of the channel after
	// the first (those acknowledged and any committed on the killed node
	// without an answer), exactly once, in order.
	var want []string
	mrows, err := db.Query(ctx, `SELECT id::text FROM messages WHERE channel_id = $1 AND pos > (SELECT pos FROM messages WHERE id = $2) ORDER BY pos`, channel, first)
	if err != nil {
		t.Fatal(err)
	}
	for mrows.Next() {
		var id string
		_ = mrows.Scan(&id)
		want = append(want, id)
	}
	mrows.Close()
	ackMu.Lock()
	ackedSet := slices.Clone(acked)
	ackMu.Unlock()
	slices.Sort(ackedSet)
	if inPG := slices.Sorted(slices.Values(want)); !slices.Equal(inPG, ackedSet) {
		// Retried with their ids, the acknowledged messages are the
		// channel's, each once.
		t.Errorf("%d messages in PostgreSQL, %d acknowledged: not the same set", len(inPG), len(ackedSet))
	}
	var state string
	eventually(t, 2*time.Minute, "every subscriber has every message", func() bool {
		behind := 0
		for _, l := range logs {
			l.mu.Lock()
			if len(l.got) < len(want) {
				behind++
			}
			l.mu.Unlock()
		}
		state = fmt.Sprintf("%d of %d behind", behind, len(logs))
		return behind == 0
	}, &state)
	caughtUp := time.Since(killedAt)
	// feedUpdated: a post after the failover reaches every timeline
	// subscriber exactly once, on whichever node it is now.
	if _, err := post("after-failover"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "feedUpdated subscribers get the post after the failover", func() bool {
		feedMu.Lock()
		defer feedMu.Unlock()
		for _, g := range feedGot {
			if g["after-failover"] == 0 {
				return false
			}
		}
		return true
	})
	stopSubs()
	wg.Wait()

	// Clients back: from the kill to the last subscription started again.
	var back time.Duration
	for _, f := range subs {
		f.mu.Lock()
		if d := f.lastDialed.Sub(killedAt); d > back {
			back = d
		}
		f.mu.Unlock()
	}
	lost, dup, disordered, resumed := 0, 0, 0, 0
	for i, l := range logs {
		if !slices.Equal(l.got, want) {
			seen := map[string]int{}
			for _, id := range l.got {
				seen[id]++
			}
			for _, id := range want {
				if seen[id] == 0 {
					lost++
				}
			}
			for _, n := range seen {
				dup += n - 1
			}
			disordered++
		}
		if droppedByKill(subs[i], killedAt) {
			resumed++
		}
	}
	feedDup, feedResumed := 0, 0
	for i, g := range feedGot {
		for obj, n := range g {
			if n > 1 {
				feedDup += n - 1
				t.Errorf("feedUpdated subscriber %d got %s %d times", i, obj, n)
			}
		}
		if droppedByKill(subs[msgSubs+i], killedAt) {
			feedResumed++
		}
	}
	if lost != 0 || dup != 0 || disordered != 0 {
		t.Fatalf("messages: %d lost, %d duplicated, %d subscribers with a different sequence", lost, dup, disordered)
	}
	if resumed+feedResumed == 0 {
		t.Fatal("no subscriber reconnected: the kill missed them")
	}
	// Subscriptions a living node refused (UNAVAILABLE when its Redis
	// round trip timed out on a loaded machine) resume the same way.
	refused := map[string]int{}
	for _, f := range subs {
		for _, e := range f.endings() {
			if e.graphql {
				refused[tail(e.why, 60)]++
			}
		}
	}
	failedTotal, failures := 0, map[string]int64{}
	failedAttempts.Range(func(k, v any) bool {
		n := v.(*atomic.Int64).Load()
		failures[k.(string)] = n
		failedTotal += int(n)
		return true
	})
	ackMu.Lock()
	sent := len(acked) + len(posts)
	ackMu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("operations failed after retries: %v", failed)
	}
	t.Logf("node failover behind HAProxy: %s SIGKILLed holding %d of the connections and %d claimed jobs (%v); "+
		"HAProxy marked it down after %s; the last subscriber resubscribed through HAProxy %s after the kill; %d messageAdded and %d feedUpdated subscribers resumed through HAProxy; "+
		"every subscriber had all %d messages, in order, lost 0, duplicated 0, after %s; the claimed jobs were finished by the other nodes after %s; "+
		"%d posts each on all %d timelines; requests failed: %d (%v), each retried with its id: %d operations acknowledged, none lost or doubled; "+
		"subscriptions refused by a living node, resumed the same way: %v",
		victim.Name, sessionsBefore, len(claimed.ids), claimed.kinds, markedDown.Round(time.Millisecond), back.Round(time.Millisecond),
		resumed, feedResumed, len(want), caughtUp.Round(10*time.Millisecond), finishedAt.Round(10*time.Millisecond),
		fanned, followers, failedTotal, failures, sent, refused)
}

// droppedByKill reports whether f's connection dropped after killedAt
// (not a refusal by a living node): a client of the killed node.
func droppedByKill(f *follower, killedAt time.Time) bool {
	for _, e := range f.endings() {
		if !e.graphql && !e.at.Before(killedAt) {
			return true
		}
	}
	return false
}
