import React from 'react';
import { useApolloClient, useMutation, useQuery, useSubscription } from '@apollo/client/react';
import {
  BAN, BLOCK, CHANNEL_EVENTS, CHANNELS, CREATE, DELETE_CHANNEL, FLAG, HIDDEN, HIDE, JOIN, ACCEPT, LEAVE, MARK_READ,
  MARK_UNREAD, MEMBERSHIP, MESSAGE_ADDED, MUTE_CHANNEL, MUTE_USER, MY_EVENTS, PEOPLE, PIN, PINNED, ROOM, SEND,
  TRUNCATE, TYPING, UNBAN, UNMUTE_CHANNEL, UNMUTE_USER, UNPIN, UNREAD, countsChanged, errorCode, inAnHour, nameOf,
  problem, roomPath, untilText,
} from './chatApi.js';
import { Message, MessageMenu, ReportForm } from './ChatMessage.jsx';
import { Composer, useTypists } from './ChatComposer.jsx';
import { RoomHead } from './ChatRoomHead.jsx';
import { MissingRoom, RoomBrowser } from './ChatRooms.jsx';
import { HiddenRooms, QuietPeople } from './ChatSidebar.jsx';
import { Reports } from './ChatReports.jsx';
import { uploadFile } from './uploads.js';

// Chat: your channels with live unread badges, and a room with history
// paging backwards, live messages and typing indicators. Open rooms can be
// found (the room browser), joined and left; a message can be quoted,
// pinned, reported and marked unread from; its author muted or blocked;
// owners and moderators ban a member from the room and handle its reports.
// A room can be muted (an hour, or until unmuted: its count leaves the
// total) and hidden; its owners clear its history or delete it.

// useUnreadTotal is the app-wide unread count (the Chat tab's badge), or
// undefined until it is read. myEvents says something changed in one of
// your channels, with your new totals; the channel lists (if open) are
// read again for their badges.
export function useUnreadTotal() {
  const client = useApolloClient();
  const { data } = useQuery(UNREAD);
  useSubscription(MY_EVENTS, {
    onData: ({ data: { data: ev } }) => {
      client.writeQuery({ query: UNREAD, data: { unreadCounts: { __typename: 'UnreadCounts', totalUnreadCount: ev.myEvents.totalUnreadCount } } });
      client.refetchQueries({ include: [CHANNELS, HIDDEN] });
    },
  });
  return data?.unreadCounts.totalUnreadCount;
}

export default function ChatPage({ session, path, go }) {
  const open = decodeURIComponent(path.split('/')[1] ?? '');
  const client = useApolloClient();
  const { data } = useQuery(CHANNELS);
  const [create] = useMutation(CREATE, { refetchQueries: [CHANNELS] });
  const [unmute] = useMutation(UNMUTE_CHANNEL);
  const [other, setOther] = React.useState('');
  const [room, setRoom] = React.useState('');
  const me = session.userId;
  // Channel ids are `type:id`: "browse" is no channel, but the room browser.
  const browsing = open === 'browse';

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
        <button className={`ghost wide browse ${browsing ? 'active' : ''}`} onClick={() => go('chat/browse')}>Browse rooms</button>
        <ul>
          {data?.channels.edges.map(({ node: c }) => {
            const muted = c.membership?.muted;
            return (
              <li key={c.id} className="row channel-row">
                <a href={`/app/chat/${encodeURIComponent(c.id)}`} className={`grow ${c.id === open ? 'active' : ''}`} data-testid="channel"
                  onClick={(e) => { e.preventDefault(); go(`chat/${encodeURIComponent(c.id)}`); }}>
                  <span className="grow">
                    <strong>{c.name ?? c.id}</strong>
                    <span className="muted preview">{c.lastMessage ? `${nameOf(c.lastMessage.user)}: ${c.lastMessage.text}` : 'No messages yet'}</span>
                  </span>
                  {c.unreadCount > 0 && (
                    <span className={`badge ${muted ? 'quiet' : ''}`} data-testid="unread" title={muted ? 'muted: not in your total' : undefined}>{c.unreadCount}</span>
                  )}
                </a>
                {muted && (
                  <button className="link small bell" data-testid="muted" aria-label={`unmute ${c.name ?? c.id}`}
                    title={c.membership.mutedUntil ? `Muted until ${untilText(c.membership.mutedUntil)}: click to unmute` : 'Muted: click to unmute'}
                    onClick={() => unmute({ variables: { channel: c.id } }).then(() => countsChanged(client), () => countsChanged(client))}>
                    <BellOff />
                  </button>
                )}
              </li>
            );
          })}
        </ul>
        <HiddenRooms go={go} open={open} />
        <QuietPeople />
      </aside>
      {browsing && <RoomBrowser go={go} />}
      {!browsing && (open
        ? <Room key={open} id={open} me={me} go={go} />
        : <p className="muted card room">Pick a channel, open or browse rooms, or start a chat.</p>)}
    </section>
  );
}

// BellOff is the muted room's icon (a bell, struck through).
function BellOff() {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" aria-hidden="true">
      <path d="M6 8a6 6 0 0 1 10.5-4M18 8c0 7 3 9 3 9H7M10.3 21a1.9 1.9 0 0 0 3.4 0M3 3l18 18M6 8v1c0 4-1.5 6.5-2.5 8" />
    </svg>
  );
}

// withMessage adds a message at the end of a room's history, once.
function withMessage(room, m) {
  const conn = room.channel.messages;
  if (conn.edges.some((e) => e.node.id === m.id)) return room;
  const edges = [...conn.edges, { __typename: 'MessageEdge', cursor: m.id, node: m }];
  return { ...room, channel: { ...room.channel, messages: { ...conn, edges } } };
}

function Room({ id, me, go }) {
  // The history is read from the server each time the room opens: what the
  // cache holds from an earlier visit misses what came since (and what a
  // truncate took away), and the live stream starts after its newest.
  const { data, error, fetchMore, subscribeToMore, refetch } = useQuery(ROOM, {
    variables: { id }, fetchPolicy: 'network-only', nextFetchPolicy: 'cache-first',
  });
  // A messaging channel one is not in answers FORBIDDEN: the room offers
  // to join it instead.
  const channel = error ? null : data?.channel;
  const readable = !!channel;
  const { data: mine, refetch: refetchMembership } = useQuery(MEMBERSHIP, { variables: { id }, skip: !readable });
  const { data: pins, refetch: refetchPins } = useQuery(PINNED, { variables: { id }, skip: !readable });
  const { data: people } = useQuery(PEOPLE);
  const membership = mine?.channel?.membership;
  const joined = membership?.status === 'MEMBER';
  const moderator = joined && (membership.role === 'owner' || membership.role === 'moderator');
  const roles = Object.fromEntries(mine?.channel?.members.edges.map(({ node }) => [node.user.id, node.role]) ?? []);
  const mutes = Object.fromEntries(people?.me.mutedUsers.map((mu) => [mu.user.id, mu]) ?? []);

  const client = useApolloClient();
  const [markRead] = useMutation(MARK_READ, { variables: { channel: id } });
  const [markUnread] = useMutation(MARK_UNREAD);
  const [typing] = useMutation(TYPING);
  const [send] = useMutation(SEND, {
    update: (cache, { data: { sendMessage } }) =>
      cache.updateQuery({ query: ROOM, variables: { id } }, (room) => room && withMessage(room, sendMessage)),
  });
  const [join] = useMutation(JOIN, { variables: { channel: id } });
  const [accept] = useMutation(ACCEPT, { variables: { channel: id } });
  const [leave] = useMutation(LEAVE, { variables: { channel: id } });
  const [pin] = useMutation(PIN);
  const [unpin] = useMutation(UNPIN);
  const [ban] = useMutation(BAN);
  const [unban] = useMutation(UNBAN);
  const [muteChannel] = useMutation(MUTE_CHANNEL);
  const [unmuteChannel] = useMutation(UNMUTE_CHANNEL, { variables: { channel: id } });
  const [hide] = useMutation(HIDE, { variables: { channel: id } });
  const [muteUser] = useMutation(MUTE_USER, { refetchQueries: [PEOPLE] });
  const [unmuteUser] = useMutation(UNMUTE_USER, { refetchQueries: [PEOPLE] });
  const [block] = useMutation(BLOCK, { refetchQueries: [PEOPLE] });
  const [flag] = useMutation(FLAG);
  const [truncate] = useMutation(TRUNCATE, { variables: { id } });
  const [remove] = useMutation(DELETE_CHANNEL, { variables: { id } });

  const [quoting, setQuoting] = React.useState(null);
  const [trouble, setTrouble] = React.useState(null);
  const [notice, setNotice] = React.useState(null);
  // Who is banned from the room, as far as this page has seen: from its own
  // bans and the channel's user.banned / user.unbanned events. (Brook has no
  // query for a channel's bans, so a reload forgets it until the next one.)
  const [banned, setBanned] = React.useState({});
  const markBanned = (user, on) => setBanned(({ [user]: _was, ...rest }) => (on ? { ...rest, [user]: true } : rest));
  // The message being reported, and those this page reported.
  const [reporting, setReporting] = React.useState(null);
  const [reported, setReported] = React.useState({});
  // Marked unread from a message: the room stops marking itself read
  // until the reader says so (or sends, which reads it).
  const [unreadFrom, setUnreadFrom] = React.useState(null);
  // Who deleted the room, once it is deleted while open.
  const [deletedBy, setDeletedBy] = React.useState(null);

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
      onError: () => {}, // a deleted room's streams end with NOT_FOUND
    });
  }, [id, readable]);

  // The room is open: whatever arrives is read (by members), unless the
  // reader marked it unread.
  React.useEffect(() => { if (newest && joined && !unreadFrom) markRead().catch(() => {}); }, [newest, joined, unreadFrom]);

  const end = React.useRef(null);
  React.useEffect(() => { end.current?.scrollIntoView({ block: 'end' }); }, [newest]);

  const [typists, onTyping] = useTypists(me);
  useSubscription(CHANNEL_EVENTS, {
    variables: { channel: id },
    skip: !readable || !!deletedBy,
    onData: ({ data: { data } }) => {
      const ev = data.channelEvents;
      onTyping(ev);
      if (ev.type === 'message.pinned' || ev.type === 'message.unpinned') refetchPins().catch(() => {});
      if (ev.type === 'user.banned' || ev.type === 'user.unbanned') markBanned(ev.user.id, ev.type === 'user.banned');
      if (ev.type.startsWith('member.')) refetchMembership().catch(() => {});
      if (ev.type === 'channel.truncated') {
        setUnreadFrom(null);
        setNotice(`${nameOf(ev.user) ?? 'An owner'} cleared the history.`);
        refetch().catch(() => {});
        refetchPins().catch(() => {});
      }
      if (ev.type === 'channel.deleted') setDeletedBy(nameOf(ev.user) ?? 'an owner');
    },
    onError: () => {}, // a deleted room's streams end with NOT_FOUND
  });

  if (deletedBy) {
    return (
      <div className="card room">
        <h3>{channel?.name ?? id}</h3>
        <p className="muted" data-testid="room-deleted">{deletedBy} deleted this room: it and its messages are gone.</p>
      </div>
    );
  }
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

  // The room's own actions, for its head.
  const on = {
    join: () => attempt(async () => { await join(); await membershipChanged(); }),
    accept: () => attempt(async () => { await accept(); await membershipChanged(); }),
    leave: () => attempt(async () => { await leave(); setQuoting(null); await membershipChanged(); }),
    mute: (until) => attempt(async () => { await muteChannel({ variables: { channel: id, until } }); await refetchMembership(); countsChanged(client); }),
    unmute: () => attempt(async () => { await unmuteChannel(); await refetchMembership(); countsChanged(client); }),
    hide: () => attempt(async () => { await hide(); await countsChanged(client); go('chat'); }),
    truncate: () => attempt(async () => { await truncate(); setUnreadFrom(null); await refetch(); await refetchPins(); countsChanged(client); }),
    delete: () => attempt(async () => { await remove(); await countsChanged(client); go('chat'); }),
  };

  // What a message's "…" menu does.
  async function markUnreadFrom(m) {
    const r = await attempt(() => markUnread({ variables: { channel: id, message: m.id } }));
    if (!r) return;
    setUnreadFrom(m.id);
    setNotice(null);
    countsChanged(client);
  }
  async function muteAuthor(m, forAnHour) {
    const until = forAnHour ? inAnHour() : null;
    if (await attempt(() => muteUser({ variables: { user: m.user.id, until } }))) {
      setNotice(`${nameOf(m.user)} is muted${until ? ` until ${untilText(until)}` : ''}: their messages no longer count as unread or notify you.`);
      countsChanged(client);
    }
  }
  async function unmuteAuthor(m) {
    if (await attempt(() => unmuteUser({ variables: { user: m.user.id } }))) {
      setNotice(null);
      countsChanged(client);
    }
  }
  async function blockAuthor(m) {
    if (await attempt(() => block({ variables: { user: m.user.id } }))) {
      setNotice(`You blocked ${nameOf(m.user)}: you no longer see their messages. Unblock them under “People you mute or block”.`);
      await refetch().catch(() => {});
      countsChanged(client);
    }
  }
  async function report(m, reason) {
    if (await attempt(() => flag({ variables: { message: m.id, reason } }))) {
      setReporting(null);
      setReported((r) => ({ ...r, [m.id]: true }));
    }
  }

  const pinned = pins?.channel?.pinnedMessages.edges.map((e) => e.node) ?? [];
  const canBan = (user) => moderator && user !== me && roles[user] !== 'owner' && roles[user] !== 'moderator';
  return (
    <div className="card room">
      <RoomHead id={id} channel={channel} info={mine} on={on} />
      {banned[me] && (
        <p className="banner error" role="status" data-testid="banned-me">You are banned from this room: you can read it, but not write.</p>
      )}
      {unreadFrom && (
        <p className="banner row notice" role="status" data-testid="marked-unread">
          <span className="grow">Marked unread: the room stays unread until you read it.</span>
          <button className="link small" onClick={() => setUnreadFrom(null)}>Mark read</button>
        </p>
      )}
      {notice && (
        <p className="banner row notice" role="status" data-testid="room-notice">
          <span className="grow">{notice}</span>
          <button className="link small" aria-label="dismiss notice" onClick={() => setNotice(null)}>×</button>
        </p>
      )}
      {trouble && <p className="error" role="alert" data-testid="room-error">{trouble}</p>}
      {moderator && <Reports id={id} canBan={canBan} onResolved={() => { refetch().catch(() => {}); refetchPins().catch(() => {}); }} />}
      {pinned.length > 0 && (
        <div className="pins" data-testid="pinned">
          <strong className="small">Pinned</strong>
          <ul>
            {pinned.map((m) => (
              <li key={m.id} className="row" data-testid="pin">
                <span className="grow"><span className="muted">{nameOf(m.user)}:</span> {m.text}</span>
                <span className="muted small">by {nameOf(m.pinnedBy)}</span>
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
            <React.Fragment key={m.id}>
              {unreadFrom === m.id && <p className="unread-marker" data-testid="unread-marker"><span>unread from here</span></p>}
              <Message m={m} me={me} banned={!!banned[m.user.id]} muted={!!mutes[m.user.id]} reported={!!reported[m.id]}>
                {joined && !banned[me] && m.type !== 'deleted' && (
                  <>
                    <button className="link small" onClick={() => setQuoting(m)}>quote</button>
                    {m.pinnedAt
                      ? <button className="link small" onClick={() => attempt(() => unpin({ variables: { id: m.id } }).then(() => refetchPins()))}>unpin</button>
                      : <button className="link small" onClick={() => attempt(() => pin({ variables: { id: m.id } }).then(() => refetchPins()))}>pin</button>}
                  </>
                )}
                {canBan(m.user.id) && (banned[m.user.id]
                  ? <button className="link small" onClick={() => attempt(async () => { await unban({ variables: { user: m.user.id, channel: id } }); markBanned(m.user.id, false); })}>unban</button>
                  : <button className="link small danger" onClick={() => attempt(async () => { await ban({ variables: { user: m.user.id, channel: id } }); markBanned(m.user.id, true); })}>ban</button>)}
                <MessageMenu m={m} me={me} joined={joined} authorMute={mutes[m.user.id]}
                  onMarkUnread={() => markUnreadFrom(m)} onReport={() => setReporting(m.id)}
                  onMuteAuthor={(forAnHour) => muteAuthor(m, forAnHour)} onUnmuteAuthor={() => unmuteAuthor(m)}
                  onBlockAuthor={() => blockAuthor(m)} />
              </Message>
              {reporting === m.id && <ReportForm m={m} onSend={(reason) => report(m, reason)} onCancel={() => setReporting(null)} />}
            </React.Fragment>
          )))}
        <div ref={end} />
      </div>
      <p className="typing muted" data-testid="typing">{typists.length > 0 && `${typists.join(', ')} ${typists.length > 1 ? 'are' : 'is'} typing…`}</p>
      {joined ? (
        <Composer
          quoting={quoting}
          onCancelQuote={() => setQuoting(null)}
          onTyping={(on) => typing({ variables: { channel: id, typing: on } }).catch(() => {})}
          onUpload={(file, onStage) => uploadFile(client, file, onStage)}
          onSend={async (text, attachments) => {
            try {
              await send({ variables: { channel: id, text, quoted: quoting?.id, attachments } });
              setQuoting(null);
              setUnreadFrom(null); // sending reads the room
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
