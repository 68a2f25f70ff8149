package webhooks_test

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// Every product's events reach a real receiver, in the order of their
// changes per key, with exact payloads.

// events returns the bodies the receiver accepted whose order key field
// (channel, feed or call) is key, decoded, in the order received.
func (r *receiver) events(field, key string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, h := range r.hits {
		var body map[string]any
		if json.Unmarshal(h.body, &body) == nil && body[field] == key {
			out = append(out, body)
		}
	}
	return out
}

func types(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i], _ = e["type"].(string)
	}
	return out
}

// find returns the first event of typ.
func find(t *testing.T, evs []map[string]any, typ string) map[string]any {
	t.Helper()
	for _, e := range evs {
		if e["type"] == typ {
			return e
		}
	}
	t.Fatalf("no %s event in %v", typ, types(evs))
	return nil
}

// wantFields checks that got has exactly want's values under want's keys
// (nested maps compared whole), and every key of keys; volatile values
// (times, generated ids) are checked elsewhere or only for presence.
func wantFields(t *testing.T, got map[string]any, want map[string]any, present ...string) {
	t.Helper()
	for k, v := range want {
		w, _ := json.Marshal(v)
		var norm any
		_ = json.Unmarshal(w, &norm)
		if !reflect.DeepEqual(got[k], norm) {
			g, _ := json.Marshal(got[k])
			t.Errorf("%s: %s is %s, want %s", got["type"], k, g, w)
		}
	}
	for _, k := range present {
		if got[k] == nil {
			t.Errorf("%s: no %s in %v", got["type"], k, got)
		}
	}
}

// sub returns m[k] as a map, with the keys drop removed.
func sub(t *testing.T, m map[string]any, k string, drop ...string) map[string]any {
	t.Helper()
	v, ok := m[k].(map[string]any)
	if !ok {
		t.Fatalf("%s: %s is %v, not an object", m["type"], k, m[k])
	}
	out := map[string]any{}
	for kk, vv := range v {
		if !slices.Contains(drop, kk) {
			out[kk] = vv
		}
	}
	return out
}

func TestChatEvents(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice, bob := "alice-"+tag, "bob-"+tag
	env.AddUsers(t, n, alice, bob)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	upsert(t, n, "chat-"+tag, srv.URL, "channel.created", "channel.updated", "channel.frozen", "channel.truncated", "channel.deleted",
		"member.added", "member.removed", "member.role_changed", "reaction.new", "reaction.deleted", "message.flagged")

	cid := channel(t, n, alice, "ev-"+tag)
	a, b := env.Token(t, alice), env.Token(t, bob)
	n.Must(t, a, `mutation($c: ID!, $u: [ID!]!) { addMembers(channel: $c, userIds: $u) { id } }`, brooktest.Vars{"c": cid, "u": []string{bob}}, nil)
	n.Must(t, a, `mutation($c: ID!) { setMemberRole(channel: $c, user: "`+bob+`", role: "moderator") { role } }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, a, `mutation($c: ID!) { updateChannel(id: $c, name: "Renamed") { id } }`, brooktest.Vars{"c": cid}, nil)
	var sent struct{ SendMessage struct{ ID string } }
	n.Must(t, a, `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "look"}) { id } }`, brooktest.Vars{"c": cid}, &sent)
	mid := sent.SendMessage.ID
	n.Must(t, b, `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": mid}, nil)
	n.Must(t, b, `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": mid}, nil) // no change: no event
	n.Must(t, b, `mutation($m: ID!) { deleteReaction(message: $m, kind: "like") { id } }`, brooktest.Vars{"m": mid}, nil)
	n.Must(t, b, `mutation($m: ID!) { flag(target: {message: $m}, reason: "spam") { id } }`, brooktest.Vars{"m": mid}, nil)
	n.Must(t, a, `mutation($c: ID!, $u: [ID!]!) { removeMembers(channel: $c, userIds: $u) { id } }`, brooktest.Vars{"c": cid, "u": []string{bob}}, nil)
	n.Must(t, a, `mutation($c: ID!) { updateChannel(id: $c, frozen: true) { id } }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, a, `mutation($c: ID!) { truncateChannel(id: $c) { id } }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, a, `mutation($c: ID!) { deleteChannel(id: $c) { id } }`, brooktest.Vars{"c": cid}, nil)

	want := []string{"channel.created", "member.added", "member.role_changed", "channel.updated", "reaction.new", "reaction.deleted",
		"message.flagged", "member.removed", "channel.updated", "channel.frozen", "channel.truncated", "channel.deleted"}
	waitFor(t, "the chat events", func() bool { return len(rcv.events("channel", cid)) >= len(want) })
	evs := rcv.events("channel", cid)
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v in order", got, want)
	}
	for _, e := range evs {
		if e["created_at"] == nil {
			t.Fatalf("%s has no created_at", e["type"])
		}
	}
	created := find(t, evs, "channel.created")
	wantFields(t, created, map[string]any{"channel": cid, "user": alice})
	wantFields(t, sub(t, created, "channel_info", "created_at"), map[string]any{"id": cid, "type": "messaging", "created_by": alice,
		"member_count": 1, "frozen": false, "cooldown_seconds": 0})
	wantFields(t, evs[1], map[string]any{"channel": cid, "user": alice, "members": []string{bob}})
	wantFields(t, evs[2], map[string]any{"channel": cid, "user": alice, "members": []string{bob}, "role": "moderator"})
	if info := sub(t, evs[3], "channel_info"); info["name"] != "Renamed" {
		t.Fatalf("channel.updated info %v, want the new name", info)
	}
	for _, typ := range []string{"reaction.new", "reaction.deleted"} {
		e := find(t, evs, typ)
		wantFields(t, e, map[string]any{"channel": cid, "user": bob, "reaction": map[string]any{"kind": "like", "user": bob}})
		if m := sub(t, e, "message"); m["id"] != mid || m["text"] != "look" || m["user"] != alice {
			t.Fatalf("%s message %v", typ, m)
		}
	}
	flagged := find(t, evs, "message.flagged")
	wantFields(t, flagged, map[string]any{"channel": cid, "user": bob})
	if f := sub(t, flagged, "flag", "id"); !reflect.DeepEqual(f, map[string]any{"by": bob, "reason": "spam"}) {
		t.Fatalf("flag %v", f)
	}
	wantFields(t, evs[7], map[string]any{"channel": cid, "user": alice, "members": []string{bob}})
	wantFields(t, evs[9], map[string]any{"channel": cid, "user": alice})
	if info := sub(t, evs[9], "channel_info"); info["frozen"] != true {
		t.Fatalf("channel.frozen info %v", info)
	}
	wantFields(t, evs[11], map[string]any{"channel": cid, "user": alice})
	// Nothing else was delivered for the channel (no second reaction.new).
	if c := n.Count(t, `SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND order_key = $2`, "chat-"+tag, "channel:"+cid); c != len(want) {
		t.Fatalf("%d deliveries, want %d", c, len(want))
	}
}

func TestFeedsEvents(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice := "alice-" + tag
	env.AddUsers(t, n, alice)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	upsert(t, n, "feeds-"+tag, srv.URL, "reaction.new", "reaction.deleted", "comment.new", "comment.updated", "comment.deleted")
	a, feed := env.Token(t, alice), "user:"+alice
	var act struct{ AddActivity struct{ ID string } }
	n.Must(t, a, `mutation($f: ID!) { addActivity(feed: $f, input: {verb: "post", object: "photo:1"}) { id } }`, brooktest.Vars{"f": feed}, &act)
	aid := act.AddActivity.ID
	var r struct{ AddReaction struct{ ID string } }
	n.Must(t, a, `mutation($a: ID!) { addReaction(activity: $a, kind: "like") { id } }`, brooktest.Vars{"a": aid}, &r)
	// reaction.new comes from the reaction's job: wait for it, so that
	// the test does not depend on when the job runs.
	waitFor(t, "reaction.new", func() bool { return len(rcv.events("feed", feed)) == 1 })
	n.Must(t, a, `mutation($r: ID!) { removeReaction(id: $r) }`, brooktest.Vars{"r": r.AddReaction.ID}, nil)
	var c struct{ AddComment struct{ ID string } }
	n.Must(t, a, `mutation($a: ID!) { addComment(activity: $a, text: "first") { id } }`, brooktest.Vars{"a": aid}, &c)
	waitFor(t, "comment.new", func() bool { return len(rcv.events("feed", feed)) == 3 })
	n.Must(t, a, `mutation($c: ID!) { updateComment(id: $c, text: "edited") { id } }`, brooktest.Vars{"c": c.AddComment.ID}, nil)
	n.Must(t, a, `mutation($c: ID!) { deleteComment(id: $c) }`, brooktest.Vars{"c": c.AddComment.ID}, nil)

	want := []string{"reaction.new", "reaction.deleted", "comment.new", "comment.updated", "comment.deleted"}
	waitFor(t, "the feeds events", func() bool { return len(rcv.events("feed", feed)) >= len(want) })
	evs := rcv.events("feed", feed)
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v in order", got, want)
	}
	reaction := map[string]any{"id": r.AddReaction.ID, "kind": "like", "user": alice}
	wantFields(t, evs[0], map[string]any{"feed": feed, "activity": aid, "reaction": reaction})
	wantFields(t, evs[1], map[string]any{"feed": feed, "activity": aid, "reaction": reaction})
	for i, text := range map[int]string{2: "first", 3: "edited", 4: "edited"} {
		wantFields(t, evs[i], map[string]any{"feed": feed, "activity": aid})
		if cm := sub(t, evs[i], "comment"); cm["id"] != c.AddComment.ID || cm["text"] != text || cm["user"] != alice || cm["activity"] != aid {
			t.Fatalf("%s comment %v, want %s saying %q", evs[i]["type"], cm, c.AddComment.ID, text)
		}
	}
	wantFields(t, evs[3], map[string]any{"user": alice})
	wantFields(t, evs[4], map[string]any{"user": alice, "deleted": 1})
}

func TestCallEvents(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{Node: fastHooks})
	tag := brooktest.Tag()
	alice, bob, carol := "alice-"+tag, "bob-"+tag, "carol-"+tag
	env.AddUsers(t, n, alice, bob, carol)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	upsert(t, n, "calls-"+tag, srv.URL, "call.created", "call.ring", "call.accepted", "call.rejected", "call.missed",
		"call.ring_cancelled", "call.ended", "session.started", "session.ended")
	a := env.Token(t, alice)
	var created struct{ CreateCall struct{ ID string } }
	n.Must(t, a, `mutation($in: CallInput!) { createCall(input: $in) { id } }`,
		brooktest.Vars{"in": map[string]any{"type": "default", "id": "hooks-" + tag, "members": []string{bob, carol}}}, &created)
	cid := created.CreateCall.ID
	n.Must(t, a, `mutation($c: ID!, $m: [ID!]!) { ringCall(id: $c, members: $m) { id } }`, brooktest.Vars{"c": cid, "m": []string{bob}}, nil)
	n.Must(t, env.Token(t, bob), `mutation($c: ID!) { acceptCall(id: $c) { id } }`, brooktest.Vars{"c": cid}, nil)
	n.Must(t, a, `mutation($c: ID!, $m: [ID!]!) { ringCall(id: $c, members: $m) { id } }`, brooktest.Vars{"c": cid, "m": []string{carol}}, nil)
	n.Must(t, a, `mutation($c: ID!) { cancelRing(id: $c) { id } }`, brooktest.Vars{"c": cid}, nil)
	var joined struct {
		JoinCall struct{ Session struct{ ID string } }
	}
	n.Must(t, a, `mutation($c: ID!) { joinCall(id: $c) { session { id } } }`, brooktest.Vars{"c": cid}, &joined)
	sid := joined.JoinCall.Session.ID
	n.Must(t, a, `mutation($c: ID!) { endCall(id: $c) }`, brooktest.Vars{"c": cid}, nil)

	want := []string{"call.created", "call.ring", "call.accepted", "call.ring", "call.ring_cancelled", "session.started", "session.ended", "call.ended"}
	waitFor(t, "the call events", func() bool { return len(rcv.events("call", cid)) >= len(want) })
	evs := rcv.events("call", cid)
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v in order", got, want)
	}
	wantFields(t, evs[0], map[string]any{"call": cid, "user": alice})
	wantFields(t, sub(t, evs[0], "call_info", "created_at"), map[string]any{"id": cid, "type": "default", "created_by": alice, "backstage": false})
	for i, w := range []struct{ user, state string }{1: {bob, "RINGING"}, 2: {bob, "ACCEPTED"}, 3: {carol, "RINGING"}, 4: {carol, "CANCELLED"}} {
		if i == 0 {
			continue
		}
		ring := sub(t, evs[i], "ring", "id", "createdAt", "expiresAt", "decidedAt")
		wantFields(t, ring, map[string]any{"call": cid, "user": w.user, "caller": alice, "state": w.state})
	}
	wantFields(t, evs[5], map[string]any{"call": cid, "user": alice})
	if s := sub(t, evs[5], "session"); s["id"] != sid || s["started_at"] == nil || s["ended_at"] != nil {
		t.Fatalf("session.started session %v, want %s", s, sid)
	}
	wantFields(t, evs[6], map[string]any{"call": cid, "reason": "ended"})
	if s := sub(t, evs[6], "session"); s["id"] != sid || s["ended_at"] == nil {
		t.Fatalf("session.ended session %v, want %s ended", s, sid)
	}
	wantFields(t, evs[7], map[string]any{"call": cid, "user": alice, "reason": "ended", "sessions": []string{sid}})
}
