package chat_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

const flagFields = `id targetKind status action reason message { id type } user { id } activity { id } subject { id } flaggedBy { id } resolvedBy { id } resolvedAt createdAt`

type flagResult struct {
	ID, TargetKind, Status string
	Action, Reason         *string
	Message                *struct{ ID, Type string }
	User                   *struct{ ID string }
	Activity               *struct{ ID string }
	Subject                struct{ ID string }
	FlaggedBy              struct{ ID string }
	ResolvedBy             *struct{ ID string }
	ResolvedAt             *string
	CreatedAt              string
}

const (
	flagQuery    = `mutation($t: FlagTarget!, $r: String) { flag(target: $t, reason: $r) { ` + flagFields + ` } }`
	resolveQuery = `mutation($id: ID!, $a: FlagAction!) { resolveFlag(id: $id, action: $a) { ` + flagFields + ` } }`
	flagsQuery   = `query($s: FlagStatus, $first: Int, $after: String) { flags(status: $s, first: $first, after: $after) {
		edges { cursor node { ` + flagFields + ` } } pageInfo { hasNextPage endCursor } } }`
)

func flagAs(t *testing.T, n *brooktest.Node, tok string, target map[string]any, reason *string) flagResult {
	t.Helper()
	var out struct{ Flag flagResult }
	n.Must(t, tok, flagQuery, brooktest.Vars{"t": target, "r": reason}, &out)
	return out.Flag
}

func resolveAs(t *testing.T, n *brooktest.Node, tok, id, action string) flagResult {
	t.Helper()
	var out struct{ ResolveFlag flagResult }
	n.Must(t, tok, resolveQuery, brooktest.Vars{"id": id, "a": action}, &out)
	return out.ResolveFlag
}

type flagPage struct {
	Flags struct {
		Edges []struct {
			Cursor string
			Node   flagResult
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
}

// flagIDs lists the ids of a page of flags, in order.
func (p flagPage) ids() []string {
	var out []string
	for _, e := range p.Flags.Edges {
		out = append(out, e.Node.ID)
	}
	return out
}

func listFlags(t *testing.T, n *brooktest.Node, tok string, vars brooktest.Vars) flagPage {
	t.Helper()
	var out flagPage
	n.Must(t, tok, flagsQuery, vars, &out)
	return out
}

func addActivity(t *testing.T, n *brooktest.Node, user, feed string) string {
	t.Helper()
	var out struct{ AddActivity struct{ ID string } }
	n.Must(t, env.Token(t, user), `mutation($f: ID!) { addActivity(feed: $f, input: { verb: "post", object: "cheap watches" }) { id } }`,
		brooktest.Vars{"f": feed}, &out)
	return out.AddActivity.ID
}

func ptr(s string) *string { return &s }

// Each kind of target is flagged by whoever may read it; flagging again
// while open returns the same flag; bad input, or a target the caller may
// not read, writes nothing; moderators see their channels' message flags,
// admins all, others none, newest first in stable pages.
func TestChatFlagTargetsAndReads(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave, erin := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag, "erin-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave, erin)
	cid := createChannel(t, n, alice, "messaging", "flags-"+tag, bob, carol, dave)
	other := createChannel(t, n, erin, "messaging", "flags-other-"+tag)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	spam := sendMsg(t, n, dave, cid, "buy cheap watches")
	hidden := sendMsg(t, n, erin, other, "erin's own room")
	act := addActivity(t, n, erin, "user:"+erin)
	admin := env.AdminToken(t, "admin-"+tag)
	carolTok := env.Token(t, carol)
	// An activity only erin (and admins) may read: in her notifications.
	var private struct{ AddActivity struct{ ID string } }
	n.Must(t, admin, `mutation($f: ID!) { addActivity(feed: $f, input: { verb: "note", object: "x" }) { id } }`,
		brooktest.Vars{"f": "notification:" + erin}, &private)
	flagsBy := func(users ...string) int {
		return n.Count(t, `SELECT count(*) FROM flags WHERE flagged_by = ANY($1)`, users)
	}

	// Bad input and unreadable targets: refused, nothing written.
	bad := []struct {
		name   string
		tok    string
		target map[string]any
		reason *string
		code   string
	}{
		{"no target", carolTok, map[string]any{}, nil, "BAD_USER_INPUT"},
		{"two targets", carolTok, map[string]any{"message": spam.ID, "user": dave}, nil, "BAD_USER_INPUT"},
		{"malformed message", carolTok, map[string]any{"message": "nope"}, nil, "BAD_USER_INPUT"},
		{"unknown message", carolTok, map[string]any{"message": "0193e8a1-5c00-7000-8000-00000000dead"}, nil, "NOT_FOUND"},
		{"unreadable message", carolTok, map[string]any{"message": hidden.ID}, nil, "FORBIDDEN"},
		{"long reason", carolTok, map[string]any{"message": spam.ID}, ptr(strings.Repeat("x", 501)), "BAD_USER_INPUT"},
		{"oneself", carolTok, map[string]any{"user": carol}, nil, "BAD_USER_INPUT"},
		{"malformed user", carolTok, map[string]any{"user": "no:colons"}, nil, "BAD_USER_INPUT"},
		{"unknown user", carolTok, map[string]any{"user": "nobody-" + tag}, nil, "NOT_FOUND"},
		{"malformed activity", carolTok, map[string]any{"activity": "nope"}, nil, "BAD_USER_INPUT"},
		{"unreadable activity", carolTok, map[string]any{"activity": private.AddActivity.ID}, nil, "FORBIDDEN"},
		{"unknown activity", carolTok, map[string]any{"activity": "0193e8a1-5c00-7000-8000-00000000dead"}, nil, "NOT_FOUND"},
		{"not a member", env.Token(t, erin), map[string]any{"message": spam.ID}, nil, "FORBIDDEN"},
	}
	for _, c := range bad {
		r := n.Query(t, c.tok, flagQuery, brooktest.Vars{"t": c.target, "r": c.reason})
		if r.Code() != c.code {
			t.Errorf("%s: got %q, want %s", c.name, r.Code(), c.code)
		}
	}
	if c := flagsBy(carol, erin); c != 0 {
		t.Fatalf("refused flags wrote %d rows", c)
	}

	// A message: anyone who may read it.
	f1 := flagAs(t, n, carolTok, map[string]any{"message": spam.ID}, ptr("spam"))
	if f1.TargetKind != "MESSAGE" || f1.Status != "OPEN" || f1.Message == nil || f1.Message.ID != spam.ID ||
		f1.Subject.ID != dave || f1.FlaggedBy.ID != carol || *f1.Reason != "spam" || f1.Action != nil || f1.ResolvedBy != nil {
		t.Fatalf("message flag: %+v", f1)
	}
	again := flagAs(t, n, carolTok, map[string]any{"message": spam.ID}, ptr("spam, really"))
	if again.ID != f1.ID || *again.Reason != "spam" {
		t.Fatalf("flagging again: %+v, want flag %s unchanged", again, f1.ID)
	}
	if c := flagsBy(carol); c != 1 {
		t.Fatalf("two flags of one target wrote %d rows", c)
	}
	// Another user's flag of the same message is a flag of its own.
	f2 := flagAs(t, n, env.Token(t, alice), map[string]any{"message": spam.ID}, nil)
	if f2.ID == f1.ID || f2.Reason != nil {
		t.Fatalf("alice's flag: %+v", f2)
	}
	// A user, by anyone signed in (erin shares no channel with dave).
	f3 := flagAs(t, n, env.Token(t, erin), map[string]any{"user": dave}, ptr("harasses me"))
	if f3.TargetKind != "USER" || f3.User == nil || f3.User.ID != dave || f3.Subject.ID != dave || f3.Message != nil {
		t.Fatalf("user flag: %+v", f3)
	}
	// An activity anyone may read (it is on erin's user feed).
	f4 := flagAs(t, n, carolTok, map[string]any{"activity": act}, nil)
	if f4.TargetKind != "ACTIVITY" || f4.Activity == nil || f4.Activity.ID != act || f4.Subject.ID != erin {
		t.Fatalf("activity flag: %+v", f4)
	}
	if c := flagsBy(carol, alice, erin); c != 4 {
		t.Fatalf("%d flags written, want 4", c)
	}

	// Who reads which: moderators and owners their channels' message
	// flags, newest first; members and strangers none; admins all.
	want := []string{f2.ID, f1.ID}
	for _, u := range []string{bob, alice} {
		if got := listFlags(t, n, env.Token(t, u), nil).ids(); !slices.Equal(got, want) {
			t.Fatalf("%s's flags: %v, want %v", u, got, want)
		}
	}
	for _, u := range []string{carol, dave, erin} {
		if got := listFlags(t, n, env.Token(t, u), nil).ids(); len(got) != 0 {
			t.Fatalf("%s sees flags: %v", u, got)
		}
	}
	all := listFlags(t, n, admin, brooktest.Vars{"first": 100}).ids()
	var ours []string
	for _, id := range all {
		if slices.Contains([]string{f1.ID, f2.ID, f3.ID, f4.ID}, id) {
			ours = append(ours, id)
		}
	}
	if !slices.Equal(ours, []string{f4.ID, f3.ID, f2.ID, f1.ID}) {
		t.Fatalf("admin's flags (ours): %v", ours)
	}
	// Pages: one at a time, then the rest after its cursor.
	p := listFlags(t, n, env.Token(t, bob), brooktest.Vars{"first": 1})
	if !slices.Equal(p.ids(), []string{f2.ID}) || !p.Flags.PageInfo.HasNextPage {
		t.Fatalf("first page: %+v", p)
	}
	p = listFlags(t, n, env.Token(t, bob), brooktest.Vars{"first": 1, "after": *p.Flags.PageInfo.EndCursor})
	if !slices.Equal(p.ids(), []string{f1.ID}) || p.Flags.PageInfo.HasNextPage {
		t.Fatalf("second page: %+v", p)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), flagsQuery, brooktest.Vars{"after": "bm9wZQ"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), flagsQuery, brooktest.Vars{"first": 101}), "BAD_USER_INPUT")
	if got := listFlags(t, n, env.Token(t, bob), brooktest.Vars{"s": "DISMISSED"}).ids(); len(got) != 0 {
		t.Fatalf("dismissed flags before any: %v", got)
	}
	// A moderator banned from the channel (by an admin) handles none.
	n.Must(t, admin, `mutation($u: ID!, $c: ID) { banUser(user: $u, channel: $c) }`, brooktest.Vars{"u": bob, "c": cid}, nil)
	if got := listFlags(t, n, env.Token(t, bob), nil).ids(); len(got) != 0 {
		t.Fatalf("a banned moderator sees flags: %v", got)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, bob), resolveQuery, brooktest.Vars{"id": f1.ID, "a": "DISMISS"}), "FORBIDDEN")
}

// Each action does what its mutation does: DELETE_MESSAGE deletes the
// message with its event, BAN_USER writes the ban (channel-wide for a
// message flag, app-wide for the others), DISMISS changes nothing; a
// closed flag is CONFLICT; a refused action leaves the flag open.
func TestChatResolveFlag(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave, erin := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag, "erin-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave, erin)
	cid := createChannel(t, n, alice, "messaging", "resolve-"+tag, bob, carol, dave)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	spam := sendMsg(t, n, dave, cid, "buy cheap watches")
	more := sendMsg(t, n, dave, cid, "cheap watches, again")
	rules := sendMsg(t, n, alice, cid, "house rules")
	act := addActivity(t, n, erin, "user:"+erin)
	carolTok, bobTok := env.Token(t, carol), env.Token(t, bob)
	admin := env.AdminToken(t, "admin-"+tag)
	fSpam := flagAs(t, n, carolTok, map[string]any{"message": spam.ID}, ptr("spam"))
	fMore := flagAs(t, n, carolTok, map[string]any{"message": more.ID}, ptr("spam again"))
	fRules := flagAs(t, n, carolTok, map[string]any{"message": rules.ID}, nil)
	fUser := flagAs(t, n, carolTok, map[string]any{"user": dave}, nil)
	fAct := flagAs(t, n, carolTok, map[string]any{"activity": act}, nil)
	events := n.MustDial(t, env.Token(t, alice)).Subscribe(`subscription($c: ID!) { channelEvents(channel: $c) { type user { id } message { id type } } }`,
		brooktest.Vars{"c": cid})
	waitSubscribed(t, n)
	status := func(id string) string {
		var s string
		if err := n.Store.DB().QueryRow(t.Context(), `SELECT status FROM flags WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	bans := `SELECT count(*) FROM bans WHERE user_id = $1 AND channel_id = $2`

	// Who may not, and what may not be done.
	brooktest.WantCode(t, n.Query(t, carolTok, resolveQuery, brooktest.Vars{"id": fSpam.ID, "a": "DISMISS"}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": fUser.ID, "a": "DISMISS"}), "FORBIDDEN")
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": "nope", "a": "DISMISS"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": "0193e8a1-5c00-7000-8000-00000000dead", "a": "DISMISS"}), "NOT_FOUND")
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": fSpam.ID, "a": "SHRUG"}), "BAD_USER_INPUT")
	brooktest.WantCode(t, n.Query(t, admin, resolveQuery, brooktest.Vars{"id": fUser.ID, "a": "DELETE_MESSAGE"}), "BAD_USER_INPUT")
	// A moderator may not ban an owner: the flag stays open, no ban.
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": fRules.ID, "a": "BAN_USER"}), "FORBIDDEN")
	if s := status(fRules.ID); s != "open" || status(fUser.ID) != "open" || status(fSpam.ID) != "open" {
		t.Fatalf("refused resolutions closed flags: %s", s)
	}
	if c := n.Count(t, bans, alice, cid); c != 0 {
		t.Fatalf("a refused ban wrote %d rows", c)
	}

	// DELETE_MESSAGE: the message is deleted as deleteMessage does it.
	r := resolveAs(t, n, bobTok, fSpam.ID, "DELETE_MESSAGE")
	if r.Status != "RESOLVED" || *r.Action != "DELETE_MESSAGE" || r.ResolvedBy.ID != bob || r.ResolvedAt == nil || r.Message.Type != "deleted" {
		t.Fatalf("resolved: %+v", r)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE id = $1 AND deleted_at IS NOT NULL AND text = ''`, spam.ID); c != 1 {
		t.Fatal("the message was not deleted")
	}
	var ev struct {
		ChannelEvents struct {
			Type    string
			User    struct{ ID string }
			Message *struct{ ID, Type string }
		}
	}
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "message.deleted" || ev.ChannelEvents.User.ID != bob || ev.ChannelEvents.Message.ID != spam.ID {
		t.Fatalf("the deletion's event: %+v", ev)
	}
	brooktest.WantCode(t, n.Query(t, bobTok, resolveQuery, brooktest.Vars{"id": fSpam.ID, "a": "DISMISS"}), "CONFLICT")
	brooktest.WantCode(t, n.Query(t, admin, resolveQuery, brooktest.Vars{"id": fSpam.ID, "a": "BAN_USER"}), "CONFLICT")

	// BAN_USER of a message flag: the author, from the channel.
	r = resolveAs(t, n, bobTok, fMore.ID, "BAN_USER")
	if r.Status != "RESOLVED" || *r.Action != "BAN_USER" {
		t.Fatalf("resolved: %+v", r)
	}
	if c := n.Count(t, `SELECT count(*) FROM bans WHERE user_id = $1 AND channel_id = $2 AND until IS NULL AND NOT shadow
		AND reason = 'spam again' AND banned_by = $3`, dave, cid, bob); c != 1 {
		t.Fatal("no channel ban of the author")
	}
	events.NextData(&ev)
	if ev.ChannelEvents.Type != "user.banned" || ev.ChannelEvents.User.ID != dave {
		t.Fatalf("the ban's event: %+v", ev)
	}
	brooktest.WantCode(t, n.Query(t, env.Token(t, dave), `mutation($c: ID!) { sendMessage(channel: $c, input: { text: "hi" }) { id } }`,
		brooktest.Vars{"c": cid}), "FORBIDDEN")

	// DISMISS: closed, nothing else.
	messages := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND deleted_at IS NULL`, cid)
	r = resolveAs(t, n, bobTok, fRules.ID, "DISMISS")
	if r.Status != "DISMISSED" || *r.Action != "DISMISS" || r.Message.Type != "regular" {
		t.Fatalf("dismissed: %+v", r)
	}
	if c := n.Count(t, `SELECT count(*) FROM messages WHERE channel_id = $1 AND deleted_at IS NULL`, cid); c != messages {
		t.Fatalf("dismissing changed messages: %d, was %d", c, messages)
	}

	// BAN_USER of an activity flag (admins): its actor, from the app.
	r = resolveAs(t, n, admin, fAct.ID, "BAN_USER")
	if r.Status != "RESOLVED" || n.Count(t, bans, erin, "") != 1 {
		t.Fatalf("activity flag: %+v, app-wide bans of erin %d", r, n.Count(t, bans, erin, ""))
	}
	r = resolveAs(t, n, admin, fUser.ID, "DISMISS")
	if r.Status != "DISMISSED" || n.Count(t, bans, dave, "") != 0 {
		t.Fatalf("user flag: %+v", r)
	}

	got := listFlags(t, n, bobTok, brooktest.Vars{"s": "RESOLVED"}).ids()
	if !slices.Equal(got, []string{fMore.ID, fSpam.ID}) {
		t.Fatalf("resolved flags: %v", got)
	}
	if got := listFlags(t, n, bobTok, nil).ids(); len(got) != 0 {
		t.Fatalf("open flags left: %v", got)
	}
	// Closed, the target may be flagged again: a new flag.
	if again := flagAs(t, n, carolTok, map[string]any{"message": rules.ID}, nil); again.ID == fRules.ID || again.Status != "OPEN" {
		t.Fatalf("flag after dismissal: %+v", again)
	}
}

// Concurrent flags of one target by one user make one flag; concurrent
// resolutions of one flag act once.
func TestChatFlagConcurrency(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob, carol, dave := "alice-"+tag, "bob-"+tag, "carol-"+tag, "dave-"+tag
	env.AddUsers(t, n, alice, bob, carol, dave)
	cid := createChannel(t, n, alice, "messaging", "flagrace-"+tag, bob, carol, dave)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": bob}, nil)
	spam := sendMsg(t, n, dave, cid, "buy cheap watches")
	carolTok := env.Token(t, carol)

	const racers = 8
	ids := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct{ Flag struct{ ID string } }
			r := n.Query(t, carolTok, flagQuery, brooktest.Vars{"t": map[string]any{"message": spam.ID}, "r": fmt.Sprint("racer ", i)})
			if err := r.Decode(&out); err != nil {
				t.Error(err)
			}
			ids[i] = out.Flag.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent flags returned %v", ids)
		}
	}
	if c := n.Count(t, `SELECT count(*) FROM flags WHERE flagged_by = $1`, carol); c != 1 {
		t.Fatalf("concurrent flags wrote %d rows", c)
	}

	// The moderator deletes while the owner bans: one of them wins, the
	// other is CONFLICT, and only the winner's action happened.
	codes := make([]string, 2)
	for i, c := range []struct{ user, action string }{{bob, "DELETE_MESSAGE"}, {alice, "BAN_USER"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = n.Query(t, env.Token(t, c.user), resolveQuery, brooktest.Vars{"id": ids[0], "a": c.action}).Code()
		}()
	}
	wg.Wait()
	deleted := n.Count(t, `SELECT count(*) FROM messages WHERE id = $1 AND deleted_at IS NOT NULL`, spam.ID)
	banned := n.Count(t, `SELECT count(*) FROM bans WHERE user_id = $1`, dave)
	switch {
	case codes[0] == "" && codes[1] == "CONFLICT" && deleted == 1 && banned == 0:
	case codes[0] == "CONFLICT" && codes[1] == "" && deleted == 0 && banned == 1:
	default:
		t.Fatalf("concurrent resolutions: codes %q, deleted %d, banned %d", codes, deleted, banned)
	}
}

// Truncating or deleting a channel deletes its messages: their open flags
// close as acted on, by whoever truncated or deleted, and the lists of
// flags read on (a deleted channel's messages are null there).
func TestChatFlagsOutliveTheirChannel(t *testing.T) {
	t.Parallel()
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, carol := "alice-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, carol)
	cut := createChannel(t, n, alice, "messaging", "cut-"+tag, carol)
	gone := createChannel(t, n, alice, "messaging", "gone-"+tag, carol)
	aliceTok := env.Token(t, alice)
	fCut := flagAs(t, n, aliceTok, map[string]any{"message": sendMsg(t, n, carol, cut, "spam").ID}, nil)
	fGone := flagAs(t, n, aliceTok, map[string]any{"message": sendMsg(t, n, carol, gone, "spam").ID}, nil)
	n.Must(t, aliceTok, `mutation($c: ID!) { truncateChannel(id: $c) { id } }`, brooktest.Vars{"c": cut}, nil)
	n.Must(t, aliceTok, `mutation($c: ID!) { deleteChannel(id: $c) { id } }`, brooktest.Vars{"c": gone}, nil)
	for _, id := range []string{fCut.ID, fGone.ID} {
		if c := n.Count(t, `SELECT count(*) FROM flags WHERE id = $1 AND status = 'resolved' AND action = 'delete_message' AND resolved_by = $2`, id, alice); c != 1 {
			t.Fatalf("flag %s did not close as acted on by alice", id)
		}
	}
	admin := env.AdminToken(t, "admin-"+tag)
	if open := listFlags(t, n, admin, brooktest.Vars{"s": "OPEN", "first": 100}); slices.Contains(open.ids(), fCut.ID) || slices.Contains(open.ids(), fGone.ID) {
		t.Fatalf("closed flags listed as open: %v", open.ids())
	}
	resolved := listFlags(t, n, admin, brooktest.Vars{"s": "RESOLVED", "first": 100})
	if !slices.Contains(resolved.ids(), fCut.ID) || !slices.Contains(resolved.ids(), fGone.ID) {
		t.Fatalf("the resolved flags: %v", resolved.ids())
	}
	for _, e := range resolved.Flags.Edges {
		if (e.Node.ID == fCut.ID || e.Node.ID == fGone.ID) && e.Node.Message != nil {
			t.Fatalf("flag %s still has its message: %+v", e.Node.ID, e.Node.Message)
		}
	}
}
