import React from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import { HIDDEN, PEOPLE, ROOM, SHOW, UNBLOCK, UNMUTE_USER, countsChanged, nameOf, problem, untilText } from './chatApi.js';

// HiddenRooms lists, under the channel list, the rooms the caller hid
// (hideChannel): a new message in one puts it back in the list by itself;
// "show" does it now (showChannel).
export function HiddenRooms({ go, open }) {
  const client = useApolloClient();
  const { data } = useQuery(HIDDEN);
  const [show] = useMutation(SHOW);
  const [trouble, setTrouble] = React.useState(null);
  const rooms = data?.channels.edges.map((e) => e.node) ?? [];
  if (rooms.length === 0) return null;
  return (
    <details open className="side-list" data-testid="hidden-rooms">
      <summary className="small muted">Hidden rooms ({rooms.length})</summary>
      {trouble && <p className="error small" role="alert">{trouble}</p>}
      <ul>
        {rooms.map((c) => (
          <li key={c.id} className="row" data-testid="hidden-room">
            <a href={`/app/chat/${encodeURIComponent(c.id)}`} className={`grow ${c.id === open ? 'active' : ''}`}
              onClick={(e) => { e.preventDefault(); go(`chat/${encodeURIComponent(c.id)}`); }}>
              {c.name ?? c.id}
              {c.unreadCount > 0 && <span className="badge quiet">{c.unreadCount}</span>}
            </a>
            <button className="link small" onClick={() => show({ variables: { channel: c.id } })
              .then(() => countsChanged(client), (e) => setTrouble(problem(e)))}>show</button>
          </li>
        ))}
      </ul>
    </details>
  );
}

// QuietPeople lists whom the caller mutes (their messages count as no
// unread and notify nothing) and blocks (their messages are not shown at
// all), with unmute and unblock. Unblocking shows their messages again.
export function QuietPeople() {
  const client = useApolloClient();
  const { data } = useQuery(PEOPLE);
  const [unmute] = useMutation(UNMUTE_USER, { refetchQueries: [PEOPLE] });
  const [unblock] = useMutation(UNBLOCK, { refetchQueries: [PEOPLE] });
  const [trouble, setTrouble] = React.useState(null);
  const muted = data?.me.mutedUsers ?? [];
  const blocked = data?.me.blockedUsers ?? [];
  if (muted.length === 0 && blocked.length === 0) return null;
  const run = (action, user) => action({ variables: { user } })
    .then(() => { setTrouble(null); countsChanged(client); client.refetchQueries({ include: [ROOM] }); }, (e) => setTrouble(problem(e)));
  return (
    <details open className="side-list" data-testid="quiet-people">
      <summary className="small muted">People you mute or block ({muted.length + blocked.length})</summary>
      {trouble && <p className="error small" role="alert">{trouble}</p>}
      <ul>
        {muted.map(({ user, until }) => (
          <li key={`m-${user.id}`} className="row small" data-testid="muted-person">
            <span className="grow">{nameOf(user)} <span className="muted">muted{until ? ` until ${untilText(until)}` : ''}</span></span>
            <button className="link small" onClick={() => run(unmute, user.id)}>unmute</button>
          </li>
        ))}
        {blocked.map((user) => (
          <li key={`b-${user.id}`} className="row small" data-testid="blocked-person">
            <span className="grow">{nameOf(user)} <span className="muted">blocked</span></span>
            <button className="link small" onClick={() => run(unblock, user.id)}>unblock</button>
          </li>
        ))}
      </ul>
    </details>
  );
}
