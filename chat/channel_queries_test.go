package chat_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brookhq/brook/internal/brooktest"
)

// Channel queries: channels(filter, sort, first, after).

type listedChannel struct {
	ID          string
	Name        *string
	UnreadCount int
	MemberCount int
}

const listQuery = `query($f: ChannelFilter, $s: [ChannelSort!], $first: Int, $after: String) {
	channels(filter: $f, sort: $s, first: $first, after: $after) {
		edges { cursor node { id name unreadCount memberCount } } pageInfo { hasNextPage endCursor } } }`

type listPage struct {
	Channels struct {
		Edges []struct {
			Cursor string
			Node   listedChannel
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

// pageAll reads a list first channels at a time to its end, checking
// every page: full pages until the last, no channel twice.
func pageAll(t *testing.T, n *brooktest.Node, user string, filter map[string]any, sort []map[string]any, first int) []listedChannel {
	t.Helper()
	var out []listedChannel
	seen := map[string]bool{}
	var after *string
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatalf("more than 50 pages of %d", first)
		}
		var p listPage
		n.Must(t, env.Token(t, user), listQuery, brooktest.Vars{"f": filter, "s": sort, "first": first, "after": after}, &p)
		c := p.Channels
		if len(c.Edges) > first || (c.PageInfo.HasNextPage && len(c.Edges) != first) {
			t.Fatalf("page %d of %d: %d channels, hasNextPage %v", pages, first, len(c.Edges), c.PageInfo.HasNextPage)
		}
		for _, e := range c.Edges {
			if seen[e.Node.ID] {
				t.Fatalf("%s twice (filter %v, sort %v, first %d)", e.Node.ID, filter, sort, first)
			}
			seen[e.Node.ID] = true
			out = append(out, e.Node)
		}
		if !c.PageInfo.HasNextPage {
			return out
		}
		after = c.PageInfo.EndCursor
	}
}

func idsOf(cs []listedChannel) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// makeChannel creates a channel from a ChannelInput and returns its id.
func makeChannel(t *testing.T, n *brooktest.Node, user string, in map[string]any) string {
	t.Helper()
	var out struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`, brooktest.Vars{"in": in}, &out)
	return out.CreateChannel.ID
}

// truthRow is a channel of a user's list with its sort keys, read from
// PostgreSQL on their own terms.
type truthRow struct {
	id                  string
	activity, created   time.Time
	unread, memberCount int64
	name                string
}

// Every sort, in both directions, alone and combined, pages through the
// whole list (1 and 3 at a time, and at once) in exactly the order the
// rows' values give, ties broken by id: no duplicate, no gap. Channels
// tie on every key somewhere: equal names but for case, equal creation
// and last message times, equal unread and member counts.
func TestChatChannelQuerySorts(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	v, a, b := "v-"+tag, "a-"+tag, "b-"+tag
	env.AddUsers(t, n, v, a, b)
	ch := func(user, typ, name string, members ...string) string {
		in := map[string]any{"type": typ, "members": members}
		if name != "" {
			in["name"] = name
		}
		return makeChannel(t, n, user, in)
	}
	s1 := ch(v, "messaging", "alpha", a)
	s2 := ch(v, "messaging", "Alpha", a)
	s3 := ch(a, "messaging", "beta", v, b)
	s4 := ch(v, "messaging", "Beta")
	s5 := ch(b, "messaging", "", v)
	s6 := ch(a, "livestream", "gamma")
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": s6}, nil)
	s7 := ch(a, "messaging", "delta")
	n.Must(t, env.Token(t, a), `mutation($c: ID!, $u: ID!) { inviteMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": s7, "u": v}, nil)
	s8 := ch(v, "messaging", "epsilon", a, b)
	sendMsg(t, n, a, s1, "one")
	sendMsg(t, n, a, s1, "two")
	sendMsg(t, n, a, s2, "one")
	sendMsg(t, n, a, s2, "two")
	sendMsg(t, n, b, s3, "one")
	sendMsg(t, n, v, s4, "mine")
	top := sendMsg(t, n, a, s8, "top")
	sendMsg(t, n, b, s8, "a reply counts for no one", map[string]any{"parentId": top.ID})
	// Ties on the time keys.
	ctx := context.Background()
	tie := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	if _, err := n.Store.DB().Exec(ctx, `UPDATE channels SET created_at = $2 WHERE id = ANY($1)`, []string{s4, s5, s6}, tie); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Store.DB().Exec(ctx, `UPDATE channels SET last_message_at = $2 WHERE id = ANY($1)`, []string{s1, s2}, tie.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	all := []string{s1, s2, s3, s4, s5, s6, s7, s8}

	rows, err := n.Store.DB().Query(ctx, `
		SELECT c.id, coalesce(c.last_message_at, c.created_at), c.created_at,
			CASE WHEN m.user_id IS NULL THEN 0 ELSE greatest(c.last_seq - m.last_read_seq, 0) END,
			(SELECT count(*) FROM channel_members WHERE channel_id = c.id), lower(coalesce(c.name, ''))
		FROM channels c LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $2
		WHERE c.id = ANY($1)`, all, v)
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]truthRow{}
	var r truthRow
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.activity, &r.created, &r.unread, &r.memberCount, &r.name}, func() error {
		truth[r.id] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(truth) != len(all) {
		t.Fatalf("truth of %d channels", len(truth))
	}
	if truth[s1].unread != 2 || truth[s2].unread != 2 || truth[s3].unread != 1 || truth[s8].unread != 1 || truth[s7].unread != 0 {
		t.Fatalf("unread truth: %+v", truth)
	}

	cmp := map[string]func(x, y truthRow) int{
		"LAST_MESSAGE_AT": func(x, y truthRow) int { return x.activity.Compare(y.activity) },
		"CREATED_AT":      func(x, y truthRow) int { return x.created.Compare(y.created) },
		"UNREAD_COUNT":    func(x, y truthRow) int { return int(x.unread - y.unread) },
		"MEMBER_COUNT":    func(x, y truthRow) int { return int(x.memberCount - y.memberCount) },
		"NAME":            func(x, y truthRow) int { return strings.Compare(x.name, y.name) },
	}
	expected := func(sort []map[string]any) []string {
		if len(sort) == 0 {
			sort = []map[string]any{{"field": "LAST_MESSAGE_AT", "direction": "DESC"}}
		}
		ids := slices.Clone(all)
		slices.SortFunc(ids, func(i, j string) int {
			desc := false
			for _, s := range sort {
				desc = s["direction"] == "DESC"
				c := cmp[s["field"].(string)](truth[i], truth[j])
				if desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			if desc {
				return strings.Compare(j, i)
			}
			return strings.Compare(i, j)
		})
		return ids
	}

	var sorts [][]map[string]any
	sorts = append(sorts, nil)
	for f := range cmp {
		for _, d := range []string{"ASC", "DESC"} {
			sorts = append(sorts, []map[string]any{{"field": f, "direction": d}})
		}
	}
	sorts = append(sorts,
		[]map[string]any{{"field": "NAME"}}, // ASC by default
		[]map[string]any{{"field": "UNREAD_COUNT", "direction": "DESC"}, {"field": "NAME", "direction": "ASC"}},
		[]map[string]any{{"field": "MEMBER_COUNT", "direction": "ASC"}, {"field": "LAST_MESSAGE_AT", "direction": "DESC"}},
		[]map[string]any{{"field": "NAME", "direction": "DESC"}, {"field": "CREATED_AT", "direction": "ASC"}},
		[]map[string]any{{"field": "CREATED_AT", "direction": "ASC"}, {"field": "MEMBER_COUNT", "direction": "DESC"}, {"field": "UNREAD_COUNT", "direction": "ASC"}},
	)
	for _, sort := range sorts {
		want := expected(sort)
		for _, first := range []int{1, 3, 100} {
			got := pageAll(t, n, v, nil, sort, first)
			if !slices.Equal(idsOf(got), want) {
				t.Errorf("sort %v, %d a page:\n got %v\nwant %v", sort, first, idsOf(got), want)
			}
			for _, c := range got {
				if int64(c.UnreadCount) != truth[c.ID].unread || int64(c.MemberCount) != truth[c.ID].memberCount {
					t.Errorf("%s: unreadCount %d memberCount %d, truth %+v", c.ID, c.UnreadCount, c.MemberCount, truth[c.ID])
				}
			}
		}
	}

	// A cursor carries its sort: from another sort it is refused; with
	// the same sort, another filter may continue from it.
	var p listPage
	n.Must(t, env.Token(t, v), listQuery, brooktest.Vars{"s": []map[string]any{{"field": "NAME"}}, "first": 2}, &p)
	cur := p.Channels.PageInfo.EndCursor
	for _, s := range [][]map[string]any{nil, {{"field": "NAME", "direction": "DESC"}}, {{"field": "NAME"}, {"field": "CREATED_AT"}}} {
		brooktest.WantCode(t, n.Query(t, env.Token(t, v), listQuery, brooktest.Vars{"s": s, "after": cur}), "BAD_USER_INPUT")
	}
	n.Must(t, env.Token(t, v), listQuery, brooktest.Vars{"f": map[string]any{"type": "messaging"}, "s": []map[string]any{{"field": "NAME", "direction": "ASC"}}, "after": cur}, &p)
	if len(p.Channels.Edges) == 0 {
		t.Fatal("the same sort with another filter continues from the cursor")
	}
}

// Each filter alone and in combination lists exactly its channels, paged
// two at a time. The channels of this test carry data {t: tag}: other
// tests' open channels are in the same database.
func TestChatChannelQueryFilters(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	v, a, b, nobody := "v-"+tag, "a-"+tag, "b-"+tag, "nobody-"+tag
	env.AddUsers(t, n, v, a, b, nobody)
	ch := func(user, typ, name string, data map[string]any, policy string, members ...string) string {
		d := map[string]any{"t": tag}
		for k, x := range data {
			d[k] = x
		}
		in := map[string]any{"type": typ, "name": name, "data": d, "members": members}
		if policy != "" {
			in["joinPolicy"] = policy
		}
		return makeChannel(t, n, user, in)
	}
	blue := map[string]any{"team": "blue"}
	m1 := ch(v, "messaging", "Blue team", map[string]any{"team": "blue", "tier": map[string]any{"level": 1, "tags": []any{"x", "y"}}}, "", a)
	m2 := ch(a, "messaging", "Red team", map[string]any{"team": "red"}, "", v, b)
	m3 := ch(a, "messaging", "blue room", blue, "")
	n.Must(t, env.Token(t, a), `mutation($c: ID!, $u: ID!) { inviteMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": m3, "u": v}, nil)
	l1 := ch(a, "livestream", "Launch", blue, "")
	l2 := ch(a, "livestream", "Lounge", nil, "")
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": l2}, nil)
	o1 := ch(b, "messaging", "Open chat", blue, "OPEN")
	x1 := ch(b, "messaging", "Secret", blue, "")              // by invitation: never listed to v
	l3 := ch(b, "livestream", "Closed stage", blue, "INVITE") // a livestream by invitation: v cannot join it
	b1 := ch(b, "messaging", "Banned here", blue, "OPEN")
	n.Must(t, env.Token(t, b), `mutation($c: ID!, $u: ID!) { banUser(user: $u, channel: $c) }`, brooktest.Vars{"c": b1, "u": v}, nil)
	sendMsg(t, n, a, m2, "unread for v")
	sendMsg(t, n, a, l2, "unread for v")
	sendMsg(t, n, a, m1, "read by v below")
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, brooktest.Vars{"c": m1}, nil)
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { updateChannel(id: $c, frozen: true) { id } }`, brooktest.Vars{"c": m1}, nil)
	_ = x1
	_ = l3
	_ = b1

	mine := func(f map[string]any) map[string]any {
		out := map[string]any{"data": map[string]any{"t": tag}}
		for k, x := range f {
			if k == "data" {
				d := map[string]any{"t": tag}
				for dk, dv := range x.(map[string]any) {
					d[dk] = dv
				}
				x = d
			}
			out[k] = x
		}
		return out
	}
	cases := []struct {
		f    map[string]any
		want []string
	}{
		{nil, []string{m1, m2, m3, l2}},
		{map[string]any{"joined": true}, []string{m1, m2, l2}},
		{map[string]any{"joined": false}, []string{m3, l1, o1}},
		{map[string]any{"joined": false, "invited": false}, []string{l1, o1}},
		{map[string]any{"joined": false, "invited": true}, []string{m3}},
		{map[string]any{"invited": true}, []string{m3}},
		{map[string]any{"invited": false}, []string{m1, m2, l2}},
		{map[string]any{"joined": true, "invited": true}, nil},
		{map[string]any{"type": "livestream"}, []string{l2}},
		{map[string]any{"type": "livestream", "joined": false}, []string{l1}},
		{map[string]any{"hasUnread": true}, []string{m2, l2}},
		{map[string]any{"hasUnread": false}, []string{m1, m3}},
		{map[string]any{"hasUnread": true, "joined": false}, nil},
		{map[string]any{"hasUnread": false, "joined": false}, []string{m3, l1, o1}},
		{map[string]any{"frozen": true}, []string{m1}},
		{map[string]any{"frozen": false}, []string{m2, m3, l2}},
		{map[string]any{"members": map[string]any{"includes": []string{a}}}, []string{m1, m2, m3, l2}},
		{map[string]any{"members": map[string]any{"includes": []string{a, b}}}, []string{m2}},
		{map[string]any{"members": map[string]any{"includes": []string{v}}}, []string{m1, m2, l2}},
		{map[string]any{"members": map[string]any{"includes": []string{a}}, "joined": false}, []string{m3, l1}},
		{map[string]any{"members": map[string]any{"includes": []string{nobody}}}, nil},
		{map[string]any{"members": map[string]any{"includes": []string{}}}, []string{m1, m2, m3, l2}},
		{map[string]any{"data": blue}, []string{m1, m3}},
		{map[string]any{"data": map[string]any{"tier": map[string]any{"level": 1}}}, []string{m1}},
		{map[string]any{"data": map[string]any{"tier": map[string]any{"tags": []any{"y"}}}}, []string{m1}},
		{map[string]any{"data": map[string]any{"team": "green"}}, nil},
		{map[string]any{"data": blue, "joined": false}, []string{m3, l1, o1}},
		{map[string]any{"nameStartsWith": "blue"}, []string{m1, m3}},
		{map[string]any{"nameStartsWith": "BLUE T"}, []string{m1}},
		{map[string]any{"nameStartsWith": "l", "joined": false}, []string{l1}},
		{map[string]any{"nameStartsWith": ""}, []string{m1, m2, m3, l2}},
		{map[string]any{"nameStartsWith": "blue%"}, nil},
		{map[string]any{"joined": false, "type": "livestream", "nameStartsWith": "la"}, []string{l1}},
		{map[string]any{"data": blue, "hasUnread": false, "frozen": true}, []string{m1}},
		{map[string]any{"members": map[string]any{"includes": []string{a}}, "nameStartsWith": "red"}, []string{m2}},
		{map[string]any{"members": map[string]any{"includes": []string{b}}, "hasUnread": true, "type": "messaging"}, []string{m2}},
	}
	for _, c := range cases {
		for _, sort := range [][]map[string]any{nil, {{"field": "NAME", "direction": "DESC"}}} {
			got := idsOf(pageAll(t, n, v, mine(c.f), sort, 2))
			slices.Sort(got)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("filter %v sort %v: got %v, want %v", c.f, sort, got, want)
			}
		}
	}
	// Across sources (invitations and open channels), in order.
	got := idsOf(pageAll(t, n, v, mine(map[string]any{"joined": false}), []map[string]any{{"field": "NAME", "direction": "ASC"}}, 1))
	if want := []string{m3, l1, o1}; !slices.Equal(got, want) {
		t.Errorf("joined: false by name: %v, want %v", got, want)
	}
	// Joining moves a channel from one list to the other.
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": o1}, nil)
	if got := idsOf(pageAll(t, n, v, mine(map[string]any{"joined": false}), nil, 20)); slices.Contains(got, o1) {
		t.Errorf("a joined channel is still among those to join: %v", got)
	}
	if got := idsOf(pageAll(t, n, v, mine(map[string]any{"joined": true}), nil, 20)); !slices.Contains(got, o1) {
		t.Errorf("a joined channel is not among the joined: %v", got)
	}
}

// A channel listed for joining that the caller may not read (an open
// messaging channel) shows its profile, never its messages, members or
// last message; a livestream and an invitation read as before.
func TestChatChannelQueryProfileOnly(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	v, a := "v-"+tag, "a-"+tag
	env.AddUsers(t, n, v, a)
	data := map[string]any{"t": tag}
	open := makeChannel(t, n, a, map[string]any{"type": "messaging", "name": "Open", "data": data, "joinPolicy": "OPEN"})
	live := makeChannel(t, n, a, map[string]any{"type": "livestream", "name": "Live", "data": data})
	invite := makeChannel(t, n, a, map[string]any{"type": "messaging", "name": "Invite", "data": data})
	n.Must(t, env.Token(t, a), `mutation($c: ID!, $u: ID!) { inviteMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": invite, "u": v}, nil)
	for _, c := range []string{open, live, invite} {
		m := sendMsg(t, n, a, c, "members' words")
		n.Must(t, env.Token(t, a), `mutation($m: ID!) { pinMessage(id: $m) { id } }`, brooktest.Vars{"m": m.ID}, nil)
	}
	f := brooktest.Vars{"f": map[string]any{"joined": false, "data": data}}
	var profile struct {
		Channels struct {
			Edges []struct {
				Node struct {
					ID, Name      string
					MemberCount   int
					JoinPolicy    string
					LastMessageAt *string
					Membership    *struct{ Status string }
				}
			}
		}
	}
	env.CaughtUp(t) // another user's writes (BROOK_TEST_PG=replica)
	n.Must(t, env.Token(t, v), `query($f: ChannelFilter) { channels(filter: $f) { edges { node { id name memberCount joinPolicy lastMessageAt membership { status } } } } }`, f, &profile)
	if len(profile.Channels.Edges) != 3 {
		t.Fatalf("profiles: %+v", profile)
	}
	for _, e := range profile.Channels.Edges {
		if e.Node.MemberCount != 1 || e.Node.LastMessageAt == nil || e.Node.Name == "" {
			t.Fatalf("profile of %s: %+v", e.Node.ID, e.Node)
		}
	}
	// By name: invite, live, open. The open channel's content reads as
	// none, without an error that would void the whole list; the others'
	// is there.
	for _, c := range []struct {
		field, content string
		shown          []int // the channels (by name) that show content
	}{
		{`lastMessage { text }`, "members' words", []int{0, 1}},
		{`messages { edges { node { text } } }`, "members' words", []int{0, 1}},
		{`pinnedMessages { edges { node { text } } }`, "members' words", []int{0, 1}},
		{`members(first: 10) { edges { node { user { id } } } }`, a, []int{0, 1}},
		{`members(status: INVITED, first: 10) { edges { node { user { id } } } }`, v, []int{0}},
	} {
		var got struct {
			Channels struct {
				Edges []struct{ Node map[string]any }
			}
		}
		n.Must(t, env.Token(t, v), `query($f: ChannelFilter) { channels(filter: $f, sort: [{field: NAME}], first: 3) { edges { node { id `+c.field+` } } } }`, f, &got)
		key := strings.FieldsFunc(c.field, func(r rune) bool { return r == ' ' || r == '(' })[0]
		e := got.Channels.Edges
		if len(e) != 3 || e[2].Node["id"] != open || strings.Contains(fmt.Sprint(e[2].Node[key]), c.content) {
			t.Fatalf("%s: the open channel's content shows: %+v", c.field, e)
		}
		if key == "lastMessage" && e[2].Node[key] != nil || key != "lastMessage" && fmt.Sprint(e[2].Node[key]) != "map[edges:[]]" {
			t.Fatalf("%s: the open channel's content is not none: %+v", c.field, e[2].Node)
		}
		for _, i := range c.shown {
			if !strings.Contains(fmt.Sprint(e[i].Node[key]), c.content) {
				t.Fatalf("%s: the content of %s is missing: %+v", c.field, e[i].Node["id"], e)
			}
		}
	}
	// Once a member, it reads it all.
	n.Must(t, env.Token(t, v), `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": open}, nil)
	n.Must(t, env.Token(t, v), `query($f: ChannelFilter) { channels(filter: $f) { edges { node { lastMessage { text } messages { edges { node { text } } } } } } }`,
		brooktest.Vars{"f": map[string]any{"joined": true, "data": data}}, nil)
}

// Bad input of every kind is BAD_USER_INPUT, with nothing listed.
func TestChatChannelQueryBadInput(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	v := "v-" + tag
	env.AddUsers(t, n, v)
	tok := env.Token(t, v)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	bad := []brooktest.Vars{
		{"first": -1},
		{"first": 101},
		{"after": "not a cursor"},
		{"after": "bm90IGpzb24"}, // base64 of "not json"
		{"after": "eyJzIjoiTkFNRS5BU0MiLCJrIjpbMSwiYSJdfQ"},                         // a NAME cursor whose name is a number
		{"after": "eyJzIjoiTEFTVF9NRVNTQUdFX0FULkRFU0MiLCJrIjpbMV19"},               // a key short
		{"after": "eyJzIjoiTEFTVF9NRVNTQUdFX0FULkRFU0MiLCJrIjpbMSwiYSJdLCJ4IjoxfQ"}, // an unknown field
		{"after": "eyJzIjoiTkFNRS5BU0MiLCJrIjpbImEiLCJiXHUwMDAwIl19"},               // a NUL in the id
		{"f": map[string]any{"type": "group"}},
		{"f": map[string]any{"members": map[string]any{"includes": many}}},
		{"f": map[string]any{"members": map[string]any{"includes": []string{v, v}}}},
		{"f": map[string]any{"members": map[string]any{"includes": []string{"not:an id"}}}},
		{"f": map[string]any{"data": "blue"}},
		{"f": map[string]any{"data": []any{"blue"}}},
		{"f": map[string]any{"data": 3}},
		{"f": map[string]any{"nameStartsWith": strings.Repeat("x", 201)}},
		{"s": []map[string]any{{"field": "NAME"}, {"field": "NAME", "direction": "DESC"}}},
	}
	for _, vars := range bad {
		r := n.Query(t, tok, listQuery, vars)
		if r.Code() != "BAD_USER_INPUT" || strings.Contains(string(r.Data), `"edges"`) {
			t.Errorf("%v: %s %s %v", vars, r.Code(), r.Data, r.Errors)
		}
	}
	// Unknown enum values, and data that is no object in the query's
	// text, fail validation.
	for _, q := range []string{
		`{ channels(sort: [{field: POPULARITY}]) { edges { cursor } } }`,
		`{ channels(sort: [{field: NAME, direction: UP}]) { edges { cursor } } }`,
		`{ channels(filter: {data: "blue"}) { edges { cursor } } }`,
	} {
		if r := n.Query(t, tok, q, nil); r.Code() != "BAD_USER_INPUT" {
			t.Errorf("%s: %s %v", q, r.Code(), r.Errors)
		}
	}
}

// memberCount, and the MEMBER_COUNT order, stay exact while users join
// and leave at once: the counter moves in the statements that change
// membership, under the channel's row lock.
func TestChatChannelQueryMemberCountUnderConcurrentJoins(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	owner := "o-" + tag
	users := make([]string, 24)
	for i := range users {
		users[i] = fmt.Sprintf("j%d-%s", i, tag)
	}
	env.AddUsers(t, n, append([]string{owner}, users...)...)
	data := map[string]any{"t": tag}
	big := makeChannel(t, n, owner, map[string]any{"type": "messaging", "name": "Big", "data": data, "joinPolicy": "OPEN", "members": users[:4]})
	small := makeChannel(t, n, owner, map[string]any{"type": "messaging", "name": "Small", "data": data, "joinPolicy": "OPEN", "members": users[:8]})
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := env.Token(t, u)
			q := `mutation($c: ID!) { joinChannel(channel: $c) { id } }`
			if i < 4 {
				q = `mutation($c: ID!) { leaveChannel(channel: $c) }` // from big, at the same time
			}
			if r := n.Query(t, tok, q, brooktest.Vars{"c": big}); r.Code() != "" {
				t.Errorf("%s: %s", u, r.Code())
			}
			if r := n.Query(t, tok, `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": big}); r.Code() != "" {
				t.Errorf("%s: %s", u, r.Code())
			}
		}()
	}
	wg.Wait()
	for _, c := range []string{big, small} {
		rows := n.Count(t, `SELECT count(*) FROM channel_members WHERE channel_id = $1`, c)
		stored := n.Count(t, `SELECT member_count FROM channels WHERE id = $1`, c)
		if rows != stored {
			t.Fatalf("%s: %d members, member_count %d", c, rows, stored)
		}
	}
	if got := n.Count(t, `SELECT member_count FROM channels WHERE id = $1`, big); got != 1+len(users) {
		t.Fatalf("big has %d members, want %d", got, 1+len(users))
	}
	got := pageAll(t, n, owner, map[string]any{"data": data}, []map[string]any{{"field": "MEMBER_COUNT", "direction": "DESC"}}, 1)
	if len(got) != 2 || got[0].ID != big || got[0].MemberCount != 1+len(users) || got[1].MemberCount != 9 {
		t.Fatalf("by member count: %+v", got)
	}
}
