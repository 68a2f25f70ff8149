package chat_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// The property: after random interleavings of sends and reads by several
// users, in small channels and one above the push limit, with Redis
// flushed in the middle, every user's unreadCounts equal the truth
// computed from PostgreSQL (and from a model of the operations).
func TestChatUnreadCountsProperty(t *testing.T) {
	// Not parallel: it flushes Redis, which parallel tests would feel.
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2, Node: func(o *node.Options) { o.ChatPushMemberLimit = 3 }})
	tag := brooktest.Tag()
	users := []string{"p0-" + tag, "p1-" + tag, "p2-" + tag, "p3-" + tag}
	env.AddUsers(t, n, users...)
	channels := []string{
		createChannel(t, n, users[0], "messaging", "small-a-"+tag, users[1], users[2]),
		createChannel(t, n, users[1], "messaging", "small-b-"+tag, users[3]),
		createChannel(t, n, users[2], "messaging", "big-"+tag, users[0], users[1], users[3]), // 4 > 3: pull
	}
	members := map[string][]string{
		channels[0]: {users[0], users[1], users[2]},
		channels[1]: {users[1], users[3]},
		channels[2]: {users[2], users[0], users[1], users[3]},
	}
	// The model: per channel the top-level count, per member the read count.
	seq := map[string]int{}
	read := map[string]map[string]int{}
	for ch, ms := range members {
		read[ch] = map[string]int{}
		for _, u := range ms {
			read[ch][u] = 0
		}
	}
	var tops = map[string][]string{}
	// compare checks, once the jobs are done, every user's counts from the
	// API (Redis) against PostgreSQL and, with withModel, the model (which
	// cannot follow the commit order of racing operations).
	compare := func(when string, withModel bool) {
		t.Helper()
		n.WaitForJobs(t)
		for _, u := range users {
			got := unreadOf(t, n, u)
			truth, err := n.Store.UnreadCountsFromDB(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{}
			for _, c := range truth.Channels {
				want[c.ChannelID] = c.UnreadCount
			}
			model := map[string]int{}
			for ch := range members {
				if r, ok := read[ch][u]; ok && seq[ch] > r {
					model[ch] = seq[ch] - r
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || (withModel && fmt.Sprint(want) != fmt.Sprint(model)) {
				t.Fatalf("%s: %s unread from redis %v, postgres %v, model %v", when, u, got, want, model)
			}
		}
	}
	check := func(when string) { t.Helper(); compare(when, true) }
	checkTruth := func(when string) { t.Helper(); compare(when, false) }
	// resync sets the model from PostgreSQL's sequence numbers.
	resync := func() {
		t.Helper()
		for ch, ms := range members {
			var last int
			if err := n.Store.DB().QueryRow(context.Background(), `SELECT last_seq FROM channels WHERE id = $1`, ch).Scan(&last); err != nil {
				t.Fatal(err)
			}
			seq[ch] = last
			for _, u := range ms {
				var r int
				if err := n.Store.DB().QueryRow(context.Background(),
					`SELECT last_read_seq FROM channel_members WHERE channel_id = $1 AND user_id = $2`, ch, u).Scan(&r); err != nil {
					t.Fatal(err)
				}
				read[ch][u] = r
			}
		}
	}
	var wg sync.WaitGroup
	// done counts the operations of the current round, so Redis can be
	// flushed while a round is under way.
	var done atomic.Int64
	// step runs a round: four users act at once, 8 operations each. In a
	// serialized round each operation and its model update hold mu, in the
	// order the server commits them (the channel row lock orders a
	// channel's sends), so the model stays exact; in a concurrent round the
	// operations overlap freely and only Redis against PostgreSQL is
	// checked.
	step := func(round int, concurrent bool) {
		var mu sync.Mutex
		done.Store(0)
		lock := func() {
			if !concurrent {
				mu.Lock()
			}
		}
		unlock := func() {
			if !concurrent {
				mu.Unlock()
			}
		}
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; i < 8; i++ {
					ch := channels[r.IntN(len(channels))]
					ms := members[ch]
					u := ms[r.IntN(len(ms))]
					switch op := r.IntN(10); {
					case op < 6:
						mu.Lock()
						parents := slices.Clone(tops[ch])
						mu.Unlock()
						in := map[string]any{"text": "x"}
						reply := op == 5 && len(parents) > 0
						if reply {
							in["parentId"] = parents[r.IntN(len(parents))]
						}
						var out struct{ SendMessage struct{ ID string } }
						lock()
						if err := n.Client(env.Token(t, u)).Run(context.Background(),
							`mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`, brooktest.Vars{"c": ch, "in": in}, &out); err != nil {
							unlock()
							t.Error(err)
							return
						}
						if concurrent {
							mu.Lock()
						}
						if !reply {
							seq[ch]++
							tops[ch] = append(tops[ch], out.SendMessage.ID)
						}
						read[ch][u] = max(read[ch][u], seq[ch])
						mu.Unlock()
					default:
						lock()
						if err := n.Client(env.Token(t, u)).Run(context.Background(),
							`mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": ch}, nil); err != nil {
							unlock()
							t.Error(err)
							return
						}
						if concurrent {
							mu.Lock()
						}
						read[ch][u] = seq[ch]
						mu.Unlock()
					}
					done.Add(1)
				}
			}(w)
		}
	}
	for round := 0; round < 3; round++ {
		step(round, false)
		wg.Wait()
		check(fmt.Sprintf("round %d", round))
	}
	// Redis loses everything in the middle of a round.
	step(10, false)
	for done.Load() < 12 {
		time.Sleep(time.Millisecond)
	}
	if err := n.State.Redis().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	check("after FLUSHALL")
	step(11, false)
	wg.Wait()
	check("after FLUSHALL and another round")
	// Users act concurrently: sends and reads of one channel race.
	for round := 20; round < 23; round++ {
		step(round, true)
		wg.Wait()
		checkTruth(fmt.Sprintf("concurrent round %d", round))
	}
	// The model could not follow the racing operations' commit order: set
	// it from PostgreSQL, and all three agree again.
	resync()
	check("after the concurrent rounds")
	// Drift is found and fixed by the repair pass.
	h := n.State.Key("chat", "u", "{u:"+users[1]+"}")
	if err := n.State.Redis().HSet(context.Background(), h, "s:"+channels[0], 999999).Err(); err != nil {
		t.Fatal(err)
	}
	if fixed, err := n.Chat.RepairUnread(context.Background(), users); err != nil || fixed != 1 {
		t.Fatalf("repair fixed %d, %v", fixed, err)
	}
	// The first read rebuilds the counters; the second reads what it
	// rebuilt, which must not have kept the drifted value.
	check("after repair")
	check("after repair, read again")
	if fixed, err := n.Chat.RepairUnread(context.Background(), users); err != nil || fixed != 0 {
		t.Fatalf("a second repair found %d users drifted, %v", fixed, err)
	}
}
