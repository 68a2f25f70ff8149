package chat_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
)

// The property, with everything that changes what counts: after random
// interleavings of sends (messages, thread replies, replies shown in the
// channel), markRead, markUnread at an earlier message, muteUser (for
// good, or until a time that passes during the run), unmuteUser,
// muteChannel, unmuteChannel, blockUser, unblockUser, hideChannel,
// showChannel and shadow bans by channel owners, in small channels and
// one above the push limit, with Redis flushed in the middle, every
// user's counts are the model's (see silenceWorld) everywhere they show:
// unreadCounts (per channel, muted, totals), Channel.unreadCount and
// Member.unreadCount, the totals myEvents carries, PostgreSQL
// (UnreadCountsFromDB) and, for a user who silences nobody, its complete
// Redis counters. First one user acts at a time and the model checks
// every answer; then users act at once, each in order, and the model
// takes the messages and read positions from PostgreSQL before the
// check. BROOK_UNREAD_SEED sets the seed (fixed by default) and
// BROOK_UNREAD_OPS the number of operations.
func TestChatUnreadSilenceProperty(t *testing.T) {
	// Not parallel: it flushes Redis, which parallel tests would feel.
	seed, ops := uint64(1), 240
	if v, err := strconv.ParseUint(os.Getenv("BROOK_UNREAD_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("BROOK_UNREAD_OPS")); err == nil && v > 0 {
		ops = max(v, 12)
	}
	t.Logf("seed %d, %d operations (BROOK_UNREAD_SEED=%d BROOK_UNREAD_OPS=%d run them again)", seed, ops, seed, ops)
	n := env.StartNode(t, brooktest.NodeOptions{Workers: 2, Node: func(o *node.Options) { o.ChatPushMemberLimit = 3 }})
	tag := brooktest.Tag()
	users := []string{"s0-" + tag, "s1-" + tag, "s2-" + tag, "s3-" + tag}
	env.AddUsers(t, n, users...)
	channels := []string{
		createChannel(t, n, users[0], "messaging", "silence-a-"+tag, users[1], users[2]),
		createChannel(t, n, users[1], "messaging", "silence-b-"+tag, users[3]),                       // two members: a block refuses sends
		createChannel(t, n, users[2], "messaging", "silence-big-"+tag, users[0], users[1], users[3]), // 4 > 3: pull
	}
	owner := map[string]string{channels[0]: users[0], channels[1]: users[1], channels[2]: users[2]}
	members := map[string][]string{
		channels[0]: {users[0], users[1], users[2]},
		channels[1]: {users[1], users[3]},
		channels[2]: {users[2], users[0], users[1], users[3]},
	}
	s := &silenceRun{t: t, n: n, seed: seed, w: newSilenceWorld(users, channels, owner, members),
		tokens: map[string]string{}, logs: map[string]*eventLog{}}
	if err := s.w.resync(context.Background(), n.Store.DB()); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		s.tokens[u] = env.Token(t, u)
		s.logs[u] = followEvents(t, n, s.tokens[u])
	}
	waitSubscribed(t, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.r, s.calm = r, map[string]bool{}

	// One user at a time. Redis loses everything at a random operation,
	// with jobs of the operations before it still waiting or running.
	flushAt, next := ops/3+r.IntN(ops/3), 8+r.IntN(16)
	for i := 0; i < ops; i++ {
		if i == flushAt {
			s.flush()
		}
		s.op = fmt.Sprintf("operation %d", i)
		s.step(r, users[r.IntN(len(users))], true)
		if t.Failed() {
			t.FailNow()
		}
		if i == next {
			s.check(fmt.Sprintf("after operation %d", i))
			next += 8 + r.IntN(16)
		}
	}
	s.check("after the operations one at a time")

	// Users act at once, each in order; Redis is flushed in the middle of
	// the second round.
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		var done atomic.Int64
		per := max(ops/12, 4)
		for _, u := range users {
			wg.Add(1)
			go func(r *rand.Rand, u string) {
				defer wg.Done()
				for k := 0; k < per && !t.Failed(); k++ {
					s.step(r, u, false)
					done.Add(1)
				}
			}(rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), u)
		}
		if round == 1 {
			for done.Load() < int64(len(users)*per/2) && !t.Failed() {
				time.Sleep(time.Millisecond)
			}
			s.flush()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		n.WaitForJobs(t)
		s.w.mu.Lock()
		err := s.w.resync(context.Background(), n.Store.DB())
		s.w.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		s.check(fmt.Sprintf("after concurrent round %d", round))
	}
	t.Logf("checked %d users' counts: %d silencing someone or something (counts from PostgreSQL), %d not (from Redis); %d myEvents totals (%d events never came)",
		s.silencing+s.plain, s.silencing, s.plain, s.events, s.noEvent)
	if s.silencing == 0 || s.plain == 0 || s.events == 0 {
		t.Fatalf("the run checked no user on one of the two paths, or no event: %d silencing, %d not, %d events", s.silencing, s.plain, s.events)
	}
}

// silenceRun runs the operations of TestChatUnreadSilenceProperty on a
// node and checks them against the model.
type silenceRun struct {
	t      *testing.T
	n      *brooktest.Node
	seed   uint64
	w      *silenceWorld
	tokens map[string]string
	logs   map[string]*eventLog
	// op names the serial operation under way, for failures.
	op string
	// r is the serial operations' source; calm, per user, that it lifts
	// mutes and blocks rather than add them until the next check, so that
	// users go back and forth between silencing someone and no one.
	r    *rand.Rand
	calm map[string]bool
	// silencing and plain count the users checked on each path; events,
	// the myEvents totals checked, and noEvent those that never came (a
	// publish to Redis that timed out: events are live only).
	silencing, plain, events, noEvent int
}

func (s *silenceRun) errorf(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf("seed %d, %s: %s", s.seed, s.op, fmt.Sprintf(format, args...))
}

// do runs an operation as user u and returns its error code ("" when it
// succeeded, and then decodes its data into out).
func (s *silenceRun) do(u, query string, vars brooktest.Vars, out any) string {
	s.t.Helper()
	r, err := s.n.Client(s.tokens[u]).Do(context.Background(), query, vars)
	if err != nil {
		s.errorf("%s: %v", query, err)
		return "TRANSPORT"
	}
	if len(r.Errors) > 0 {
		return cmp.Or(r.Code(), "NO CODE: "+r.Errors[0].Message)
	}
	if out != nil {
		if err := r.Decode(out); err != nil {
			s.errorf("%s: %v", query, err)
		}
	}
	return ""
}

func (s *silenceRun) flush() {
	s.t.Helper()
	if err := s.n.State.Redis().FlushAll(context.Background()).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// pick returns one of a user's entries in set most of the time (sorted,
// for the seed's sake), else any other user.
func pick[V any](r *rand.Rand, set map[string]V, others []string) string {
	if keys := slices.Sorted(maps.Keys(set)); len(keys) > 0 && r.IntN(4) != 0 {
		return keys[r.IntN(len(keys))]
	}
	return others[r.IntN(len(others))]
}

// someEnd returns, half the time, an end a little ahead (truncated as
// PostgreSQL stores it), and the variable that sends it.
func someEnd(r *rand.Rand) (time.Time, any) {
	if r.IntN(2) == 0 {
		return time.Time{}, nil
	}
	at := time.Now().Add(time.Duration(300+r.IntN(2200)) * time.Millisecond).Truncate(time.Microsecond).UTC()
	return at, at.Format(time.RFC3339Nano)
}

// step runs one random operation as user u. With exact, it runs alone
// and the model follows it and checks its answer; without, others' run
// at the same time and the model follows only what u alone decides.
func (s *silenceRun) step(r *rand.Rand, u string, exact bool) {
	s.t.Helper()
	w := s.w
	w.mu.Lock()
	chs := w.userChans[u]
	ch := chs[r.IntN(len(chs))]
	others := slices.DeleteFunc(slices.Clone(w.users), func(o string) bool { return o == u })
	var owned string
	for _, c := range w.channels {
		if w.owner[c] == u {
			owned = c
		}
	}
	var target string
	if owned != "" {
		target = slices.DeleteFunc(slices.Clone(w.members[owned]), func(o string) bool { return o == u })[r.IntN(len(w.members[owned])-1)]
	}
	w.mu.Unlock()
	var ok bool
	var got struct {
		MuteUser, UnmuteUser, MuteChannel, UnmuteChannel, BlockUser, UnblockUser, HideChannel, ShowChannel, BanUser, UnbanUser bool
	}
	op := r.IntN(100)
	if op >= 84 && owned == "" {
		op = r.IntN(34) // a user who owns no channel bans nobody: it sends
	}
	if s.calm[u] {
		switch {
		case op >= 52 && op < 56:
			op = 56 // unmuteUser
		case op >= 61 && op < 64:
			op = 64 // unmuteChannel
		case op >= 68 && op < 71:
			op = 71 // unblockUser
		}
	}
	switch {
	case op < 34:
		s.send(r, u, ch, op, exact)
	case op < 42:
		var out struct{ MarkRead struct{ UnreadCount int } }
		if code := s.do(u, `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": ch}, &out); code != "" {
			s.errorf("%s markRead %s: %s", u, ch, code)
		}
		if out.MarkRead.UnreadCount != 0 {
			s.errorf("%s markRead %s: %d unread after it", u, ch, out.MarkRead.UnreadCount)
		}
		if exact {
			w.mu.Lock()
			w.read[ch][u] = w.lastSeq[ch]
			w.mu.Unlock()
		}
	case op < 52:
		s.markUnread(r, u, ch, exact)
	case op < 56:
		other := others[r.IntN(len(others))]
		end, v := someEnd(r)
		s.expect(u, `mutation($u: ID!, $until: Time) { muteUser(user: $u, until: $until) }`, brooktest.Vars{"u": other, "until": v}, &got, &got.MuteUser, true)
		w.mu.Lock()
		w.mutes[u][other] = end
		w.mu.Unlock()
	case op < 61:
		w.mu.Lock()
		other := pick(r, w.mutes[u], others)
		end, had := w.mutes[u][other]
		w.mu.Unlock()
		s.lifts(u, `mutation($u: ID!) { unmuteUser(user: $u) }`, brooktest.Vars{"u": other}, &got, &got.UnmuteUser, end, had, func() { delete(w.mutes[u], other) })
	case op < 64:
		end, v := someEnd(r)
		s.expect(u, `mutation($c: ID!, $until: Time) { muteChannel(channel: $c, until: $until) }`, brooktest.Vars{"c": ch, "until": v}, &got, &got.MuteChannel, true)
		w.mu.Lock()
		w.chanMute[ch][u] = end
		w.mu.Unlock()
	case op < 68:
		w.mu.Lock()
		for _, c := range chs { // one it mutes, if any
			if _, ok := w.chanMute[c][u]; ok && r.IntN(2) == 0 {
				ch = c
			}
		}
		end, had := w.chanMute[ch][u]
		w.mu.Unlock()
		s.lifts(u, `mutation($c: ID!) { unmuteChannel(channel: $c) }`, brooktest.Vars{"c": ch}, &got, &got.UnmuteChannel, end, had, func() { delete(w.chanMute[ch], u) })
	case op < 71:
		other := others[r.IntN(len(others))]
		s.expect(u, `mutation($u: ID!) { blockUser(user: $u) }`, brooktest.Vars{"u": other}, &got, &got.BlockUser, true)
		w.mu.Lock()
		w.blocks[u][other] = true
		w.mu.Unlock()
	case op < 76:
		w.mu.Lock()
		other := pick(r, w.blocks[u], others)
		ok = w.blocks[u][other]
		delete(w.blocks[u], other)
		w.mu.Unlock()
		s.expect(u, `mutation($u: ID!) { unblockUser(user: $u) }`, brooktest.Vars{"u": other}, &got, &got.UnblockUser, ok)
	case op < 80:
		s.expect(u, `mutation($c: ID!) { hideChannel(channel: $c) }`, brooktest.Vars{"c": ch}, &got, &got.HideChannel, true)
		w.mu.Lock()
		w.hidden[ch][u] = true
		w.mu.Unlock()
	case op < 84:
		w.mu.Lock()
		ok = w.hidden[ch][u]
		w.hidden[ch][u] = false
		w.mu.Unlock()
		s.expect(u, `mutation($c: ID!) { showChannel(channel: $c) }`, brooktest.Vars{"c": ch}, &got, &got.ShowChannel, ok)
	case op < 92:
		s.expect(u, `mutation($u: ID!, $c: ID) { banUser(user: $u, channel: $c, shadow: true) }`, brooktest.Vars{"u": target, "c": owned}, &got, &got.BanUser, true)
		w.mu.Lock()
		w.shadow[owned][target] = true
		w.mu.Unlock()
	default:
		w.mu.Lock()
		ok = w.shadow[owned][target]
		delete(w.shadow[owned], target)
		w.mu.Unlock()
		s.expect(u, `mutation($u: ID!, $c: ID) { unbanUser(user: $u, channel: $c) }`, brooktest.Vars{"u": target, "c": owned}, &got, &got.UnbanUser, ok)
	}
}

// expect runs a mutation that answers a Boolean, into the field *field
// of out, and checks the answer.
func (s *silenceRun) expect(u, query string, vars brooktest.Vars, out any, field *bool, want bool) {
	s.t.Helper()
	if code := s.do(u, query, vars, out); code != "" {
		s.errorf("%s %s %v: %s", u, query, vars, code)
	} else if *field != want {
		s.errorf("%s %s %v: answered %v, want %v", u, query, vars, *field, want)
	}
}

// lifts runs an unmute, which answers whether a mute that ends at end
// (had: one was recorded) was in force, unless it ended just then; and
// then forgets the mute in the model.
func (s *silenceRun) lifts(u, query string, vars brooktest.Vars, out any, field *bool, end time.Time, had bool, forget func()) {
	s.t.Helper()
	t0 := time.Now()
	if code := s.do(u, query, vars, out); code != "" {
		s.errorf("%s %s %v: %s", u, query, vars, code)
	}
	t1 := time.Now()
	if want := live(end, had, t1); *field != want && !endsBetween(end, t0, t1) {
		s.errorf("%s %s %v: answered %v, want %v", u, query, vars, *field, want)
	}
	s.w.mu.Lock()
	forget()
	s.w.mu.Unlock()
}

// send sends a message, a thread reply or a reply shown in the channel
// (by op) as u to ch. A block by the other member of a two-member channel
// refuses it; a shadow ban gives it no sequence number.
func (s *silenceRun) send(r *rand.Rand, u, ch string, op int, exact bool) {
	s.t.Helper()
	w := s.w
	w.mu.Lock()
	in := map[string]any{"text": "x"}
	reply := op >= 28 && len(w.tops[ch]) > 0
	shown := reply && op >= 32
	if reply {
		in["parentId"] = w.tops[ch][r.IntN(len(w.tops[ch]))]
		in["showInChannel"] = shown
	}
	refused := false
	if ms := w.members[ch]; len(ms) == 2 {
		other := ms[0]
		if other == u {
			other = ms[1]
		}
		refused = w.blocks[other][u]
	}
	shadowed := w.shadow[ch][u]
	w.mu.Unlock()
	var out struct{ SendMessage struct{ ID string } }
	code := s.do(u, `mutation($c: ID!, $in: MessageInput!) { sendMessage(channel: $c, input: $in) { id } }`, brooktest.Vars{"c": ch, "in": in}, &out)
	switch {
	case !exact:
		// The other member may block u meanwhile.
		if code != "" && code != "FORBIDDEN" {
			s.errorf("%s sends to %s: %s", u, ch, code)
		}
		return
	case refused:
		if code != "FORBIDDEN" {
			s.errorf("%s sends to %s, whose other member blocks it: %q, want FORBIDDEN", u, ch, code)
		}
		return
	case code != "":
		s.errorf("%s sends to %s: %s", u, ch, code)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if (!reply || shown) && !shadowed {
		w.lastSeq[ch]++
		w.msgs[ch] = append(w.msgs[ch], countedMsg{id: out.SendMessage.ID, sender: u, seq: w.lastSeq[ch]})
		if !reply {
			w.tops[ch] = append(w.tops[ch], out.SendMessage.ID)
		}
	}
	w.read[ch][u] = w.lastSeq[ch] // sending marks the channel read
}

// markUnread marks ch unread for u from one of its counted messages. A
// message of a user u blocks is none to u (NOT_FOUND). Run alone, the
// count it answers and the totals of its myEvents event (computed when
// it ran, from PostgreSQL) are the model's.
func (s *silenceRun) markUnread(r *rand.Rand, u, ch string, exact bool) {
	s.t.Helper()
	w := s.w
	w.mu.Lock()
	if len(w.msgs[ch]) == 0 {
		w.mu.Unlock()
		return
	}
	m := w.msgs[ch][r.IntN(len(w.msgs[ch]))]
	hidden := w.blocks[u][m.sender]
	w.mu.Unlock()
	var out struct {
		MarkUnread struct {
			UnreadCount int
			LastRead    time.Time
		}
	}
	t0 := time.Now()
	code := s.do(u, `mutation($c: ID!, $m: ID!) { markUnread(channel: $c, message: $m) { unreadCount lastRead } }`, brooktest.Vars{"c": ch, "m": m.id}, &out)
	t1 := time.Now()
	switch {
	case hidden:
		if code != "NOT_FOUND" {
			s.errorf("%s marks %s unread from a message of %s, whom it blocks: %q, want NOT_FOUND", u, ch, m.sender, code)
		}
		return
	case code != "":
		s.errorf("%s marks %s unread: %s", u, ch, code)
		return
	case !exact:
		return
	}
	w.mu.Lock()
	w.read[ch][u] = m.seq - 1
	ambiguous := w.ending(t0, t1)
	want, count := w.counts(u, t1), w.unread(u, ch, t1)
	w.mu.Unlock()
	if ambiguous {
		return
	}
	if out.MarkUnread.UnreadCount != count {
		s.errorf("%s marks %s unread from seq %d: %d unread, model %d", u, ch, m.seq, out.MarkUnread.UnreadCount, count)
	}
	ev, ok := s.logs[u].await("notification.mark_unread", ch, out.MarkUnread.LastRead)
	switch {
	case !ok:
		s.noEvent++
	case ev.TotalUnreadCount != want.Total || ev.UnreadChannels != want.Channels:
		s.errorf("%s marks %s unread: the event's totals %d over %d channels, model %+v", u, ch, ev.TotalUnreadCount, ev.UnreadChannels, want)
	default:
		s.events++
	}
}
