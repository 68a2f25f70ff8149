package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/brooktest"
)

// The model of TestChatUnreadSilenceProperty: what every user's unread
// counts must be after any sequence of sends, reads, marks, mutes,
// blocks, hides and shadow bans. Per user per channel, a counted message
// (top-level or shown in the channel, not a system message, not
// shadowed: those have a sequence number) is unread when its sequence
// number is after the user's read position and its sender is neither
// blocked nor muted by the user now. A muted channel keeps its count but
// leaves the totals. (The user's own messages count too once markUnread
// moved the read position before them: "it and those after it count as
// unread".)
type silenceWorld struct {
	mu        sync.Mutex
	users     []string
	channels  []string
	owner     map[string]string
	members   map[string][]string
	msgs      map[string][]countedMsg         // [channel]: counted messages, by sequence number
	tops      map[string][]string             // [channel]: top-level counted messages, parents for replies
	lastSeq   map[string]int                  // [channel]
	read      map[string]map[string]int       // [channel][user]
	blocks    map[string]map[string]bool      // [user][blocked]
	mutes     map[string]map[string]time.Time // [user][muted]: until, zero for good
	chanMute  map[string]map[string]time.Time // [channel][user]: until, zero for good
	shadow    map[string]map[string]bool      // [channel][user]: shadow-banned
	hidden    map[string]map[string]bool      // [channel][user]
	userChans map[string][]string             // [user]: its channels
}

type countedMsg struct {
	id, sender string
	seq        int
}

func newSilenceWorld(users, channels []string, owner map[string]string, members map[string][]string) *silenceWorld {
	w := &silenceWorld{users: users, channels: channels, owner: owner, members: members,
		msgs: map[string][]countedMsg{}, tops: map[string][]string{}, lastSeq: map[string]int{},
		read: map[string]map[string]int{}, blocks: map[string]map[string]bool{}, mutes: map[string]map[string]time.Time{},
		chanMute: map[string]map[string]time.Time{}, shadow: map[string]map[string]bool{}, hidden: map[string]map[string]bool{},
		userChans: map[string][]string{}}
	for _, u := range users {
		w.blocks[u], w.mutes[u] = map[string]bool{}, map[string]time.Time{}
	}
	for _, ch := range channels {
		w.read[ch], w.chanMute[ch], w.shadow[ch], w.hidden[ch] = map[string]int{}, map[string]time.Time{}, map[string]bool{}, map[string]bool{}
		for _, u := range members[ch] {
			w.userChans[u] = append(w.userChans[u], ch)
		}
	}
	return w
}

// live says whether a mute that ends at until (zero: never) is in force
// at at.
func live(until time.Time, ok bool, at time.Time) bool {
	return ok && (until.IsZero() || until.After(at))
}

// silenced says whether user u counts messages of sender not, at at.
func (w *silenceWorld) silenced(u, sender string, at time.Time) bool {
	until, ok := w.mutes[u][sender]
	return w.blocks[u][sender] || live(until, ok, at)
}

// unread is u's count in channel ch at at.
func (w *silenceWorld) unread(u, ch string, at time.Time) int {
	n := 0
	for _, m := range w.msgs[ch] {
		if m.seq > w.read[ch][u] && !w.silenced(u, m.sender, at) {
			n++
		}
	}
	return n
}

// channelMuted says whether u mutes ch at at.
func (w *silenceWorld) channelMuted(u, ch string, at time.Time) bool {
	until, ok := w.chanMute[ch][u]
	return live(until, ok, at)
}

// silences says whether u blocks or mutes anyone or mutes a channel at
// at: its counts then come from PostgreSQL, not from Redis counters.
func (w *silenceWorld) silences(u string, at time.Time) bool {
	for other := range w.blocks[u] {
		if w.silenced(u, other, at) {
			return true
		}
	}
	for other := range w.mutes[u] {
		if w.silenced(u, other, at) {
			return true
		}
	}
	for _, ch := range w.userChans[u] {
		if w.channelMuted(u, ch, at) {
			return true
		}
	}
	return false
}

// silenceCounts are a user's counts: per channel with unread messages
// (and whether the user mutes it), and the totals.
type silenceCounts struct {
	Per             map[string]int
	Muted           map[string]bool
	Total, Channels int
}

func (w *silenceWorld) counts(u string, at time.Time) silenceCounts {
	c := silenceCounts{Per: map[string]int{}, Muted: map[string]bool{}}
	for _, ch := range w.userChans[u] {
		n := w.unread(u, ch, at)
		if n == 0 {
			continue
		}
		c.Per[ch] = n
		if w.channelMuted(u, ch, at) {
			c.Muted[ch] = true
			continue
		}
		c.Total += n
		c.Channels++
	}
	return c
}

// ending says whether a mute ends between from and to: the product may
// have applied it, or not, to what it answered meanwhile.
func (w *silenceWorld) ending(from, to time.Time) bool {
	for _, set := range []map[string]map[string]time.Time{w.mutes, w.chanMute} {
		for _, ms := range set {
			for _, end := range ms {
				if endsBetween(end, from, to) {
					return true
				}
			}
		}
	}
	return false
}

// endsBetween says whether a mute that ends at end (zero: never) ends
// between from and to, give or take the time a request takes to reach
// PostgreSQL.
func endsBetween(end, from, to time.Time) bool {
	return !end.IsZero() && end.After(from.Add(-20*time.Millisecond)) && !end.After(to.Add(20*time.Millisecond))
}

// nextEnd is the first end of a mute after at (zero: none).
func (w *silenceWorld) nextEnd(at time.Time) time.Time {
	var next time.Time
	for _, set := range []map[string]map[string]time.Time{w.mutes, w.chanMute} {
		for _, ms := range set {
			for _, until := range ms {
				if until.After(at) && (next.IsZero() || until.Before(next)) {
					next = until
				}
			}
		}
	}
	return next
}

// resync sets the messages and read positions from PostgreSQL, after
// operations whose commit order the model could not follow. The rest
// (mutes, blocks, bans, hides) each user changed alone, in order.
func (w *silenceWorld) resync(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) error {
	for _, ch := range w.channels {
		rows, err := db.Query(ctx, `SELECT m.id::text, m.seq, m.user_id, m.parent_id IS NULL FROM messages m
			WHERE m.channel_id = $1 AND (m.parent_id IS NULL OR m.show_in_channel) AND m.type <> 'system' AND NOT m.shadowed ORDER BY m.seq`, ch)
		if err != nil {
			return err
		}
		w.msgs[ch], w.tops[ch] = nil, nil
		var m countedMsg
		var top bool
		if _, err := pgx.ForEachRow(rows, []any{&m.id, &m.seq, &m.sender, &top}, func() error {
			w.msgs[ch] = append(w.msgs[ch], m)
			if top {
				w.tops[ch] = append(w.tops[ch], m.id)
			}
			return nil
		}); err != nil {
			return err
		}
		rows, err = db.Query(ctx, `SELECT m.user_id, m.last_read_seq, c.last_seq FROM channel_members m JOIN channels c ON c.id = m.channel_id
			WHERE m.channel_id = $1`, ch)
		if err != nil {
			return err
		}
		var u string
		var r, last int
		if _, err := pgx.ForEachRow(rows, []any{&u, &r, &last}, func() error {
			w.read[ch][u], w.lastSeq[ch] = r, last
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// userEvent is a myEvents event.
type userEvent struct {
	Type                             string
	Channel                          string
	TotalUnreadCount, UnreadChannels int
	CreatedAt                        time.Time
}

// eventLog follows a user's myEvents and keeps what arrives, so that the
// server never finds the subscriber slow however long the test waits.
type eventLog struct {
	mu     sync.Mutex
	events []userEvent
}

func followEvents(t *testing.T, n *brooktest.Node, token string) *eventLog {
	t.Helper()
	sub := n.MustDial(t, token).Subscribe(`subscription { myEvents { type channel totalUnreadCount unreadChannels createdAt } }`, nil)
	l := &eventLog{}
	go func() {
		for m := range sub.C {
			var r brooktest.Response
			var ev struct{ MyEvents userEvent }
			if m.Type == "next" && json.Unmarshal(m.Payload, &r) == nil && r.Decode(&ev) == nil {
				l.mu.Lock()
				l.events = append(l.events, ev.MyEvents)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// await returns the event of a type about a channel created at at,
// dropping those that came before it; false when none comes within 2s.
func (l *eventLog) await(typ, channel string, at time.Time) (userEvent, bool) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		l.mu.Lock()
		for i, ev := range l.events {
			if ev.Type == typ && ev.Channel == channel && ev.CreatedAt.Equal(at) {
				l.events = l.events[i+1:]
				l.mu.Unlock()
				return ev, true
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return userEvent{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check compares, once the jobs are done, the model's messages with
// PostgreSQL's and every user's counts wherever they show. It waits out
// a mute that is about to end, and checks a user again when one ended
// during its check.
func (s *silenceRun) check(when string) {
	t := s.t
	t.Helper()
	s.op = when
	s.n.WaitForJobs(t)
	w := s.w
	before := fmt.Sprint(w.msgs, w.tops, w.lastSeq, w.read)
	if err := w.resync(context.Background(), s.n.Store.DB()); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(w.msgs, w.tops, w.lastSeq, w.read); after != before {
		t.Fatalf("seed %d, %s: the model's messages and read positions\n%s\nPostgreSQL's\n%s", s.seed, when, before, after)
	}
	for _, u := range w.users {
		for attempt := 0; !s.checkUser(u); attempt++ {
			if attempt == 5 {
				t.Fatalf("seed %d, %s: mutes of %s kept ending during its check", s.seed, when, u)
			}
		}
		s.calm[u] = s.r.IntN(2) == 0
	}
}

// checkUser checks one user's counts, and reports false when a mute
// ended during the check (which then says nothing).
func (s *silenceRun) checkUser(u string) bool {
	t, w, ctx := s.t, s.w, context.Background()
	t.Helper()
	if next := w.nextEnd(time.Now()); !next.IsZero() && time.Until(next) < 300*time.Millisecond {
		time.Sleep(time.Until(next) + 30*time.Millisecond)
	}
	at := time.Now()
	chs := w.userChans[u]
	var q strings.Builder
	vars := brooktest.Vars{}
	q.WriteString(`query(`)
	for i, ch := range chs {
		fmt.Fprintf(&q, "$c%d: ID!, ", i)
		vars[fmt.Sprintf("c%d", i)] = ch
	}
	q.WriteString(`) { unreadCounts { totalUnreadCount unreadChannels channels { channel { id } unreadCount muted } }`)
	for i := range chs {
		fmt.Fprintf(&q, ` c%d: channel(id: $c%d) { unreadCount membership { unreadCount muted } }`, i, i)
	}
	q.WriteString(` }`)
	var api struct {
		UnreadCounts struct {
			TotalUnreadCount, UnreadChannels int
			Channels                         []struct {
				Channel     struct{ ID string }
				UnreadCount int
				Muted       bool
			}
		}
	}
	var aliases map[string]json.RawMessage
	r, err := s.n.Client(s.tokens[u]).Do(ctx, q.String(), vars)
	if err == nil {
		if err = r.Decode(&api); err == nil {
			err = r.Decode(&aliases)
		}
	}
	if err != nil {
		t.Fatalf("seed %d, %s: %s's counts: %v", s.seed, s.op, u, err)
	}
	truth, err := s.n.Store.UnreadCountsFromDB(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	silencing := w.silences(u, at)
	// myEvents: marking read a channel read to its end changes nothing,
	// and the event carries the totals (from Redis, or PostgreSQL).
	var probe *userEvent
	for _, ch := range chs {
		if w.read[ch][u] != w.lastSeq[ch] {
			continue
		}
		var out struct{ MarkRead struct{ LastRead time.Time } }
		if code := s.do(u, `mutation($c: ID!) { markRead(channel: $c) { lastRead } }`, brooktest.Vars{"c": ch}, &out); code != "" {
			t.Fatalf("seed %d, %s: %s's markRead of %s: %s", s.seed, s.op, u, ch, code)
		}
		if ev, ok := s.logs[u].await("notification.mark_read", ch, out.MarkRead.LastRead); ok {
			probe = &ev
		} else {
			s.noEvent++
		}
		break
	}
	if w.ending(at, time.Now()) {
		return false
	}
	want := w.counts(u, at)
	fail := func(what string, got any) {
		t.Helper()
		t.Fatalf("seed %d, %s: %s's counts %s: %+v, model %+v", s.seed, s.op, u, what, got, want)
	}
	got := silenceCounts{Per: map[string]int{}, Muted: map[string]bool{}, Total: api.UnreadCounts.TotalUnreadCount, Channels: api.UnreadCounts.UnreadChannels}
	for _, c := range api.UnreadCounts.Channels {
		got.Per[c.Channel.ID] = c.UnreadCount
		if c.Muted {
			got.Muted[c.Channel.ID] = true
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		fail("from unreadCounts", got)
	}
	for i, ch := range chs {
		var c struct {
			UnreadCount int
			Membership  struct {
				UnreadCount int
				Muted       bool
			}
		}
		if err := json.Unmarshal(aliases[fmt.Sprintf("c%d", i)], &c); err != nil {
			t.Fatal(err)
		}
		n := w.unread(u, ch, at)
		if c.UnreadCount != n || c.Membership.UnreadCount != n || c.Membership.Muted != w.channelMuted(u, ch, at) {
			fail(fmt.Sprintf("in channel(%s) (model: %d)", ch, n), c)
		}
	}
	db := silenceCounts{Per: map[string]int{}, Muted: map[string]bool{}, Total: truth.TotalUnreadCount, Channels: truth.UnreadChannels}
	for _, c := range truth.Channels {
		db.Per[c.ChannelID] = c.UnreadCount
		if c.Muted {
			db.Muted[c.ChannelID] = true
		}
	}
	if fmt.Sprint(db) != fmt.Sprint(want) {
		fail("in PostgreSQL", db)
	}
	if silencing {
		s.silencing++
	} else {
		s.plain++
		if inRedis, ok := s.redisCounts(u); !ok || fmt.Sprint(inRedis) != fmt.Sprint(want.Per) {
			fail(fmt.Sprintf("in Redis (complete: %v)", ok), inRedis)
		}
	}
	if probe != nil {
		s.events++
		if probe.TotalUnreadCount != want.Total || probe.UnreadChannels != want.Channels {
			fail("on myEvents", *probe)
		}
	}
	return true
}

// redisCounts reads a user's complete Redis counters, as unreadCounts
// left them. While they are incomplete (a rebuild that timed out, on a
// loaded machine: Redis answers requests within 50ms or not at all), it
// reads unreadCounts again, which rebuilds them; a Redis that times out
// is asked again.
func (s *silenceRun) redisCounts(u string) (map[string]int, bool) {
	for attempt := 0; attempt < 20; attempt++ {
		counts, complete, _, err := s.n.State.ReadUnread(context.Background(), u)
		if err == nil && complete {
			out := map[string]int{}
			for _, c := range counts {
				out[c.ChannelID] = c.UnreadCount
			}
			return out, true
		}
		if err == nil {
			s.do(u, `{ unreadCounts { totalUnreadCount } }`, nil, nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, false
}
