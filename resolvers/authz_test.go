package resolvers_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brookhq/brook/graph"
	"github.com/brookhq/brook/internal/brooktest"
)

// The authorization matrix: every query, mutation and subscription of the
// schema, run as each kind of caller, checked against one declared policy.
// An operation without a row fails the test, so none can skip it.

// role is a kind of caller.
type role string

const (
	anonymous role = "anonymous" // no token
	stranger  role = "user"      // signed in, no relation to the resource
	owner     role = "owner"     // the resource's owner or a member
	nonMember role = "nonmember" // signed in, and the resource exists but is not theirs
	admin     role = "admin"     // admin token
)

var roles = []role{anonymous, stranger, owner, nonMember, admin}

// outcome is what a role must get: "ok", or the error code.
type outcome string

const allowed outcome = "ok"

// fixture is the world an operation runs in: who owns what.
type fixture struct {
	node *brooktest.Node
	// users by role; anonymous has none.
	users map[role]string
}

// policy is one row of the matrix.
type policy struct {
	// op is the root field, as "query.me" or "mutation.upsertUsers".
	op string
	// variant names the case a row checks, when an operation has more
	// than one because its outcomes depend on the resource's state (a
	// frozen channel, an open one): "" for its main row.
	variant string
	// run builds the operation for a fresh fixture: its text and variables.
	// Mutations get a fresh fixture per role, so one role's success cannot
	// change another's answer.
	run func(t *testing.T, f *fixture) (string, brooktest.Vars)
	// want is the outcome per role.
	want map[role]outcome
	// also is the outcome for more kinds of caller (member, moderator,
	// banned), for rows whose fixture puts them in place.
	also map[role]outcome
}

// More kinds of caller, checked only by rows that declare them
// (policy.also): users of the fixture's moderated channel.
const (
	member    role = "member"    // a plain member
	moderator role = "moderator" // a moderator
	banned    role = "banned"    // a member banned from the channel
	bannedMod role = "bannedmod" // a moderator banned from the channel (by an admin)
)

// extraRoles are the kinds of caller of policy.also.
var extraRoles = []role{member, moderator, banned, bannedMod}

// rolesOf lists the roles a row is checked with.
func rolesOf(p policy) []role {
	out := slices.Clone(roles)
	for _, r := range extraRoles {
		if _, ok := p.also[r]; ok {
			out = append(out, r)
		}
	}
	return out
}

// name is how failures name a row: its op, and its variant if any.
func (p policy) name() string {
	if p.variant == "" {
		return p.op
	}
	return p.op + " (" + p.variant + ")"
}

// wantOf is a row's outcome for a role.
func wantOf(p policy, r role) outcome {
	if w, ok := p.also[r]; ok {
		return w
	}
	return p.want[r]
}

// everyone allows every signed-in caller.
var everyone = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: allowed, owner: allowed, nonMember: allowed, admin: allowed}

// ownerOnly allows the owner and admins.
var ownerOnly = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: allowed}

// matrix is the declared policy of every operation.
var matrix = []policy{
	{op: "query.me", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return `{ me { id } }`, nil
	}},
	{op: "query.user", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return `query($id: ID!) { user(id: $id) { id name } }`, brooktest.Vars{"id": f.users[owner]}
	}},
	{op: "query.users", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return `query($id: ID!) { users(ids: [$id]) { id } }`, brooktest.Vars{"id": f.users[owner]}
	}},
	{op: "mutation.upsertUsers", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return `mutation($id: ID!) { upsertUsers(users: [{id: $id, name: "changed"}]) { id } }`, brooktest.Vars{"id": f.users[owner]}
	}},
	{op: "subscription.userUpdated", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return `subscription($id: ID!) { userUpdated(id: $id) { id } }`, brooktest.Vars{"id": f.users[owner]}
	}},
}

// adminOnly allows admins alone.
var adminOnly = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: "FORBIDDEN", nonMember: "FORBIDDEN", admin: allowed}

// participantOnly allows only the user the participant belongs to: not even
// an admin may act as another user's participant.
var participantOnly = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: "FORBIDDEN"}

func init() {
	matrix = append(matrix,
		// On the ringing rows' call (f.ringCall): its callee, member,
		// second host and viewer (calls_authz_test.go).
		policy{op: "query.call", want: ownerOnly, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `query($id: ID!) { call(id: $id) { id } }`, brooktest.Vars{"id": f.ringCall(t, false)}
		}},
		policy{op: "query.sfuNodes", want: adminOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, false)
			return `{ sfuNodes { id } }`, nil
		}},
		policy{op: "mutation.createCall", want: ownerOnly, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			id := f.ringCall(t, false) // get-or-create of an existing call: members and admins only
			return `mutation($id: ID!) { createCall(input: {type: "default", id: $id}) { id } }`, brooktest.Vars{"id": strings.TrimPrefix(id, "default:")}
		}},
		policy{op: "mutation.joinCall", want: ownerOnly, also: ringMembers, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!) { joinCall(id: $id) { participant { id } } }`, brooktest.Vars{"id": f.ringCall(t, false)}
		}},
		policy{op: "mutation.leaveCall", want: participantOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($p: ID!) { leaveCall(participant: $p) }`, brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
		}},
		policy{op: "mutation.sendSignal", want: participantOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			call := f.ringCall(t, false)
			from, to := f.join(t, call), f.join(t, call) // the owner on two devices
			return `mutation($p: ID!, $to: ID!) { sendSignal(participant: $p, to: $to, kind: OFFER, payload: "v=0") { id } }`,
				brooktest.Vars{"p": from, "to": to}
		}},
		policy{op: "mutation.updateCallMembers", want: ownerOnly, also: callHostsOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($id: ID!, $u: ID!) { updateCallMembers(id: $id, set: [{user: $u}]) { id } }`,
				brooktest.Vars{"id": f.ringCall(t, false), "u": f.users[stranger]}
		}},
		policy{op: "mutation.endCall", want: ownerOnly, also: callHostsOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			call := f.ringCall(t, true) // ends the session and stops the ring
			f.join(t, call)
			return `mutation($id: ID!) { endCall(id: $id) }`, brooktest.Vars{"id": call}
		}},
		policy{op: "mutation.drainSFUNode", want: adminOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.ringCall(t, false)
			return `mutation { drainSFUNode(id: "local", drained: false) { id } }`, nil
		}},
		policy{op: "subscription.callEvents", want: participantOnly, also: noCallRole, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `subscription($p: ID!) { callEvents(participant: $p) { type } }`, brooktest.Vars{"p": f.join(t, f.ringCall(t, false))}
		}},
	)
}

// join joins the owner to a call and returns the participant id.
func (f *fixture) join(t *testing.T, call string) string {
	t.Helper()
	var got struct {
		JoinCall struct{ Participant struct{ ID string } }
	}
	f.node.Must(t, f.token(t, owner), `mutation($id: ID!) { joinCall(id: $id) { participant { id } } }`, brooktest.Vars{"id": call}, &got)
	return got.JoinCall.Participant.ID
}

// schemaOperations lists every root field of the schema as "type.field".
func schemaOperations() []string {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var ops []string
	for kind, def := range map[string]string{"query": "Query", "mutation": "Mutation", "subscription": "Subscription"} {
		t := schema.Types[def]
		if t == nil {
			continue
		}
		for _, f := range t.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				ops = append(ops, kind+"."+f.Name)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestAuthorizationMatrix(t *testing.T) {
	names := map[string]bool{}
	declared := map[string]bool{} // ops with at least one row
	for _, p := range matrix {
		if names[p.name()] {
			t.Fatalf("%s has two rows", p.name())
		}
		names[p.name()], declared[p.op] = true, true
	}
	ops := schemaOperations()
	var missing []string
	for _, op := range ops {
		if !declared[op] {
			missing = append(missing, op)
		}
	}
	for op := range declared {
		if !slices.Contains(ops, op) {
			t.Errorf("the matrix has a row for %s, which the schema does not have", op)
		}
	}

	rows := slices.Clone(matrix)
	slices.SortFunc(rows, func(a, b policy) int { return strings.Compare(a.name(), b.name()) })
	n := env.StartNode(t, brooktest.NodeOptions{})
	violations, checked := 0, 0
	for i, p := range rows {
		for _, r := range rolesOf(p) {
			f := newFixture(t, n, fmt.Sprintf("%d-%s", i, r), rolesOf(p)[len(roles):]...)
			query, vars := p.run(t, f)
			got := runAs(t, f, r, p.op, query, vars)
			checked++
			if want := wantOf(p, r); got != want {
				violations++
				t.Errorf("%s as %s: got %s, want %s", p.name(), r, got, want)
			}
		}
	}
	t.Logf("authorization matrix: %d of %d schema operations covered, %d rows, %d role checks, %d violations",
		len(ops)-len(missing), len(ops), len(rows), checked, violations)
	if len(missing) > 0 {
		t.Fatalf("operations without a row in the matrix: %s", strings.Join(missing, ", "))
	}
}

// newFixture makes fresh users for a row (with those of the extra roles
// it declares), so rows cannot disturb each other.
func newFixture(t *testing.T, n *brooktest.Node, tag string, extra ...role) *fixture {
	f := &fixture{node: n, users: map[role]string{}}
	for _, r := range append([]role{stranger, owner, nonMember, admin}, extra...) {
		f.users[r] = fmt.Sprintf("authz-%s-%s", tag, r)
		tok := f.token(t, r)
		n.Must(t, tok, `{ me { id } }`, nil, nil)
	}
	return f
}

func (f *fixture) token(t *testing.T, r role) string {
	switch r {
	case anonymous:
		return ""
	case admin:
		return env.AdminToken(t, f.users[r])
	}
	return env.Token(t, f.users[r])
}

// runAs runs an operation as a role and returns "ok" or the first error code.
// Subscriptions run over WebSocket; an anonymous caller cannot even open one.
func runAs(t *testing.T, f *fixture, r role, op, query string, vars brooktest.Vars) outcome {
	t.Helper()
	if !strings.HasPrefix(op, "subscription.") {
		resp := f.node.Query(t, f.token(t, r), query, vars)
		if code := resp.Code(); code != "" {
			return outcome(code)
		}
		return allowed
	}
	if r == anonymous {
		_, err := f.node.Dial(t, brooktest.AuthPayload(""))
		if err != nil && strings.Contains(err.Error(), "4403") {
			return "UNAUTHENTICATED"
		}
		return outcome(fmt.Sprintf("anonymous websocket: %v", err))
	}
	ws := f.node.MustDial(t, f.token(t, r))
	_, before := f.node.Bus.Stats()
	sub := ws.Subscribe(query, vars)
	defer sub.Complete()
	// A subscription is allowed once it is live on the bus; a refusal
	// arrives as an error instead.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				return "connection closed"
			}
			if m.Type == "error" {
				var errs []struct {
					Extensions map[string]any `json:"extensions"`
				}
				_ = json.Unmarshal(m.Payload, &errs)
				if len(errs) > 0 {
					code, _ := errs[0].Extensions["code"].(string)
					return outcome(code)
				}
			}
			var resp brooktest.Response
			_ = json.Unmarshal(m.Payload, &resp)
			if code := resp.Code(); code != "" {
				return outcome(code)
			}
			return allowed
		case <-tick.C:
			if _, now := f.node.Bus.Stats(); now > before {
				return allowed
			}
		case <-deadline:
			return "no answer in 10s"
		}
	}
}

// memberOnly allows members alone: a read position is a member's own, so
// not even an admin has one in a channel it is not in.
var memberOnly = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "FORBIDDEN", owner: allowed, nonMember: "FORBIDDEN", admin: "FORBIDDEN"}

// The chat rows from before issue 18; its operations, with the members,
// moderators and banned users of a channel, are in chat_authz_test.go.
func init() {
	msgRow := func(op, query string) policy {
		return policy{op: op, want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return query, brooktest.Vars{"m": f.message(t, f.channel(t))}
		}}
	}
	chanRow := func(op, query string, want map[role]outcome) policy {
		return policy{op: op, want: want, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return query, brooktest.Vars{"c": f.channel(t)}
		}}
	}
	matrix = append(matrix,
		chanRow("query.channel", `query($c: ID!) { channel(id: $c) { id messages { edges { node { id } } } } }`, ownerOnly),
		msgRow("query.message", `query($m: ID!) { message(id: $m) { id text } }`),
		policy{op: "query.unreadCounts", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `{ unreadCounts { totalUnreadCount } }`, nil
		}},
		policy{op: "query.searchMessages", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.message(t, f.channel(t))
			return `{ searchMessages(query: "hello") { edges { node { id } } } }`, nil
		}},
		policy{op: "mutation.addMembers", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": f.channel(t), "u": f.users[nonMember]}
		}},
		policy{op: "mutation.removeMembers", want: ownerOnly, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			// The user removed is a plain member, who may not remove others.
			return `mutation($c: ID!, $u: ID!) { removeMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": f.channel(t, f.users[stranger]), "u": f.users[stranger]}
		}},
		msgRow("mutation.updateMessage", `mutation($m: ID!) { updateMessage(id: $m, text: "edited") { id } }`),
		msgRow("mutation.deleteMessage", `mutation($m: ID!) { deleteMessage(id: $m) { id } }`),
		msgRow("mutation.deleteReaction", `mutation($m: ID!) { deleteReaction(message: $m, kind: "like") { id } }`),
		policy{op: "mutation.markAllRead", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.channel(t)
			return `mutation { markAllRead { totalUnreadCount } }`, nil
		}},
		chanRow("mutation.sendTypingEvent", `mutation($c: ID!) { sendTypingEvent(channel: $c) }`, ownerOnly),
		chanRow("subscription.messageAdded", `subscription($c: ID!) { messageAdded(channel: $c) { id } }`, ownerOnly),
		chanRow("subscription.channelEvents", `subscription($c: ID!) { channelEvents(channel: $c) { type } }`, ownerOnly),
		policy{op: "subscription.myEvents", want: everyone, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `subscription { myEvents { type } }`, nil
		}},
	)
}

// channel creates a messaging channel owned by the fixture's owner (with
// the given members) and returns its id.
func (f *fixture) channel(t *testing.T, members ...string) string {
	t.Helper()
	return f.create(t, map[string]any{"type": "messaging", "members": members})
}

// create creates a channel as the fixture's owner and returns its id.
func (f *fixture) create(t *testing.T, input map[string]any) string {
	t.Helper()
	var got struct{ CreateChannel struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($in: ChannelInput!) { createChannel(input: $in) { id } }`,
		brooktest.Vars{"in": input}, &got)
	return got.CreateChannel.ID
}

// message sends a message from the owner to a channel and returns its id.
func (f *fixture) message(t *testing.T, channel string) string {
	t.Helper()
	var got struct{ SendMessage struct{ ID string } }
	f.node.Must(t, f.token(t, owner), `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hello"}) { id } }`,
		brooktest.Vars{"c": channel}, &got)
	return got.SendMessage.ID
}
