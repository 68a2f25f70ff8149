package ephemeral_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brookhq/brook/internal/ephemeral"
	"github.com/brookhq/brook/store"
)

// Slot agrees with Redis Cluster's own hashing (values from the Redis
// Cluster specification and CLUSTER KEYSLOT); TestCluster checks more
// keys against a live cluster.
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo":                   12182,
		"bar":                   5061,
		"123456789":             0x31C3 % 16384,
		"{user1000}.following":  ephemeral.Slot("user1000"),
		"x{}{user1000}":         ephemeral.Slot("x{}{user1000}"),
		"{}x":                   ephemeral.Slot("{}x"),
		"a{u:1}b":               ephemeral.Slot("u:1"),
		"brook:chat:u:{u:1}":    ephemeral.Slot("brook:chat:ub:{u:1}"),
		"brook:chat:seq:{c:42}": ephemeral.Slot("c:42"),
	} {
		if got := ephemeral.Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// The unread bookkeeping on one Redis, as the cluster test runs it.
func TestUnreadBookkeepingScenario(t *testing.T) {
	unreadScenario(t, open(t), open(t), members(30))
}

// members returns n user ids of one test run.
func members(n int) []string {
	run := fmt.Sprint(time.Now().UnixNano())
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d-%s", i, run)
	}
	return out
}

// unreadScenario runs the unread bookkeeping of one channel of users on
// s, with other as a second node, asserting exact counts and totals at
// every step: rebuilds, bumps (and their replay), reads, a channel above
// the push limit, an epoch move after a failed write, a discard.
func unreadScenario(t *testing.T, s, other *ephemeral.State, users []string) {
	t.Helper()
	ctx := context.Background()
	small, big := "small-"+users[0], "big-"+users[0]
	sender := users[0]
	rebuild := func(st *ephemeral.State, rows func(u string) []store.UnreadRow) {
		t.Helper()
		for _, u := range users {
			_, complete, gen, err := st.ReadUnread(ctx, u)
			if err != nil || complete {
				t.Fatalf("%s: read before a rebuild: complete %v, %v", u, complete, err)
			}
			if err := st.RebuildUnread(ctx, u, gen, rows(u), 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect := func(st *ephemeral.State, want func(u string) map[string]int) {
		t.Helper()
		for _, u := range users {
			counts, complete, _, err := st.ReadUnread(ctx, u)
			if err != nil || !complete {
				t.Fatalf("%s: read: complete %v, %v", u, complete, err)
			}
			got := map[string]int{}
			for _, c := range counts {
				got[c.ChannelID] = c.UnreadCount
			}
			if w := want(u); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("%s: counts %v, want %v", u, got, w)
			}
		}
	}
	rebuild(s, func(string) []store.UnreadRow {
		return []store.UnreadRow{{Channel: small, Members: len(users)}}
	})
	// Five messages from the sender; each is bumped twice (a retried job).
	for seq := int64(1); seq <= 5; seq++ {
		for range 2 {
			totals, err := s.BumpUnread(ctx, small, seq, users, &store.ReadPosition{ChannelID: small, UserID: sender, Seq: seq})
			if err != nil {
				t.Fatal(err)
			}
			for i, u := range users {
				want := store.UnreadTotals{Total: int(seq), Channels: 1, Known: true}
				if u == sender {
					want = store.UnreadTotals{Known: true}
				}
				if totals[i] != want {
					t.Fatalf("message %d: %s's totals %+v, want %+v", seq, u, totals[i], want)
				}
			}
		}
	}
	expect(other, func(u string) map[string]int {
		if u == sender {
			return map[string]int{}
		}
		return map[string]int{small: 5}
	})
	// A reader catches up to 3 of 5.
	reader := users[len(users)-1]
	tot, err := other.RecordRead(ctx, &store.ReadPosition{ChannelID: small, UserID: reader, Seq: 3})
	if err != nil || tot != (store.UnreadTotals{Total: 2, Channels: 1, Known: true}) {
		t.Fatalf("record read: %+v, %v", tot, err)
	}

	// Membership changes: every user's counters are invalidated and
	// rebuilt with a channel above the push limit too.
	if err := s.InvalidateUnread(ctx, users); err != nil {
		t.Fatal(err)
	}
	rebuild(other, func(u string) []store.UnreadRow {
		r := int64(0)
		if u == sender {
			r = 5
		} else if u == reader {
			r = 3
		}
		return []store.UnreadRow{{Channel: small, LastSeq: 5, Read: r, Members: len(users)}, {Channel: big, Members: 1000}}
	})
	for seq := int64(1); seq <= 4; seq++ {
		if err := s.SetBigChannelSeq(ctx, big, seq, &store.ReadPosition{ChannelID: big, UserID: sender, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(u string) map[string]int {
		switch u {
		case sender:
			return map[string]int{}
		case reader:
			return map[string]int{small: 2, big: 4}
		}
		return map[string]int{small: 5, big: 4}
	}
	expect(s, want)

	// A write failed on the other node: once it settles, no counters are
	// trusted, on any node, until rebuilt.
	other.MarkUnreadWriteFailed()
	if err := other.SettleUnread(ctx); err != nil {
		t.Fatal(err)
	}
	totals, err := s.BumpUnread(ctx, small, 5, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(totals, func(t store.UnreadTotals) bool { return t.Known }); i >= 0 {
		t.Fatalf("%s's totals known after the epoch moved: %+v", users[i], totals[i])
	}
	rebuild(s, func(u string) []store.UnreadRow {
		w := want(u)
		return []store.UnreadRow{{Channel: small, LastSeq: 5, Read: 5 - int64(w[small]), Members: len(users)},
			{Channel: big, LastSeq: 4, Read: 4 - int64(w[big]), Members: 1000}}
	})
	expect(other, want)

	// A discard throws one user's counters away.
	if err := s.DiscardUnread(ctx, []string{reader}); err != nil {
		t.Fatal(err)
	}
	if _, complete, _, err := other.ReadUnread(ctx, reader); err != nil || complete {
		t.Fatalf("read after a discard: complete %v, %v", complete, err)
	}
}

// rateScenario checks that budgets of different owners (different slots
// of a cluster) are charged all or none.
func rateScenario(t *testing.T, s, other *ephemeral.State) {
	t.Helper()
	ctx := context.Background()
	tag := fmt.Sprint(time.Now().UnixNano())
	wide := ephemeral.Budget{Key: "wide", Owner: "u:a" + tag, Rate: ephemeral.Rate{Rate: 10, Period: time.Minute, Burst: 10}, What: "wide things"}
	narrow := ephemeral.Budget{Key: "narrow:" + tag, Rate: ephemeral.Rate{Rate: 2, Period: time.Minute, Burst: 2}, What: "narrow things"}
	for i, st := range []*ephemeral.State{s, other} {
		if err := st.AllowAll(ctx, wide, narrow); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
	}
	var rl *ephemeral.RateLimitedError
	for range 3 {
		if err := s.AllowAll(ctx, wide, narrow); !asRateLimited(err, &rl) || rl.What != "narrow things" {
			t.Fatalf("event over the narrow budget: %v", err)
		}
	}
	// The refused events cost the wide budget nothing: 8 of 10 are left.
	for i := range 8 {
		if err := other.AllowAll(ctx, wide); err != nil {
			t.Fatalf("wide event %d: %v", i+3, err)
		}
	}
	if err := s.AllowAll(ctx, wide); !asRateLimited(err, &rl) || rl.What != "wide things" {
		t.Fatalf("eleventh wide event: %v", err)
	}
}

func asRateLimited(err error, rl **ephemeral.RateLimitedError) bool {
	e, ok := err.(*ephemeral.RateLimitedError)
	*rl = e
	return ok
}

// presenceCallsScenario runs presence and call state for users and
// participants whose keys span slots.
func presenceCallsScenario(t *testing.T, s *ephemeral.State, users []string) {
	t.Helper()
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	for i, u := range users {
		if i%2 == 0 {
			if first, err := s.MarkOnline(ctx, u, "conn-"+u, until); err != nil || !first {
				t.Fatalf("mark %s online: first %v, %v", u, first, err)
			}
		}
	}
	online, err := s.Online(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	for i := range users {
		if online[i] != (i%2 == 0) {
			t.Fatalf("%s online: %v", users[i], online[i])
		}
	}
	ids := make([]uuid.UUID, 12)
	for i := range ids {
		ids[i] = uuid.New()
		p := &store.CallParticipant{ID: ids[i], SessionID: uuid.New(), CallID: "call-" + users[0], UserID: users[i%len(users)], JoinedAt: time.UnixMicro(time.Now().UnixMicro()).UTC()}
		if err := s.RememberCallParticipant(ctx, p, until); err != nil {
			t.Fatal(err)
		}
	}
	facts, err := s.CallFacts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range facts {
		if f == nil || f.ID != ids[i] || f.UserID != users[i%len(users)] {
			t.Fatalf("facts %d: %+v", i, f)
		}
	}
	if err := s.DropCallFacts(ctx, ids[:4]); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetCallParticipants(ctx, ids[4:8]); err != nil {
		t.Fatal(err)
	}
	facts, err = s.CallFacts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range facts {
		if (f != nil) != (i >= 8) {
			t.Fatalf("facts %d after drops: %+v", i, f)
		}
	}
}

func TestRateAndPresenceScenarios(t *testing.T) {
	rateScenario(t, open(t), open(t))
	presenceCallsScenario(t, open(t), members(8))
}
