import React from 'react';
import { CombinedGraphQLErrors, gql } from '@apollo/client';
import { useApolloClient, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { Avatar } from './TimelinePage.jsx';

// Chat: your channels with live unread badges, and a room with history
// paging backwards, live messages and typing indicators. Open rooms can be
// joined and left; a message can be quoted and pinned; owners and
// moderators ban a member from the room.

const CHANNELS = gql`query Channels {
  channels(first: 30) { edges { node { id name unreadCount lastMessage { id text user { id name } } } } }
}`;
const CREATE = gql`mutation CreateChannel($id: ID!, $name: String, $members: [ID!]) {
  createChannel(input: { type: "messaging", id: $id, name: $name, members: $members }) { id }
}`;
const CREATE_ROOM = gql`mutation CreateRoom($type: String!, $id: ID!, $name: String) {
  createChannel(input: { type: $type, id: $id, name: $name, joinPolicy: OPEN }) { id }
}`;
const UNREAD = gql`query Unread { unreadCounts { totalUnreadCount } }`;
const MY_EVENTS = gql`subscription MyEvents { myEvents { type channel totalUnreadCount } }`;

const MESSAGE = gql`fragment MessageFields on Message {
  id text type createdAt pinnedAt user { id name }
  quotedMessage { id text user { id name } }
}`;
const ROOM = gql`query Room($id: ID!, $before: String) {
  channel(id: $id) {
    id name type joinPolicy
    messages(last: 20, before: $before) {
      edges { cursor node { ...MessageFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${MESSAGE}`;
// Who is in the room and as what: read again when members come and go,
// without touching the (paged) history.
const MEMBERSHIP = gql`query Membership($id: ID!) {
  channel(id: $id) {
    id memberCount membership { role status }
    members(first: 100) { edges { node { role user { id } } } }
  }
}`;
const PINNED = gql`query Pinned($id: ID!) {
  channel(id: $id) { id pinnedMessages(first: 25) { edges { node { id text pinnedAt pinnedBy { id name } user { id name } } } } }
}`;
const MESSAGE_ADDED = gql`subscription MessageAdded($channel: ID!, $after: ID) {
  messageAdded(channel: $channel, after: $after) { ...MessageFields }
} ${MESSAGE}`;
const CHANNEL_EVENTS = gql`subscription ChannelEvents($channel: ID!) {
  channelEvents(channel: $channel) { type user { id name } message { id pinnedAt } }
}`;
const SEND = gql`mutation Send($channel: ID!, $text: String!, $quoted: ID) {
  sendMessage(channel: $channel, input: { text: $text, quotedMessageId: $quoted }) {
    ...MessageFields
    channel { id unreadCount lastMessage { id text user { id name } } }
  }
} ${MESSAGE}`;
const MARK_READ = gql`mutation MarkRead($channel: ID!) { markRead(channel: $channel) { channel { id unreadCount } } }`;
const TYPING = gql`mutation Typing($channel: ID!, $typing: Boolean) { sendTypingEvent(channel: $channel, typing: $typing) }`;
const JOIN = gql`mutation Join($channel: ID!) { joinChannel(channel: $channel) { id memberCount membership { role status } } }`;
const LEAVE = gql`mutation Leave($channel: ID!) { leaveChannel(channel: $channel) }`;
const PIN = gql`mutation Pin($id: ID!) { pinMessage(id: $id) { id pinnedAt } }`;
const UNPIN = gql`mutation Unpin($id: ID!) { unpinMessage(id: $id) { id pinnedAt } }`;
const BAN = gql`mutation Ban($user: ID!, $channel: ID!) { banUser(user: $user, channel: $channel) }`;
const UNBAN = gql`mutation Unban($user: ID!, $channel: ID!) { unbanUser(user: $user, channel: $channel) }`;

// problem says what went wrong with an operation, with Brook's error code
// (extensions.code) so the user (and a bug report) knows which kind.
function problem(e) {
  if (CombinedGraphQLErrors.is(e)) {
    const [first] = e.errors;
    const code = first.extensions?.code;
    return code ? `${first.message} (${code})` : first.message;
  }
  return e?.message ?? String(e);
}

function errorCode(e) {
  return CombinedGraphQLErrors.is(e) ? e.errors[0]?.extensions?.code : undefined;
}

// roomPath is the page of a channel, from what the user typed: a full
// `type:id`, or a room name of a messaging channel.
function roomPath(typed) {
  const id = typed.includes(':') ? typed : `messaging:${typed.toLowerCase().replace(/[^a-z0-9_@.-]+/g, '-')}`;
  return `chat/${encodeURIComponent(id)}`;
}

// useUnreadTotal is the app-wide unread count (the Chat tab's badge).
// myEvents says something changed in one of your channels, with your new
// totals; the channel list (if open) is read again for its badges.
export function useUnreadTotal() {
  const client = useApolloClient();
  const { data } = useQuery(UNREAD);
  useSubscription(MY_EVENTS, {
    onData: ({ data: { data: ev } }) => {
      client.writeQuery({ query: UNREAD, data: { unreadCounts: { __typename: 'UnreadCounts', totalUnreadCount: ev.myEvents.totalUnreadCount } } });
      client.refetchQueries({ include: [CHANNELS] });
    },
  });
  return data?.unreadCounts.totalUnreadCount ?? 0;
}

export default function ChatPage({ session, path, go }) {
  const open = decodeURIComponent(path.split('/')[1] ?? '');
  const { data } = useQuery(CHANNELS);
  const [create] = useMutation(CREATE, { refetchQueries: [CHANNELS] });
  const [other, setOther] = React.useState('');
  const [room, setRoom] = React.useState('');
  const me = session.userId;

  async function startChat(e) {
    e.preventDefault();
    const people = [me, other.trim()].sort();
    const { data } = await create({ variables: { id: people.join('-'), name: people.join(' & '), members: [other.trim()] } });
    setOther('');
    go(`chat/${encodeURIComponent(data.createChannel.id)}`);
  }

  function openRoom(e) {
    e.preventDefault();
    go(roomPath(room.trim()));
    setRoom('');
  }

  return (
    <section className="chat">
      <aside className="card channels">
        <form onSubmit={startChat} className="row">
          <input placeholder="chat with, e.g. bob" value={other} onChange={(e) => setOther(e.target.value)} aria-label="chat with" />
          <button type="submit" disabled={!other.trim()}>Chat</button>
        </form>
        <form onSubmit={openRoom} className="row open-room">
          <input placeholder="room, e.g. lobby" value={room} onChange={(e) => setRoom(e.target.value)} aria-label="room" />
          <button type="submit" className="ghost" disabled={!room.trim()}>Open</button>
        </form>
        <ul>
          {data?.channels.edges.map(({ node: c }) => (
            <li key={c.id}>
              <a href={`/app/chat/${encodeURIComponent(c.id)}`} className={c.id === open ? 'active' : ''} data-testid="channel"
                onClick={(e) => { e.preventDefault(); go(`chat/${encodeURIComponent(c.id)}`); }}>
                <span className="grow">
                  <strong>{c.name ?? c.id}</strong>
                  <span className="muted preview">{c.lastMessage ? `${c.lastMessage.user.name ?? c.lastMessage.user.id}: ${c.lastMessage.text}` : 'No messages yet'}</span>
                </span>
                {c.unreadCount > 0 && <span className="badge" data-testid="unread">{c.unreadCount}</span>}
              </a>
            </li>
          ))}
        </ul>
      </aside>
      {open ? <Room key={open} id={open} me={me} /> : <p className="muted card room">Pick a channel, open a room, or start a chat.</p>}
    </section>
  );
}

// withMessage adds a message at the end of a room's history, once.
function withMessage(room, m) {
  const conn = room.channel.messages;
  if (conn.edges.some((e) => e.node.id === m.id)) return room;
  const edges = [...conn.edges, { __typename: 'MessageEdge', cursor: m.id, node: m }];
  return { ...room, channel: { ...room.channel, messages: { ...conn, edges } } };
}

function Room({ id, me }) {
  const { data, error, fetchMore, subscribeToMore, refetch } = useQuery(ROOM, { variables: { id } });
  // A messaging channel one is not in answers FORBIDDEN: the room offers
  // to join it instead.
  const channel = error ? null : data?.channel;
  const readable = !!channel;
  const { data: mine, refetch: refetchMembership } = useQuery(MEMBERSHIP, { variables: { id }, skip: !readable });
  const { data: pins, refetch: refetchPins } = useQuery(PINNED, { variables: { id }, skip: !readable });
  const membership = mine?.channel?.membership;
  const joined = membership?.status === 'MEMBER';
  const moderator = joined && (membership.role === 'owner' || membership.role === 'moderator');
  const roles = Object.fromEntries(mine?.channel?.members.edges.map(({ node }) => [node.user.id, node.role]) ?? []);

  const client = useApolloClient();
  const [markRead] = useMutation(MARK_READ, { variables: { channel: id } });
  const [typing] = useMutation(TYPING);
  const [send] = useMutation(SEND, {
    update: (cache, { data: { sendMessage } }) =>
      cache.updateQuery({ query: ROOM, variables: { id } }, (room) => room && withMessage(room, sendMessage)),
  });
  const [join] = useMutation(JOIN, { variables: { channel: id } });
  const [leave] = useMutation(LEAVE, { variables: { channel: id } });
  const [pin] = useMutation(PIN);
  const [unpin] = useMutation(UNPIN);
  const [ban] = useMutation(BAN);
  const [unban] = useMutation(UNBAN);

  const [quoting, setQuoting] = React.useState(null);
  const [trouble, setTrouble] = React.useState(null);
  // Who is banned from the room, as far as this page has seen: from its own
  // bans and the channel's user.banned / user.unbanned events. (Brook has no
  // query for a channel's bans, so a reload forgets it until the next one.)
  const [banned, setBanned] = React.useState({});
  const markBanned = (user, on) => setBanned(({ [user]: _was, ...rest }) => (on ? { ...rest, [user]: true } : rest));

  // attempt runs an action of the room and shows its error, if any, above
  // the history.
  async function attempt(action) {
    setTrouble(null);
    try {
      return await action();
    } catch (e) {
      setTrouble(problem(e));
      return undefined;
    }
  }

  // After joining or leaving, read the room again: its history (a messaging
  // channel opens or closes), membership, and the channel list.
  async function membershipChanged() {
    await refetch().catch(() => {});
    if (readable) await refetchMembership().catch(() => {});
    client.refetchQueries({ include: [CHANNELS] });
  }

  const conn = channel?.messages;
  const newest = conn?.edges.at(-1)?.node.id;

  // Live messages, starting right after the newest one we have: nothing
  // sent between the query and the subscription is missed.
  React.useEffect(() => {
    if (!readable) return undefined;
    return subscribeToMore({
      document: MESSAGE_ADDED,
      variables: { channel: id, after: newest },
      updateQuery: (room, { subscriptionData }) => room?.channel && withMessage(room, subscriptionData.data.messageAdded),
    });
  }, [id, readable]);

  // The room is open: whatever arrives is read (by members).
  React.useEffect(() => { if (newest && joined) markRead().catch(() => {}); }, [newest, joined]);

  const end = React.useRef(null);
  React.useEffect(() => { end.current?.scrollIntoView({ block: 'end' }); }, [newest]);

  const [typists, onTyping] = useTypists(me);
  useSubscription(CHANNEL_EVENTS, {
    variables: { channel: id },
    skip: !readable,
    onData: ({ data: { data } }) => {
      const ev = data.channelEvents;
      onTyping(ev);
      if (ev.type === 'message.pinned' || ev.type === 'message.unpinned') refetchPins().catch(() => {});
      if (ev.type === 'user.banned' || ev.type === 'user.unbanned') markBanned(ev.user.id, ev.type === 'user.banned');
      if (ev.type.startsWith('member.')) refetchMembership().catch(() => {});
    },
  });

  if (data && !error && !data.channel) return <MissingRoom id={id} onCreated={membershipChanged} />;
  if (error) {
    return (
      <div className="card room">
        <h3>{id}</h3>
        {errorCode(error) === 'FORBIDDEN'
          ? <p className="muted" data-testid="not-member">You are not a member of this room: join it to read and write (open rooms only).</p>
          : <p className="error" role="alert">{problem(error)}</p>}
        {trouble && <p className="error" role="alert" data-testid="room-error">{trouble}</p>}
        {errorCode(error) === 'FORBIDDEN' && (
          <button onClick={() => attempt(async () => { await join(); await membershipChanged(); })}>Join</button>
        )}
      </div>
    );
  }

  const pinned = pins?.channel?.pinnedMessages.edges.map((e) => e.node) ?? [];
  const canBan = (user) => moderator && user !== me && roles[user] !== 'owner' && roles[user] !== 'moderator';
  return (
    <div className="card room">
      <div className="row room-head">
        <h3 className="grow">{channel?.name ?? id}</h3>
        {mine && (
          <span className="muted small" data-testid="room-info">
            {mine.channel.memberCount} {mine.channel.memberCount === 1 ? 'member' : 'members'}
            {channel.joinPolicy === 'OPEN' && ' · open'}
            {joined && membership.role !== 'member' && ` · you are ${membership.role === 'owner' ? 'an owner' : 'a moderator'}`}
          </span>
        )}
        {/* MUTE (issue 18): a "Mute" toggle for the whole room goes here
            (muteChannel), next to Leave. The server API is being built; wire
            it once schema/chat.graphqls has it. Nothing is shown until then. */}
        {mine && joined && (
          <button className="ghost" onClick={() => attempt(async () => { await leave(); setQuoting(null); await membershipChanged(); })}>Leave</button>
        )}
        {mine && !joined && channel.joinPolicy === 'OPEN' && (
          <button onClick={() => attempt(async () => { await join(); await membershipChanged(); })}>Join</button>
        )}
      </div>
      {banned[me] && (
        <p className="banner error" role="status" data-testid="banned-me">You are banned from this room: you can read it, but not write.</p>
      )}
      {trouble && <p className="error" role="alert" data-testid="room-error">{trouble}</p>}
      {pinned.length > 0 && (
        <div className="pins" data-testid="pinned">
          <strong className="small">Pinned</strong>
          <ul>
            {pinned.map((m) => (
              <li key={m.id} className="row" data-testid="pin">
                <span className="grow"><span className="muted">{m.user.name ?? m.user.id}:</span> {m.text}</span>
                <span className="muted small">by {m.pinnedBy?.name ?? m.pinnedBy?.id}</span>
                {joined && <button className="link small" onClick={() => attempt(() => unpin({ variables: { id: m.id } }).then(() => refetchPins()))}>unpin</button>}
              </li>
            ))}
          </ul>
        </div>
      )}
      <div className="messages">
        {conn?.pageInfo.hasNextPage && (
          <button className="ghost" onClick={() => fetchMore({ variables: { before: conn.pageInfo.endCursor } })}>Load older</button>
        )}
        {conn?.edges.map(({ node: m }) => (m.type === 'system'
          ? <p key={m.id} className="system muted" data-testid="system-message">{m.text}</p>
          : (
            <Message key={m.id} m={m} me={me} banned={!!banned[m.user.id]}>
              {joined && !banned[me] && m.type !== 'deleted' && (
                <>
                  <button className="link small" onClick={() => setQuoting(m)}>quote</button>
                  {m.pinnedAt
                    ? <button className="link small" onClick={() => attempt(() => unpin({ variables: { id: m.id } }).then(() => refetchPins()))}>unpin</button>
                    : <button className="link small" onClick={() => attempt(() => pin({ variables: { id: m.id } }).then(() => refetchPins()))}>pin</button>}
                </>
              )}
              {/* MUTE (issue 18): a "mute" action on another user's message
                  (muteUser) goes here, once the server has it. */}
              {canBan(m.user.id) && (banned[m.user.id]
                ? <button className="link small" onClick={() => attempt(async () => { await unban({ variables: { user: m.user.id, channel: id } }); markBanned(m.user.id, false); })}>unban</button>
                : <button className="link small danger" onClick={() => attempt(async () => { await ban({ variables: { user: m.user.id, channel: id } }); markBanned(m.user.id, true); })}>ban</button>)}
            </Message>
          )))}
        <div ref={end} />
      </div>
      <p className="typing muted" data-testid="typing">{typists.length > 0 && `${typists.join(', ')} ${typists.length > 1 ? 'are' : 'is'} typing…`}</p>
      {joined ? (
        <Composer
          quoting={quoting}
          onCancelQuote={() => setQuoting(null)}
          onTyping={(on) => typing({ variables: { channel: id, typing: on } }).catch(() => {})}
          onSend={async (text) => {
            try {
              await send({ variables: { channel: id, text, quoted: quoting?.id } });
              setQuoting(null);
            } catch (e) {
              if (errorCode(e) === 'FORBIDDEN' && /banned/.test(e.errors[0].message)) markBanned(me, true);
              throw e;
            }
          }}
        />
      ) : (
        mine && <p className="muted">{channel.joinPolicy === 'OPEN' ? 'Join the room to write.' : 'Only members write here.'}</p>
      )}
    </div>
  );
}

// Message is one message of the history: who wrote it, the message it
// quotes above its text, whether it is pinned, and its actions.
function Message({ m, me, banned, children }) {
  const name = m.user.name ?? m.user.id;
  return (
    <div className={`message ${m.user.id === me ? 'mine' : ''}`} data-testid="message" data-id={m.id}>
      {m.user.id !== me && <Avatar name={name} small />}
      <p>
        <span className="muted who">{name}{banned && <span className="tag" data-testid="banned">banned</span>}</span>
        {m.quotedMessage && (
          <span className="quote" data-testid="quote">
            <span className="who">{m.quotedMessage.user.name ?? m.quotedMessage.user.id}</span>{m.quotedMessage.text}
          </span>
        )}
        <span className="text">{m.text}</span>
        {m.pinnedAt && <span className="pinned-mark" data-testid="pinned-mark" title="pinned">pinned</span>}
      </p>
      <span className="actions">{children}</span>
    </div>
  );
}

// MissingRoom offers to create a room that does not exist yet, open to
// anyone (joinPolicy OPEN), with the caller as its owner.
function MissingRoom({ id, onCreated }) {
  const [create] = useMutation(CREATE_ROOM);
  const [trouble, setTrouble] = React.useState(null);
  const [type, name] = [id.split(':')[0], id.slice(id.indexOf(':') + 1)];
  async function make() {
    try {
      await create({ variables: { type, id: name, name } });
      await onCreated();
    } catch (e) {
      setTrouble(problem(e));
    }
  }
  return (
    <div className="card room">
      <h3>{id}</h3>
      <p className="muted">No room {id} yet.</p>
      {trouble && <p className="error" role="alert" data-testid="room-error">{trouble}</p>}
      <button onClick={make}>Create it as an open room</button>
    </div>
  );
}

// useTypists lists who else is typing in a channel, from its typing.start
// and typing.stop events (handed to the returned function); a typist that
// goes quiet for 6 s is dropped.
function useTypists(me) {
  const [typists, setTypists] = React.useState({});
  const timers = React.useRef({});
  const drop = (user) => {
    clearTimeout(timers.current[user]);
    setTypists(({ [user]: _gone, ...rest }) => rest);
  };
  function onEvent({ type, user }) {
    if (!user || user.id === me) return;
    if (type === 'typing.start') {
      setTypists((t) => ({ ...t, [user.id]: user.name ?? user.id }));
      clearTimeout(timers.current[user.id]);
      timers.current[user.id] = setTimeout(() => drop(user.id), 6000);
    } else if (type === 'typing.stop' || type === 'message.new') {
      drop(user.id);
    }
  }
  React.useEffect(() => () => Object.values(timers.current).forEach(clearTimeout), []);
  return [Object.values(typists), onEvent];
}

// Composer sends typing.start at most every 3 s while you type, and
// typing.stop when you send or clear the box. A quoted message shows above
// the box until it is sent or dropped. A send that fails keeps the text
// and says why, with Brook's error code.
function Composer({ onSend, onTyping, quoting, onCancelQuote }) {
  const [text, setText] = React.useState('');
  const [failed, setFailed] = React.useState(null);
  const lastTyping = React.useRef(0);
  const box = React.useRef(null);
  React.useEffect(() => { if (quoting) box.current?.focus(); }, [quoting]);
  function change(e) {
    setText(e.target.value);
    if (e.target.value && Date.now() - lastTyping.current > 3000) {
      lastTyping.current = Date.now();
      onTyping(true);
    } else if (!e.target.value && lastTyping.current) {
      lastTyping.current = 0;
      onTyping(false);
    }
  }
  async function submit(e) {
    e.preventDefault();
    const body = text.trim();
    setText('');
    setFailed(null);
    if (lastTyping.current) { lastTyping.current = 0; onTyping(false); }
    try {
      await onSend(body);
    } catch (err) {
      setText(body);
      setFailed(problem(err));
    }
  }
  return (
    <div className="composer">
      {quoting && (
        <div className="row quoting" data-testid="composer-quote">
          <span className="quote grow"><span className="who">Quoting {quoting.user.name ?? quoting.user.id}</span>{quoting.text}</span>
          <button type="button" className="link" aria-label="cancel quote" onClick={onCancelQuote}>×</button>
        </div>
      )}
      {failed && <p className="error" role="alert" data-testid="send-error">Not sent: {failed}</p>}
      <form onSubmit={submit} className="row">
        <input placeholder={quoting ? 'Reply to the quote' : 'Write a message'} value={text} onChange={change} aria-label="message" ref={box} />
        <button type="submit" disabled={!text.trim()}>Send</button>
      </form>
    </div>
  );
}
