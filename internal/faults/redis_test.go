package faults

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/client"
)

// chatLoad sends messages to channels in a loop, from several senders,
// with a reader marking a channel read now and then, and remembers every
// acknowledged message per channel. Pause stops it between two sends.
type chatLoad struct {
	p        *proc
	senders  []*client.Client
	readers  []*client.Client
	channels []string

	mu     sync.Mutex
	acked  map[string][]string // channel -> message ids, in the order acknowledged
	errs   map[string]int      // extensions.code (or transport error) -> count
	total  atomic.Int64
	paused atomic.Bool
	phase  atomic.Value               // string: the phase sends are timed under
	lat    map[string][]time.Duration // phase -> sendMessage latencies
	idle   chan struct{}              // receives when the loop is paused between sends
	stop   chan struct{}
	done   chan struct{}
	// closeOnce guards stop.
	closeOnce sync.Once
}

func (l *chatLoad) run() {
	defer close(l.done)
	ctx := context.Background()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		if l.paused.Load() {
			select {
			case l.idle <- struct{}{}:
			case <-l.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ch := l.channels[i%len(l.channels)]
		var out struct{ SendMessage struct{ ID string } }
		phase, _ := l.phase.Load().(string)
		start := time.Now()
		r, err := l.senders[i%len(l.senders)].Do(ctx, `mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id } }`,
			client.Vars{"c": ch, "t": fmt.Sprintf("message %d", i)})
		took := time.Since(start)
		l.mu.Lock()
		l.lat[phase] = append(l.lat[phase], took)
		l.mu.Unlock()
		if code := codeOf(r, err); code != "" {
			l.mu.Lock()
			l.errs["sendMessage: "+code]++
			l.mu.Unlock()
		} else if err := r.Decode(&out); err == nil {
			l.mu.Lock()
			l.acked[ch] = append(l.acked[ch], out.SendMessage.ID)
			l.mu.Unlock()
			l.total.Add(1)
		}
		if i%7 == 3 {
			reader := l.readers[(i/7)%len(l.readers)]
			r, err := reader.Do(ctx, `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, client.Vars{"c": ch})
			if code := codeOf(r, err); code != "" {
				l.mu.Lock()
				l.errs["markRead: "+code]++
				l.mu.Unlock()
			}
		}
	}
}

// waitFor waits until n more messages are acknowledged.
func (l *chatLoad) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.total.Load() + n
	eventually(t, 60*time.Second, fmt.Sprintf("%d messages acknowledged", target), func() bool { return l.total.Load() >= target })
}

// pause stops sending and returns once the loop is between two sends.
func (l *chatLoad) pause() {
	l.paused.Store(true)
	<-l.idle
}

func (l *chatLoad) resume() { l.paused.Store(false) }

// close stops the load, once, and waits for its loop to end.
func (l *chatLoad) close() {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
}

func (l *chatLoad) errors() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.errs)
}

// unreadTruth is a user's unread counts computed from PostgreSQL alone.
func (c *cluster) unreadTruth(t *testing.T, user string) map[string]int {
	t.Helper()
	rows, err := c.DB.Query(context.Background(), `SELECT m.channel_id, c.last_seq - m.last_read_seq
		FROM channel_members m JOIN channels c ON c.id = m.channel_id
		WHERE m.user_id = $1 AND c.last_seq > m.last_read_seq`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			t.Fatal(err)
		}
		out[ch] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type unreadAnswer struct {
	UnreadCounts struct {
		TotalUnreadCount int
		UnreadChannels   int
		Channels         []struct {
			Channel     struct{ ID string }
			UnreadCount int
		}
	}
}

func (a unreadAnswer) byChannel() map[string]int {
	out := map[string]int{}
	for _, ch := range a.UnreadCounts.Channels {
		out[ch.Channel.ID] = ch.UnreadCount
	}
	return out
}

const unreadQuery = `{ unreadCounts { totalUnreadCount unreadChannels channels { channel { id } unreadCount } } }`

// unreadMismatch compares a user's unreadCounts answer with the truth
// from PostgreSQL and describes the first difference ("" when exact).
func (c *cluster) unreadMismatch(t *testing.T, p *proc, user string) string {
	t.Helper()
	var got unreadAnswer
	if err := p.Client(c.token(t, user, false)).Run(context.Background(), unreadQuery, nil, &got); err != nil {
		return fmt.Sprintf("%s: unreadCounts failed: %v", user, err)
	}
	want := c.unreadTruth(t, user)
	total := 0
	for _, n := range want {
		total += n
	}
	if !maps.Equal(got.byChannel(), want) || got.UnreadCounts.TotalUnreadCount != total || got.UnreadCounts.UnreadChannels != len(want) {
		return fmt.Sprintf("%s: unreadCounts %+v, PostgreSQL says %v (total %d)", user, got.UnreadCounts, want, total)
	}
	return ""
}

// Fault 2: Redis is flushed, and separately killed and restarted, while
// messages are being sent. Sends and queries keep answering (unread counts
// come from PostgreSQL while Redis is down), the subscription resumes when
// Redis is back and has every message exactly once, and every unread
// count is exact afterwards.
func TestRedisFlushedAndRestarted(t *testing.T) {
	c := newCluster(t, false)
	p := c.startBrook(t, nil, map[string]string{"BROOK_WORKERS": "2"})
	ctx := context.Background()
	l, everyone := c.newChatLoad(t, p, "f2")
	f := c.follow(t, p, l, "r0")
	received := f.received
	defer l.close()

	go l.run()
	l.waitFor(t, 30)

	// 1. FLUSHALL while messages are being sent.
	if err := c.RDB.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, 30)

	// 2. Kill Redis while messages are being sent; keep sending.
	if err := c.redis.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt, atKill := time.Now(), l.total.Load()
	l.phase.Store("down")
	l.waitFor(t, 10)
	// Queries answer from PostgreSQL meanwhile, exactly.
	l.pause()
	readStart := time.Now()
	for _, u := range everyone {
		if m := c.unreadMismatch(t, p, u); m != "" {
			t.Fatalf("while Redis is down: %s", m)
		}
	}
	readsDown := time.Since(readStart) / time.Duration(len(everyone))
	l.resume()
	l.waitFor(t, 10)
	beforeUp := received()

	// 3. Restart Redis (empty, on the same port) with messages flowing.
	if err := c.redis.Start(ctx); err != nil {
		t.Fatal(err)
	}
	down, sentWhileDown := time.Since(killedAt), l.total.Load()-atKill
	l.phase.Store("up again")
	l.waitFor(t, 30)
	l.close()

	// The subscription resumed: it has every acknowledged message of its
	// channel once, in order (what it missed while Redis was down it
	// re-read from PostgreSQL).
	f.checkAll(t, c, l, fmt.Sprintf("Redis killed %s, restarted %s", killedAt.UTC().Format("15:04:05.000"),
		killedAt.Add(down).UTC().Format("15:04:05.000")))

	// Every unread count is exact once the retried bookkeeping is done.
	var mismatch string
	eventually(t, 90*time.Second, "every unread count is exact", func() bool {
		for _, u := range everyone {
			if mismatch = c.unreadMismatch(t, p, u); mismatch != "" {
				return false
			}
		}
		return true
	}, &mismatch)
	var parked int
	_ = c.DB.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE parked_at IS NOT NULL`).Scan(&parked)
	if parked != 0 {
		t.Fatalf("%d jobs parked", parked)
	}
	if errs := l.errors(); len(errs) > 0 {
		t.Fatalf("operations failed: %v", errs)
	}
	if !p.Alive() {
		t.Fatal("the Brook process died")
	}
	l.mu.Lock()
	upP50, downP50, downMax := percentile(l.lat[""], 0.5), percentile(l.lat["down"], 0.5), percentile(l.lat["down"], 1)
	l.mu.Unlock()
	t.Logf("fault 2: sendMessage p50 %s with Redis up; while it was down p50 %s, max %s; unreadCounts while down %s each (with the check against PostgreSQL)",
		ms(upP50), ms(downP50), ms(downMax), ms(readsDown))
	t.Logf("fault 2: %d messages sent to 3 channels of 11 members (Redis flushed once, killed for %s during which %d were sent), "+
		"0 failed sends or reads; unreadCounts answered exactly from PostgreSQL while Redis was down; the subscription "+
		"had %d messages when Redis came back and then all %d once each; all %d users' unread counts exact afterwards",
		l.total.Load(), down.Round(100*time.Millisecond), sentWhileDown, beforeUp, f.received(), len(everyone))
}
