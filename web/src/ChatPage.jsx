import React from 'react';
import { gql } from '@apollo/client';
import { useApolloClient, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { Avatar } from './TimelinePage.jsx';

// Chat: your channels with live unread badges, and a room with history
// paging backwards, live messages and typing indicators.

const CHANNELS = gql`query Channels {
  channels(first: 30) { edges { node { id name unreadCount lastMessage { id text user { id name } } } } }
}`;
const CREATE = gql`mutation CreateChannel($id: ID!, $name: String, $members: [ID!]) {
  createChannel(input: { type: "messaging", id: $id, name: $name, members: $members }) { id }
}`;
const UNREAD = gql`query Unread { unreadCounts { totalUnreadCount } }`;
const MY_EVENTS = gql`subscription MyEvents { myEvents { type channel totalUnreadCount } }`;

const MESSAGE = gql`fragment MessageFields on Message { id text createdAt user { id name } }`;
const ROOM = gql`query Room($id: ID!, $before: String) {
  channel(id: $id) {
    id name
    messages(last: 20, before: $before) {
      edges { cursor node { ...MessageFields } }
      pageInfo { hasNextPage endCursor }
    }
  }
} ${MESSAGE}`;
const MESSAGE_ADDED = gql`subscription MessageAdded($channel: ID!, $after: ID) {
  messageAdded(channel: $channel, after: $after) { ...MessageFields }
} ${MESSAGE}`;
const CHANNEL_EVENTS = gql`subscription ChannelEvents($channel: ID!) {
  channelEvents(channel: $channel) { type user { id name } }
}`;
const SEND = gql`mutation Send($channel: ID!, $text: String!) {
  sendMessage(channel: $channel, input: { text: $text }) {
    ...MessageFields
    channel { id unreadCount lastMessage { id text user { id name } } }
  }
} ${MESSAGE}`;
const MARK_READ = gql`mutation MarkRead($channel: ID!) { markRead(channel: $channel) { channel { id unreadCount } } }`;
const TYPING = gql`mutation Typing($channel: ID!, $typing: Boolean) { sendTypingEvent(channel: $channel, typing: $typing) }`;

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
  const me = session.userId;

  async function startChat(e) {
    e.preventDefault();
    const people = [me, other.trim()].sort();
    const { data } = await create({ variables: { id: people.join('-'), name: people.join(' & '), members: [other.trim()] } });
    setOther('');
    go(`chat/${encodeURIComponent(data.createChannel.id)}`);
  }

  return (
    <section className="chat">
      <aside className="card channels">
        <form onSubmit={startChat} className="row">
          <input placeholder="chat with, e.g. bob" value={other} onChange={(e) => setOther(e.target.value)} aria-label="chat with" />
          <button type="submit" disabled={!other.trim()}>Chat</button>
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
      {open ? <Room key={open} id={open} me={me} /> : <p className="muted card room">Pick a channel, or start a chat.</p>}
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
  const { data, fetchMore, subscribeToMore } = useQuery(ROOM, { variables: { id } });
  const [markRead] = useMutation(MARK_READ, { variables: { channel: id } });
  const [typing] = useMutation(TYPING);
  const [send] = useMutation(SEND, {
    update: (cache, { data: { sendMessage } }) =>
      cache.updateQuery({ query: ROOM, variables: { id } }, (room) => room && withMessage(room, sendMessage)),
  });
  const conn = data?.channel?.messages;
  const newest = conn?.edges.at(-1)?.node.id;
  const loaded = !!conn;

  // Live messages, starting right after the newest one we have: nothing
  // sent between the query and the subscription is missed.
  React.useEffect(() => {
    if (!loaded) return undefined;
    return subscribeToMore({
      document: MESSAGE_ADDED,
      variables: { channel: id, after: newest },
      updateQuery: (room, { subscriptionData }) => room?.channel && withMessage(room, subscriptionData.data.messageAdded),
    });
  }, [id, loaded]);

  // The room is open: whatever arrives is read.
  React.useEffect(() => { if (newest) markRead(); }, [newest]);

  const end = React.useRef(null);
  React.useEffect(() => { end.current?.scrollIntoView({ block: 'end' }); }, [newest]);

  const typists = useTypists(id, me);

  if (data && !data.channel) return <p className="card room error">No channel {id}.</p>;
  return (
    <div className="card room">
      <h3>{data?.channel.name ?? id}</h3>
      <div className="messages">
        {conn?.pageInfo.hasNextPage && (
          <button className="ghost" onClick={() => fetchMore({ variables: { before: conn.pageInfo.endCursor } })}>Load older</button>
        )}
        {conn?.edges.map(({ node: m }) => (
          <div key={m.id} className={`message ${m.user.id === me ? 'mine' : ''}`} data-testid="message">
            {m.user.id !== me && <Avatar name={m.user.name ?? m.user.id} small />}
            <p><span className="muted who">{m.user.name ?? m.user.id}</span>{m.text}</p>
          </div>
        ))}
        <div ref={end} />
      </div>
      <p className="typing muted" data-testid="typing">{typists.length > 0 && `${typists.join(', ')} ${typists.length > 1 ? 'are' : 'is'} typing…`}</p>
      <Composer
        onTyping={(on) => typing({ variables: { channel: id, typing: on } })}
        onSend={(text) => send({ variables: { channel: id, text } })}
      />
    </div>
  );
}

// useTypists lists who else is typing in a channel, from its typing.start
// and typing.stop events; a typist that goes quiet for 6 s is dropped.
function useTypists(id, me) {
  const [typists, setTypists] = React.useState({});
  const timers = React.useRef({});
  const drop = (user) => {
    clearTimeout(timers.current[user]);
    setTypists(({ [user]: _gone, ...rest }) => rest);
  };
  useSubscription(CHANNEL_EVENTS, {
    variables: { channel: id },
    onData: ({ data: { data } }) => {
      const { type, user } = data.channelEvents;
      if (!user || user.id === me) return;
      if (type === 'typing.start') {
        setTypists((t) => ({ ...t, [user.id]: user.name ?? user.id }));
        clearTimeout(timers.current[user.id]);
        timers.current[user.id] = setTimeout(() => drop(user.id), 6000);
      } else if (type === 'typing.stop' || type === 'message.new') {
        drop(user.id);
      }
    },
  });
  React.useEffect(() => () => Object.values(timers.current).forEach(clearTimeout), []);
  return Object.values(typists);
}

// Composer sends typing.start at most every 3 s while you type, and
// typing.stop when you send or clear the box.
function Composer({ onSend, onTyping }) {
  const [text, setText] = React.useState('');
  const lastTyping = React.useRef(0);
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
    if (lastTyping.current) { lastTyping.current = 0; onTyping(false); }
    await onSend(body);
  }
  return (
    <form onSubmit={submit} className="row composer">
      <input placeholder="Write a message" value={text} onChange={change} aria-label="message" />
      <button type="submit" disabled={!text.trim()}>Send</button>
    </form>
  );
}
