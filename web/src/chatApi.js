// What the chat page asks Brook, in one place: its queries, mutations and
// subscriptions, and the helpers its parts share (errors, times, paths).
import { CombinedGraphQLErrors, gql } from '@apollo/client';

export const CHANNELS = gql`query Channels {
  channels(first: 30) {
    edges { node { id name unreadCount lastMessage { id text user { id name } } membership { muted mutedUntil } } }
  }
}`;
// Channels the caller hid (hideChannel), until a new message shows them again.
export const HIDDEN = gql`query Hidden {
  channels(filter: { hidden: true }, first: 30) { edges { node { id name unreadCount } } }
}`;
// Rooms the caller could join (open ones, and its invitations), a page at a time.
export const BROWSE = gql`query Browse($filter: ChannelFilter, $sort: [ChannelSort!], $after: String) {
  channels(filter: $filter, sort: $sort, first: 20, after: $after) {
    edges { cursor node { id name type memberCount joinPolicy lastMessageAt membership { status } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
// Whom the caller mutes and blocks (only ever readable on me).
export const PEOPLE = gql`query People {
  me { id mutedUsers { user { id name } until } blockedUsers { id name } }
}`;
export const CREATE = gql`mutation CreateChannel($id: ID!, $name: String, $members: [ID!]) {
  createChannel(input: { type: "messaging", id: $id, name: $name, members: $members }) { id }
}`;
export const CREATE_ROOM = gql`mutation CreateRoom($type: String!, $id: ID!, $name: String) {
  createChannel(input: { type: $type, id: $id, name: $name, joinPolicy: OPEN }) { id }
}`;
export const UNREAD = gql`query Unread { unreadCounts { totalUnreadCount } }`;
export const MY_EVENTS = gql`subscription MyEvents { myEvents { type channel totalUnreadCount } }`;

// An attachment as the chat page shows it (Attachments.jsx).
export const ATTACHMENT = gql`fragment AttachmentFields on Attachment {
  type url thumbUrl mimeType size width height title description imageUrl uploadId
}`;
export const MESSAGE = gql`fragment MessageFields on Message {
  id text type createdAt pinnedAt user { id name }
  quotedMessage { id text user { id name } }
  attachments { ...AttachmentFields }
} ${ATTACHMENT}`;
export const ROOM = gql`query Room($id: ID!, $before: String) {
  channel(id: $id) {
    id name type joinPolicy
    messages(last: 20, before: $before) {
      edges { cursor node { ...MessageFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${MESSAGE}`;
// Who is in the room and as what, and whether the caller mutes it: read
// again when members come and go, without touching the (paged) history.
export const MEMBERSHIP = gql`query Membership($id: ID!) {
  channel(id: $id) {
    id memberCount membership { role status muted mutedUntil }
    members(first: 100) { edges { node { role user { id } } } }
  }
}`;
export const PINNED = gql`query Pinned($id: ID!) {
  channel(id: $id) { id pinnedMessages(first: 25) { edges { node { id text pinnedAt pinnedBy { id name } user { id name } } } } }
}`;
// The open reports (flags) the caller handles: those of messages in rooms it
// owns or moderates.
export const FLAGS = gql`query Flags {
  flags(status: OPEN, first: 50) {
    edges { node { id reason createdAt flaggedBy { id name } subject { id name } message { id text type channel { id } } } }
  }
}`;
export const MESSAGE_ADDED = gql`subscription MessageAdded($channel: ID!, $after: ID) {
  messageAdded(channel: $channel, after: $after) { ...MessageFields }
} ${MESSAGE}`;
// message.updated carries the message's attachments: a thumbnail made
// after the send, or a link preview, replaces them in the cache.
export const CHANNEL_EVENTS = gql`subscription ChannelEvents($channel: ID!) {
  channelEvents(channel: $channel) { type user { id name } message { id type text pinnedAt attachments { ...AttachmentFields } } }
} ${ATTACHMENT}`;
export const SEND = gql`mutation Send($channel: ID!, $text: String!, $quoted: ID, $attachments: [AttachmentInput!]) {
  sendMessage(channel: $channel, input: { text: $text, quotedMessageId: $quoted, attachments: $attachments }) {
    ...MessageFields
    channel { id unreadCount lastMessage { id text user { id name } } }
  }
} ${MESSAGE}`;
export const MARK_READ = gql`mutation MarkRead($channel: ID!) { markRead(channel: $channel) { channel { id unreadCount } } }`;
export const MARK_UNREAD = gql`mutation MarkUnread($channel: ID!, $message: ID!) {
  markUnread(channel: $channel, message: $message) { unreadCount channel { id unreadCount } }
}`;
export const TYPING = gql`mutation Typing($channel: ID!, $typing: Boolean) { sendTypingEvent(channel: $channel, typing: $typing) }`;
export const JOIN = gql`mutation Join($channel: ID!) { joinChannel(channel: $channel) { id memberCount membership { role status } } }`;
export const ACCEPT = gql`mutation Accept($channel: ID!) { acceptInvite(channel: $channel) { id memberCount membership { role status } } }`;
export const LEAVE = gql`mutation Leave($channel: ID!) { leaveChannel(channel: $channel) }`;
export const PIN = gql`mutation Pin($id: ID!) { pinMessage(id: $id) { id pinnedAt } }`;
export const UNPIN = gql`mutation Unpin($id: ID!) { unpinMessage(id: $id) { id pinnedAt } }`;
export const BAN = gql`mutation Ban($user: ID!, $channel: ID!) { banUser(user: $user, channel: $channel) }`;
export const UNBAN = gql`mutation Unban($user: ID!, $channel: ID!) { unbanUser(user: $user, channel: $channel) }`;
export const MUTE_CHANNEL = gql`mutation MuteChannel($channel: ID!, $until: Time) { muteChannel(channel: $channel, until: $until) }`;
export const UNMUTE_CHANNEL = gql`mutation UnmuteChannel($channel: ID!) { unmuteChannel(channel: $channel) }`;
export const HIDE = gql`mutation Hide($channel: ID!) { hideChannel(channel: $channel) }`;
export const SHOW = gql`mutation Show($channel: ID!) { showChannel(channel: $channel) }`;
export const MUTE_USER = gql`mutation MuteUser($user: ID!, $until: Time) { muteUser(user: $user, until: $until) }`;
export const UNMUTE_USER = gql`mutation UnmuteUser($user: ID!) { unmuteUser(user: $user) }`;
export const BLOCK = gql`mutation Block($user: ID!) { blockUser(user: $user) }`;
export const UNBLOCK = gql`mutation Unblock($user: ID!) { unblockUser(user: $user) }`;
export const DELETE_CHANNEL = gql`mutation DeleteChannel($id: ID!) { deleteChannel(id: $id) { id } }`;
export const TRUNCATE = gql`mutation Truncate($id: ID!) { truncateChannel(id: $id) { id } }`;
export const FLAG = gql`mutation Flag($message: ID!, $reason: String) { flag(target: { message: $message }, reason: $reason) { id status } }`;
export const RESOLVE_FLAG = gql`mutation ResolveFlag($id: ID!, $action: FlagAction!) { resolveFlag(id: $id, action: $action) { id status action } }`;

// problem says what went wrong with an operation, with Brook's error code
// (extensions.code) so the user (and a bug report) knows which kind.
export function problem(e) {
  if (CombinedGraphQLErrors.is(e)) {
    const [first] = e.errors;
    const code = first.extensions?.code;
    return code ? `${first.message} (${code})` : first.message;
  }
  return e?.message ?? String(e);
}

export function errorCode(e) {
  return CombinedGraphQLErrors.is(e) ? e.errors[0]?.extensions?.code : undefined;
}

// roomPath is the page of a channel, from what the user typed: a full
// `type:id`, or a room name of a messaging channel.
export function roomPath(typed) {
  const id = typed.includes(':') ? typed : `messaging:${typed.toLowerCase().replace(/[^a-z0-9_@.-]+/g, '-')}`;
  return `chat/${encodeURIComponent(id)}`;
}

// inAnHour is the `until` of a one-hour mute.
export function inAnHour() {
  return new Date(Date.now() + 3600_000).toISOString();
}

// untilText says when a mute ends: a time today, else a date and a time.
export function untilText(until) {
  const t = new Date(until);
  const time = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return t.toDateString() === new Date().toDateString() ? time : `${t.toLocaleDateString()} ${time}`;
}

// nameOf is how a user shows: its name, else its id.
export function nameOf(user) {
  return user?.name ?? user?.id;
}

// countsChanged reads again what a change of what counts as unread moves:
// the total (the Chat tab's badge), the channel list and the hidden rooms.
// Muting and unmuting publish no event, so the page asks.
export function countsChanged(client) {
  return client.refetchQueries({ include: [UNREAD, CHANNELS, HIDDEN] });
}
