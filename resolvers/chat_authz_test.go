package resolvers_test

import (
	"strings"
	"testing"

	"github.com/brookhq/brook/internal/brooktest"
)

// The rows of the authorization matrix for the chat operations of issue
// 18. Each runs in a moderated channel (f.moderated): the fixture's owner
// owns it, and its plain member, its moderator and a member hard-banned
// from it are the extra roles every row declares (policy.also; the
// moderation rows add a moderator an admin banned from it), besides
// the stranger, the non-member and the admin, who are in no channel of
// the owner's unless a row says so. The outcomes are the table "Who may
// do what" in docs/chat.md.

// What the moderated channel's member, moderator and banned member get,
// by kind of operation.
var (
	// membersAll: anything a member does, banned or not: reading, its own
	// read positions, mutes and hides, leaving, flagging.
	membersAll = map[role]outcome{member: allowed, moderator: allowed, banned: allowed}
	// membersWrite: writing to the channel (or coming back into it),
	// which a ban refuses.
	membersWrite = map[role]outcome{member: allowed, moderator: allowed, banned: "FORBIDDEN"}
	// membersModerate: moderating the channel: its moderators, unless
	// banned from it.
	membersModerate = map[role]outcome{member: "FORBIDDEN", moderator: allowed, banned: "FORBIDDEN", bannedMod: "FORBIDDEN"}
	// membersNone: managing the channel: its owners alone (and admins).
	membersNone = map[role]outcome{member: "FORBIDDEN", moderator: "FORBIDDEN", banned: "FORBIDDEN"}
)

// The kinds of row, by what the operation acts on.

// inChannel is a row on the moderated channel, $c.
func inChannel(op, variant, query string, want, also map[role]outcome) policy {
	return policy{op: op, variant: variant, want: want, also: also, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return query, brooktest.Vars{"c": f.moderated(t)}
	}}
}

// onMessage is a row on a message of the owner's, $m, in the moderated
// channel, $c.
func onMessage(op, query string, want, also map[role]outcome) policy {
	return policy{op: op, want: want, also: also, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		c := f.moderated(t)
		return query, brooktest.Vars{"c": c, "m": f.message(t, c)}
	}}
}

// onMember is a row on a plain member, $u, of the moderated channel, $c
// (variant "app-wide": $u is in it, but the operation names no channel).
func onMember(op, variant, query string, want, also map[role]outcome) policy {
	return policy{op: op, variant: variant, want: want, also: also, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		u := f.other(t)
		return query, brooktest.Vars{"c": f.moderated(t, u), "u": u}
	}}
}

// onUser is a row of a user's own on another user, $u: every signed-in
// user may.
func onUser(op, query string) policy {
	return policy{op: op, want: everyone, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		f.moderated(t)
		return query, brooktest.Vars{"u": f.other(t)}
	}}
}

// own is a row on the caller's own things across channels (lists):
// everyone's, each seeing its own.
func own(op, query string, setup func(t *testing.T, f *fixture) brooktest.Vars) policy {
	return policy{op: op, want: everyone, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
		return query, setup(t, f)
	}}
}

// ownerLeaves is leaveChannel's main row: anyone leaves, but the owner
// of the moderated channel is its last owner while others are in it.
var ownerLeaves = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: allowed, owner: "CONFLICT", nonMember: allowed, admin: allowed}

// inviteeOnly is acceptInvite's: the invitee (the stranger) accepts,
// members are in already (no change), others have no invitation.
var inviteeOnly = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: allowed, owner: allowed, nonMember: "FORBIDDEN", admin: "FORBIDDEN"}

// threadMember is markThreadRead's: a read position is a member's own,
// and a parent the caller may not read is not found.
var threadMember = map[role]outcome{anonymous: "UNAUTHENTICATED", stranger: "NOT_FOUND", owner: allowed, nonMember: "NOT_FOUND", admin: "FORBIDDEN"}

func init() {
	matrix = append(matrix,
		// Get-or-create of an existing channel: those who may read it
		// (a banned member reads on), and admins.
		policy{op: "mutation.createChannel", want: ownerOnly, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			id := strings.TrimPrefix(f.moderated(t), "messaging:")
			return `mutation($id: ID!) { createChannel(input: {type: "messaging", id: $id}) { id } }`, brooktest.Vars{"id": id}
		}},
		// A distinct channel is the caller's own conversation: created
		// for those not in it, returned to its members; a member banned
		// from it who left does not come back.
		policy{op: "mutation.createChannel", variant: "distinct", want: everyone, also: membersWrite, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			f.leave(t, banned, f.moderatedAs(t, map[string]any{"distinct": true}))
			set := []string{f.users[owner], f.users[member], f.users[moderator], f.users[banned]}
			return `mutation($m: [ID!]) { createChannel(input: {type: "messaging", distinct: true, members: $m}) { id } }`, brooktest.Vars{"m": set}
		}},
		inChannel("mutation.updateChannel", "", `mutation($c: ID!) { updateChannel(id: $c, name: "new") { id } }`, ownerOnly, membersNone),
		inChannel("mutation.updateChannel", "frozen and slow mode alone", `mutation($c: ID!) { updateChannel(id: $c, frozen: true, cooldownSeconds: 30) { id } }`,
			ownerOnly, membersModerate),
		policy{op: "mutation.inviteMembers", want: ownerOnly, also: membersModerate, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!, $u: ID!) { inviteMembers(channel: $c, userIds: [$u]) { id } }`, brooktest.Vars{"c": f.moderated(t), "u": f.users[nonMember]}
		}},
		// The stranger is invited, and so is the banned member, after it
		// left: a ban keeps it out.
		policy{op: "mutation.acceptInvite", want: inviteeOnly, also: membersWrite, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!) { acceptInvite(channel: $c) { id } }`, brooktest.Vars{"c": f.invited(t)}
		}},
		// Declining without an invitation is false, not an error.
		policy{op: "mutation.rejectInvite", want: everyone, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!) { rejectInvite(channel: $c) }`, brooktest.Vars{"c": f.invited(t)}
		}},
		// By invitation: its members are in already (no change, banned
		// or not), and admins may join any channel.
		inChannel("mutation.joinChannel", "", `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, ownerOnly, membersAll),
		// An open channel: anyone joins, but a member banned from it who
		// left does not come back.
		policy{op: "mutation.joinChannel", variant: "open channel", want: everyone, also: membersWrite, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			c := f.moderatedAs(t, map[string]any{"joinPolicy": "OPEN"})
			f.leave(t, banned, c)
			return `mutation($c: ID!) { joinChannel(channel: $c) { id } }`, brooktest.Vars{"c": c}
		}},
		// Anyone may leave; a non-member's leave is false, not an error.
		inChannel("mutation.leaveChannel", "", `mutation($c: ID!) { leaveChannel(channel: $c) }`, ownerLeaves, membersAll),
		onMember("mutation.setMemberRole", "", `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`, ownerOnly, membersNone),
		inChannel("mutation.sendMessage", "", `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi"}) { id } }`, ownerOnly, membersWrite),
		// A frozen channel takes messages from its owners, moderators and
		// admins only.
		policy{op: "mutation.sendMessage", variant: "frozen channel", want: ownerOnly, also: membersModerate, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			c := f.moderated(t)
			f.node.Must(t, f.token(t, owner), `mutation($c: ID!) { updateChannel(id: $c, frozen: true) { id } }`, brooktest.Vars{"c": c}, nil)
			return `mutation($c: ID!) { sendMessage(channel: $c, input: {text: "hi"}) { id } }`, brooktest.Vars{"c": c}
		}},
		onMessage("mutation.pinMessage", `mutation($m: ID!) { pinMessage(id: $m) { pinnedAt } }`, ownerOnly, membersWrite),
		onMessage("mutation.unpinMessage", `mutation($m: ID!) { unpinMessage(id: $m) { id } }`, ownerOnly, membersWrite),
		onMessage("mutation.sendReaction", `mutation($m: ID!) { sendReaction(message: $m, kind: "like") { id } }`, ownerOnly, membersWrite),
		// Banning from a channel: its owners and moderators (of plain
		// members), and admins; from the app: admins.
		onMember("mutation.banUser", "", `mutation($c: ID!, $u: ID!) { banUser(user: $u, channel: $c) }`, ownerOnly, membersModerate),
		onMember("mutation.banUser", "app-wide", `mutation($u: ID!) { banUser(user: $u) }`, adminOnly, membersNone),
		// The user unbanned is the banned member (who may not unban
		// itself).
		policy{op: "mutation.unbanUser", want: ownerOnly, also: membersModerate, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($c: ID!, $u: ID!) { unbanUser(user: $u, channel: $c) }`, brooktest.Vars{"c": f.moderated(t), "u": f.users[banned]}
		}},
		onMember("mutation.unbanUser", "app-wide", `mutation($u: ID!) { unbanUser(user: $u) }`, adminOnly, membersNone),
		// A member's own view of a channel: members only, banned or not
		// (an admin who is none has no membership to read, mute or hide).
		inChannel("mutation.markRead", "", `mutation($c: ID!) { markRead(channel: $c) { unreadCount } }`, memberOnly, membersAll),
		onMessage("mutation.markUnread", `mutation($c: ID!, $m: ID!) { markUnread(channel: $c, message: $m) { unreadCount } }`, memberOnly, membersAll),
		inChannel("mutation.muteChannel", "", `mutation($c: ID!) { muteChannel(channel: $c) }`, memberOnly, membersAll),
		inChannel("mutation.unmuteChannel", "", `mutation($c: ID!) { unmuteChannel(channel: $c) }`, memberOnly, membersAll),
		inChannel("mutation.hideChannel", "", `mutation($c: ID!) { hideChannel(channel: $c) }`, memberOnly, membersAll),
		inChannel("mutation.showChannel", "", `mutation($c: ID!) { showChannel(channel: $c) }`, memberOnly, membersAll),
		inChannel("mutation.deleteChannel", "", `mutation($c: ID!) { deleteChannel(id: $c) { id } }`, ownerOnly, membersNone),
		inChannel("mutation.truncateChannel", "", `mutation($c: ID!) { truncateChannel(id: $c) { id } }`, ownerOnly, membersNone),
		// Blocks and mutes of users are anyone's own.
		onUser("mutation.blockUser", `mutation($u: ID!) { blockUser(user: $u) }`),
		onUser("mutation.unblockUser", `mutation($u: ID!) { unblockUser(user: $u) }`),
		onUser("mutation.muteUser", `mutation($u: ID!) { muteUser(user: $u) }`),
		onUser("mutation.unmuteUser", `mutation($u: ID!) { unmuteUser(user: $u) }`),
		policy{op: "mutation.markThreadRead", want: threadMember, also: membersAll, run: func(t *testing.T, f *fixture) (string, brooktest.Vars) {
			return `mutation($m: ID!) { markThreadRead(message: $m) { unreadReplies } }`, brooktest.Vars{"m": f.thread(t)}
		}},
		own("query.threads", `{ threads { edges { node { unreadReplies parentMessage { id } } } } }`, func(t *testing.T, f *fixture) brooktest.Vars {
			f.thread(t)
			return nil
		}),
		own("query.channels", `{ channels { edges { node { id } } } }`, func(t *testing.T, f *fixture) brooktest.Vars {
			f.moderated(t)
			return nil
		}),
		own("query.searchUsers", `query($q: String!) { searchUsers(query: $q) { edges { node { id } } } }`, func(t *testing.T, f *fixture) brooktest.Vars {
			f.moderated(t)
			return brooktest.Vars{"q": f.users[owner]}
		}),
	)
}

// moderated creates a messaging channel owned by the fixture's owner with
// its member, its moderator and a member banned from it (the users of
// the extra roles; and a moderator an admin banned, for rows that declare
// one), and plain members besides, and returns its id.
func (f *fixture) moderated(t *testing.T, members ...string) string {
	t.Helper()
	return f.moderatedAs(t, map[string]any{"members": members})
}

// moderatedAs is moderated with more of the channel's input (members: the
// plain members besides).
func (f *fixture) moderatedAs(t *testing.T, input map[string]any) string {
	t.Helper()
	input["type"] = "messaging"
	more, _ := input["members"].([]string)
	input["members"] = append([]string{f.users[member], f.users[moderator], f.users[banned]}, more...)
	cid := f.create(t, input)
	tok := f.token(t, owner)
	f.node.Must(t, tok, `mutation($c: ID!, $u: ID!) { setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
		brooktest.Vars{"c": cid, "u": f.users[moderator]}, nil)
	f.node.Must(t, tok, `mutation($c: ID!, $u: ID!) { banUser(user: $u, channel: $c) }`, brooktest.Vars{"c": cid, "u": f.users[banned]}, nil)
	if u := f.users[bannedMod]; u != "" {
		f.node.Must(t, tok, `mutation($c: ID!, $u: ID!) { addMembers(channel: $c, userIds: [$u]) { id } setMemberRole(channel: $c, user: $u, role: "moderator") { role } }`,
			brooktest.Vars{"c": cid, "u": u}, nil)
		f.node.Must(t, f.token(t, admin), `mutation($c: ID!, $u: ID!) { banUser(user: $u, channel: $c) }`, brooktest.Vars{"c": cid, "u": u}, nil)
	}
	return cid
}

// leave takes a role's user out of a channel.
func (f *fixture) leave(t *testing.T, r role, channel string) {
	t.Helper()
	f.node.Must(t, f.token(t, r), `mutation($c: ID!) { leaveChannel(channel: $c) }`, brooktest.Vars{"c": channel}, nil)
}

// invited creates a moderated channel whose banned member has left, with
// the stranger and the banned user invited to it, and returns its id.
func (f *fixture) invited(t *testing.T) string {
	t.Helper()
	cid := f.moderated(t)
	f.leave(t, banned, cid)
	f.node.Must(t, f.token(t, owner), `mutation($c: ID!, $u: [ID!]!) { inviteMembers(channel: $c, userIds: $u) { id } }`,
		brooktest.Vars{"c": cid, "u": []string{f.users[stranger], f.users[banned]}}, nil)
	return cid
}

// other creates a user besides the fixture's roles and returns its id.
func (f *fixture) other(t *testing.T) string {
	t.Helper()
	u := f.users[owner] + "-other"
	f.node.Must(t, f.token(t, admin), `mutation($id: ID!) { upsertUsers(users: [{id: $id}]) { id } }`, brooktest.Vars{"id": u}, nil)
	return u
}

// thread starts a thread in a moderated channel (a message of the owner's
// and its reply) and returns its first message's id.
func (f *fixture) thread(t *testing.T) string {
	t.Helper()
	cid := f.moderated(t)
	parent := f.message(t, cid)
	f.node.Must(t, f.token(t, owner), `mutation($c: ID!, $p: ID!) { sendMessage(channel: $c, input: {text: "re", parentId: $p}) { id } }`,
		brooktest.Vars{"c": cid, "p": parent}, nil)
	return parent
}
