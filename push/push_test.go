package push_test

import (
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/node"
	"github.com/brookhq/brook/internal/pushsend"
	"github.com/brookhq/brook/push"
	"github.com/brookhq/brook/store"
)

// env is shared by the push tests: real nodes, PostgreSQL and Redis, and a
// local HTTPS server playing FCM.
var env *brooktest.Env

func TestMain(m *testing.M) { brooktest.Main(m, &env) }

// world is a node with FCM configured, users and a channel of them.
type world struct {
	n       *brooktest.Node
	fcm     *fcm
	tag     string
	channel string // "messaging:<id>"
	name    string // its name
}

func newWorld(t *testing.T, users ...string) *world {
	f := newFCM(t)
	n := env.StartNode(t, brooktest.NodeOptions{Node: func(o *node.Options) {
		o.Push.Senders = map[pushsend.Provider]pushsend.Sender{pushsend.FCM: f.sender()}
		// Long enough for a test's burst of messages to share one push.
		o.Push.Delay = 700 * time.Millisecond
	}})
	w := &world{n: n, fcm: f, tag: brooktest.Tag()}
	for i := range users {
		users[i] = users[i] + "-" + w.tag
	}
	env.AddUsers(t, n, users...)
	w.name = "general-" + w.tag
	var got struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, users[0]), `mutation($m: [ID!], $name: String) { createChannel(input: {type: "messaging", name: $name, members: $m}) { id } }`,
		brooktest.Vars{"m": users[1:], "name": w.name}, &got)
	w.channel = got.CreateChannel.ID
	return w
}

func (w *world) user(name string) string { return name + "-" + w.tag }

// device registers an FCM device token for a user and returns the token.
func (w *world) device(t *testing.T, user, token string) string {
	t.Helper()
	w.n.Must(t, env.Token(t, w.user(user)), `mutation($t: String!) { addDevice(provider: FCM, token: $t, name: "phone") { id } }`,
		brooktest.Vars{"t": token}, nil)
	return token
}

func (w *world) send(t *testing.T, from, text string, mentions ...string) {
	t.Helper()
	var ids []string
	for _, m := range mentions {
		ids = append(ids, w.user(m))
	}
	w.n.Must(t, env.Token(t, w.user(from)), `mutation($c: ID!, $t: String!, $m: [ID!]) { sendMessage(channel: $c, input: {text: $t, mentionedUserIds: $m}) { id } }`,
		brooktest.Vars{"c": w.channel, "t": text, "m": ids}, nil)
}

// settle waits until every message job and push job has run and no push
// is pending: what was to be sent has been.
func (w *world) settle(t *testing.T) {
	t.Helper()
	brooktest.Eventually(t, "pushes settled", func() bool {
		return w.n.Count(t, `SELECT count(*) FROM jobs WHERE kind = ANY($1)`, []string{store.ChatMessageKind, push.SendKind}) == 0 &&
			w.n.Count(t, `SELECT count(*) FROM push_pending`) == 0
	})
}

// online opens a connection for user and returns a function closing it
// that waits until the user is offline.
func (w *world) online(t *testing.T, user string) (close func()) {
	ws := w.n.MustDial(t, env.Token(t, w.user(user)))
	return func() {
		_ = ws.Close()
		brooktest.Eventually(t, user+" offline", func() bool {
			on, err := w.n.State.Online(t.Context(), []string{w.user(user)})
			return err == nil && !on[0]
		})
	}
}

func TestOnlyOfflineMembersGetPushes(t *testing.T) {
	w := newWorld(t, "alice", "bob", "carol", "dave")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	carol := w.device(t, "carol", "carol-phone-"+w.tag)
	alice := w.device(t, "alice", "alice-phone-"+w.tag)
	// dave has no device: nothing is queued for him.
	closeCarol := w.online(t, "carol")

	w.send(t, "alice", "hello there")
	w.settle(t)
	got := w.fcm.sent(bob)
	if len(got) != 1 {
		t.Fatalf("bob (offline) got %d pushes, want 1: %+v", len(got), got)
	}
	if want := "Alice-" + w.tag + " in #" + w.name; got[0].Title != want || got[0].Body != "hello there" ||
		got[0].Data["kind"] != "message" || got[0].Data["channel"] != w.channel || got[0].Data["message"] == "" {
		t.Errorf("bob's push %+v, want title %q", got[0], want)
	}
	if n := len(w.fcm.sent(carol)); n != 0 {
		t.Errorf("carol (online) got %d pushes, want 0", n)
	}
	if n := len(w.fcm.sent(alice)); n != 0 {
		t.Errorf("alice (the sender) got %d pushes, want 0", n)
	}

	closeCarol()
	w.send(t, "alice", "still there?")
	w.settle(t)
	if n := len(w.fcm.sent(carol)); n != 1 {
		t.Errorf("carol (offline now) got %d pushes, want 1", n)
	}
	if n := len(w.fcm.sent(bob)); n != 2 {
		t.Errorf("bob got %d pushes, want 2", n)
	}
}

func TestMutesAndBlocksSilencePushes(t *testing.T) {
	w := newWorld(t, "alice", "bob", "carol", "erin", "frank")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	carol := w.device(t, "carol", "carol-phone-"+w.tag)
	erin := w.device(t, "erin", "erin-phone-"+w.tag)
	frank := w.device(t, "frank", "frank-phone-"+w.tag)
	w.n.Must(t, env.Token(t, w.user("bob")), `mutation($c: ID!) { muteChannel(channel: $c) }`, brooktest.Vars{"c": w.channel}, nil)
	w.n.Must(t, env.Token(t, w.user("carol")), `mutation($u: ID!) { muteUser(user: $u) }`, brooktest.Vars{"u": w.user("alice")}, nil)
	w.n.Must(t, env.Token(t, w.user("erin")), `mutation($u: ID!) { blockUser(user: $u) }`, brooktest.Vars{"u": w.user("alice")}, nil)

	w.send(t, "alice", "anyone?")
	w.settle(t)
	for name, tok := range map[string]string{"bob (muted the channel)": bob, "carol (muted alice)": carol, "erin (blocks alice)": erin} {
		if n := len(w.fcm.sent(tok)); n != 0 {
			t.Errorf("%s got %d pushes, want 0", name, n)
		}
	}
	if n := len(w.fcm.sent(frank)); n != 1 {
		t.Errorf("frank got %d pushes, want 1", n)
	}
}

func TestMessagesWithinTheDelayMakeOnePush(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	for _, text := range []string{"one", "two", "three"} {
		w.send(t, "alice", text)
	}
	w.settle(t)
	got := w.fcm.sent(bob)
	if len(got) != 1 {
		t.Fatalf("bob got %d pushes, want 1: %+v", len(got), got)
	}
	if want := "3 new messages in #" + w.name; got[0].Body != want || got[0].Data["count"] != "3" {
		t.Errorf("push %+v, want body %q and count 3", got[0], want)
	}
}

// Messages in two channels within the delay make one push too, counted
// across the channels; a mention among them makes it a mention push.
func TestMessagesInTwoChannelsMakeOnePush(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	var other struct{ CreateChannel struct{ ID string } }
	w.n.Must(t, env.Token(t, w.user("alice")), `mutation($m: [ID!]) { createChannel(input: {type: "messaging", name: "other", members: $m}) { id } }`,
		brooktest.Vars{"m": []string{w.user("bob")}}, &other)
	w.send(t, "alice", "one")
	w.send(t, "alice", "two", "bob")
	w.n.Must(t, env.Token(t, w.user("alice")), `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "three"}) { id } }`,
		brooktest.Vars{"c": other.CreateChannel.ID}, nil)
	w.settle(t)
	got := w.fcm.sent(bob)
	if len(got) != 1 {
		t.Fatalf("bob got %d pushes, want 1: %+v", len(got), got)
	}
	if got[0].Body != "3 new messages in 2 channels" || got[0].Data["count"] != "3" || got[0].Data["kind"] != "mention" {
		t.Errorf("push %+v, want one mention push counting 3 messages in 2 channels", got[0])
	}
}

func TestMentionIsAMentionPush(t *testing.T) {
	w := newWorld(t, "alice", "bob", "carol")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	carol := w.device(t, "carol", "carol-phone-"+w.tag)
	w.send(t, "alice", "@bob look", "bob")
	w.settle(t)
	got := w.fcm.sent(bob)
	if len(got) != 1 || got[0].Data["kind"] != "mention" || got[0].Title != "Alice-"+w.tag+" mentioned you in #"+w.name {
		t.Errorf("bob's pushes %+v, want one mention", got)
	}
	if got := w.fcm.sent(carol); len(got) != 1 || got[0].Data["kind"] != "message" {
		t.Errorf("carol's pushes %+v, want one message", got)
	}
}

func TestEveryDeviceAndInvalidTokensRemoved(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	phone := w.device(t, "bob", "bob-phone-"+w.tag)
	tablet := w.device(t, "bob", "bob-tablet-"+w.tag)
	old := w.device(t, "bob", "bob-old-"+w.tag)
	w.fcm.gone[old] = true
	w.send(t, "alice", "hi")
	w.settle(t)
	for _, tok := range []string{phone, tablet} {
		if n := len(w.fcm.sent(tok)); n != 1 {
			t.Errorf("%s got %d pushes, want 1", tok, n)
		}
	}
	if n := w.n.Count(t, `SELECT count(*) FROM push_devices WHERE token = $1`, old); n != 0 {
		t.Errorf("the unregistered token is still a device (%d rows)", n)
	}
	if n := w.n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1`, w.user("bob")); n != 2 {
		t.Errorf("bob has %d devices, want 2", n)
	}
	// The next message does not try the removed token again.
	w.send(t, "alice", "again")
	w.settle(t)
	if n := w.fcm.attempts(old); n != 1 {
		t.Errorf("the removed token was tried %d times, want 1", n)
	}
}

func TestRetryPushesNoDeviceTwice(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	phone := w.device(t, "bob", "bob-phone-"+w.tag)
	flaky := w.device(t, "bob", "bob-flaky-"+w.tag)
	w.fcm.failing[flaky] = 1
	w.send(t, "alice", "hi")
	w.settle(t)
	if n := len(w.fcm.sent(phone)); n != 1 {
		t.Errorf("the phone got %d pushes across the retry, want 1", n)
	}
	if n, tries := len(w.fcm.sent(flaky)), w.fcm.attempts(flaky); n != 1 || tries != 2 {
		t.Errorf("the flaky device got %d pushes in %d tries, want 1 in 2", n, tries)
	}
	if got := w.fcm.sent(phone); len(got) == 1 && got[0].Data["push_id"] != w.fcm.sent(flaky)[0].Data["push_id"] {
		t.Errorf("the retry's push id differs: %q, %q", got[0].Data["push_id"], w.fcm.sent(flaky)[0].Data["push_id"])
	}
}

func TestRingsPushUrgentlyAndTheirEnd(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	var got struct{ CreateCall struct{ ID string } }
	w.n.Must(t, env.Token(t, w.user("alice")), `mutation($m: [ID!]) { createCall(input: {type: "default", members: $m, ring: true}) { id } }`,
		brooktest.Vars{"m": []string{w.user("bob")}}, &got)
	call := got.CreateCall.ID
	brooktest.Eventually(t, "the ring pushed", func() bool { return len(w.fcm.sent(bob)) == 1 })
	ring := w.fcm.sent(bob)[0]
	if ring.Data["kind"] != "ring" || ring.Priority != "high" || ring.Data["call"] != call || !strings.Contains(ring.Title, "is calling") {
		t.Errorf("ring push %+v", ring)
	}
	w.n.Must(t, env.Token(t, w.user("alice")), `mutation($id: ID!) { cancelRing(id: $id) { id } }`, brooktest.Vars{"id": call}, nil)
	brooktest.Eventually(t, "the ring's end pushed", func() bool { return len(w.fcm.sent(bob)) == 2 })
	if end := w.fcm.sent(bob)[1]; end.Data["kind"] != "ring_ended" || end.Data["state"] != "CANCELLED" || end.Data["call"] != call {
		t.Errorf("ring end push %+v", end)
	}
}

func TestDeviceInputErrors(t *testing.T) {
	w := newWorld(t, "alice")
	tok := env.Token(t, w.user("alice"))
	count := func() int {
		return w.n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1`, w.user("alice"))
	}
	for name, c := range map[string]struct {
		provider, token string
		voip            bool
	}{
		"apns not hex":      {"APNS", "not-a-hex-token", false},
		"apns too short":    {"APNS", "abcd", false},
		"fcm with spaces":   {"FCM", "a token with spaces", false},
		"too long":          {"FCM", strings.Repeat("a", 4097), false},
		"webpush not json":  {"WEBPUSH", "https://push.example/123", false},
		"webpush http":      {"WEBPUSH", `{"endpoint":"http://push.example/1","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"}}`, false},
		"webpush short key": {"WEBPUSH", `{"endpoint":"https://push.example/1","keys":{"p256dh":"BNcR","auth":"tBHItJI5svbpez7KI4CCXg"}}`, false},
		"webpush no auth":   {"WEBPUSH", `{"endpoint":"https://push.example/1","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"}}`, false},
		"voip on fcm":       {"FCM", "fcm-token", true},
		"empty token":       {"FCM", "", false},
	} {
		resp := w.n.Query(t, tok, `mutation($p: PushProvider!, $t: String!, $v: Boolean) { addDevice(provider: $p, token: $t, voip: $v) { id } }`,
			brooktest.Vars{"p": c.provider, "t": c.token, "v": c.voip})
		if code := resp.Code(); code != "BAD_USER_INPUT" {
			t.Errorf("%s: code %q, want BAD_USER_INPUT (%+v)", name, code, resp.Errors)
		}
	}
	if resp := w.n.Query(t, tok, `mutation { addDevice(provider: HUAWEI, token: "x") { id } }`, nil); resp.Code() == "" {
		t.Error("an unknown provider was accepted")
	}
	if n := count(); n != 0 {
		t.Fatalf("%d devices written by refused input", n)
	}

	// Valid tokens of each provider, normalized; registering again moves
	// nothing and adds nothing.
	sub := `{"endpoint":"https://push.example/1","keys":{"auth":"tBHItJI5svbpez7KI4CCXg","p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"}, "expirationTime": null}`
	apns := strings.Repeat("AB", 32)
	for _, c := range [][2]string{{"WEBPUSH", sub}, {"APNS", apns}, {"APNS", apns}} {
		w.n.Must(t, tok, `mutation($p: PushProvider!, $t: String!) { addDevice(provider: $p, token: $t) { id } }`,
			brooktest.Vars{"p": c[0], "t": c[1]}, nil)
	}
	var me struct {
		Me struct {
			Devices []struct{ Provider, Token string }
		}
	}
	w.n.Must(t, tok, `{ me { devices { provider token } } }`, nil, &me)
	if len(me.Me.Devices) != 2 || me.Me.Devices[0].Token != strings.ToLower(apns) ||
		me.Me.Devices[1].Token != `{"endpoint":"https://push.example/1","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"}}` {
		t.Errorf("devices %+v", me.Me.Devices)
	}
	// removeDevice by the subscription as the browser gives it.
	var rm struct{ RemoveDevice bool }
	w.n.Must(t, tok, `mutation($t: String!) { removeDevice(token: $t) }`, brooktest.Vars{"t": sub}, &rm)
	if !rm.RemoveDevice || count() != 1 {
		t.Errorf("removeDevice by subscription: %v, %d devices left", rm.RemoveDevice, count())
	}
	if resp := w.n.Query(t, tok, `mutation { removeDevice }`, nil); resp.Code() != "BAD_USER_INPUT" {
		t.Errorf("removeDevice with neither id nor token: %q", resp.Code())
	}
}

func TestDevicesMoveAndAreCapped(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	shared := w.device(t, "alice", "shared-"+w.tag)
	var got struct{ AddDevice struct{ ID string } }
	w.n.Must(t, env.Token(t, w.user("bob")), `mutation($t: String!) { addDevice(provider: FCM, token: $t) { id } }`,
		brooktest.Vars{"t": shared}, &got)
	if owner := w.n.Count(t, `SELECT count(*) FROM push_devices WHERE token = $1 AND user_id = $2`, shared, w.user("bob")); owner != 1 {
		t.Errorf("the token did not move to bob")
	}
	// alice cannot remove bob's device, by id or token.
	var rm struct{ RemoveDevice bool }
	w.n.Must(t, env.Token(t, w.user("alice")), `mutation($id: ID!) { removeDevice(id: $id) }`, brooktest.Vars{"id": got.AddDevice.ID}, &rm)
	if rm.RemoveDevice || w.n.Count(t, `SELECT count(*) FROM push_devices WHERE token = $1`, shared) != 1 {
		t.Error("alice removed bob's device")
	}
	for i := range 27 {
		w.device(t, "alice", "many-"+w.tag+"-"+strings.Repeat("x", i))
	}
	if n := w.n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1`, w.user("alice")); n != 25 {
		t.Errorf("alice has %d devices, want the limit 25", n)
	}
	if n := w.n.Count(t, `SELECT count(*) FROM push_devices WHERE token = $1`, "many-"+w.tag+"-"); n != 0 {
		t.Error("the oldest device was kept past the limit")
	}
}

// With no provider configured (make run's zero configuration) push is
// off: devices are registered, and a message to their offline owner
// queues nothing.
func TestPushOffQueuesNothing(t *testing.T) {
	n := env.StartNode(t, brooktest.NodeOptions{})
	tag := brooktest.Tag()
	alice, bob := "off-alice-"+tag, "off-bob-"+tag
	env.AddUsers(t, n, alice, bob)
	n.Must(t, env.Token(t, bob), `mutation($t: String!) { addDevice(provider: FCM, token: $t) { id } }`,
		brooktest.Vars{"t": "off-bob-phone-" + tag}, nil)
	var ch struct{ CreateChannel struct{ ID string } }
	n.Must(t, env.Token(t, alice), `mutation($m: [ID!]) { createChannel(input: {type: "messaging", members: $m}) { id } }`,
		brooktest.Vars{"m": []string{bob}}, &ch)
	n.Must(t, env.Token(t, alice), `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi", mentionedUserIds: ["`+bob+`"]}) { id } }`,
		brooktest.Vars{"c": ch.CreateChannel.ID}, nil)
	// The message's job (enqueued with the message, deleted when done)
	// is the one that queues pushes when push is on.
	brooktest.Eventually(t, "the message's job done", func() bool {
		return n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, store.ChatMessageKind) == 0
	})
	if c := n.Count(t, `SELECT count(*) FROM push_pending WHERE user_id = $1`, bob); c != 0 {
		t.Fatalf("%d pushes queued for bob with push off", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM jobs WHERE kind = $1`, push.SendKind); c != 0 {
		t.Fatalf("%d push jobs with push off", c)
	}
	if c := n.Count(t, `SELECT count(*) FROM push_devices WHERE user_id = $1`, bob); c != 1 {
		t.Fatalf("bob has %d devices, want the one he registered", c)
	}
}

// A member who comes online while a push waits for its batch (the app
// opened just after the message) gets no push: presence is looked at
// again just before sending.
func TestComingOnlineBeforeTheSendCancelsThePush(t *testing.T) {
	w := newWorld(t, "alice", "bob")
	bob := w.device(t, "bob", "bob-phone-"+w.tag)
	w.send(t, "alice", "are you there?")
	brooktest.Eventually(t, "bob's push queued", func() bool {
		return w.n.Count(t, `SELECT count(*) FROM push_pending WHERE user_id = $1`, w.user("bob")) == 1
	})
	closeBob := w.online(t, "bob")
	defer closeBob()
	w.settle(t)
	if got := w.fcm.sent(bob); len(got) != 0 {
		t.Fatalf("bob, online before the send, got %d pushes: %+v", len(got), got)
	}
}
