import React from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import { ACCEPT, BROWSE, CHANNELS, CREATE_ROOM, JOIN, problem } from './chatApi.js';

// The orders the room browser offers, by channels(sort:).
const sorts = {
  busiest: [{ field: 'MEMBER_COUNT', direction: 'DESC' }],
  active: [{ field: 'LAST_MESSAGE_AT', direction: 'DESC' }],
  name: [{ field: 'NAME', direction: 'ASC' }],
};

// RoomBrowser lists the rooms the caller could join, from
// channels(filter: { joined: false }): open rooms it is not in, and rooms
// it is invited to. It finds them by the start of their name, in a chosen
// order, twenty at a time; Join (or Accept, for an invitation) takes the
// caller in and opens the room.
export function RoomBrowser({ go }) {
  const client = useApolloClient();
  const [typed, setTyped] = React.useState('');
  const [prefix, setPrefix] = React.useState('');
  const [order, setOrder] = React.useState('busiest');
  React.useEffect(() => {
    const t = setTimeout(() => setPrefix(typed.trim()), 250);
    return () => clearTimeout(t);
  }, [typed]);
  const filter = { joined: false, ...(prefix && { nameStartsWith: prefix }) };
  const { data, error, fetchMore } = useQuery(BROWSE, { variables: { filter, sort: sorts[order] }, fetchPolicy: 'cache-and-network' });
  const [join] = useMutation(JOIN);
  const [accept] = useMutation(ACCEPT);
  const [trouble, setTrouble] = React.useState(null);
  const conn = data?.channels;

  async function enter(c) {
    setTrouble(null);
    try {
      await (c.membership?.status === 'INVITED' ? accept : join)({ variables: { channel: c.id } });
      client.refetchQueries({ include: [CHANNELS] });
      go(`chat/${encodeURIComponent(c.id)}`);
    } catch (e) {
      setTrouble(problem(e));
    }
  }

  return (
    <div className="card room browser">
      <div className="row room-head">
        <h3 className="grow">Rooms you could join</h3>
        <select aria-label="sort by" value={order} onChange={(e) => setOrder(e.target.value)}>
          <option value="busiest">Most members</option>
          <option value="active">Latest message</option>
          <option value="name">Name</option>
        </select>
      </div>
      <input placeholder="find a room by name" aria-label="name starts with" value={typed} onChange={(e) => setTyped(e.target.value)} />
      {(trouble || error) && <p className="error" role="alert" data-testid="room-error">{trouble ?? problem(error)}</p>}
      <ul className="rooms">
        {conn?.edges.map(({ node: c }) => (
          <li key={c.id} className="row" data-testid="browse-room">
            <span className="grow">
              <a href={`/app/chat/${encodeURIComponent(c.id)}`} onClick={(e) => { e.preventDefault(); go(`chat/${encodeURIComponent(c.id)}`); }}>
                <strong>{c.name ?? c.id}</strong>
              </a>
              <span className="muted small preview">
                {c.id} · {c.memberCount} {c.memberCount === 1 ? 'member' : 'members'}
                {c.lastMessageAt && ` · last message ${new Date(c.lastMessageAt).toLocaleString()}`}
              </span>
            </span>
            {c.membership?.status === 'INVITED'
              ? <button onClick={() => enter(c)}>Accept</button>
              : <button onClick={() => enter(c)}>Join</button>}
          </li>
        ))}
      </ul>
      {conn && conn.edges.length === 0 && (
        <p className="muted" data-testid="no-rooms">
          No rooms to join{prefix && ` whose name starts with “${prefix}”`}. Open one by name on the left to create it.
        </p>
      )}
      {conn?.pageInfo.hasNextPage && (
        <button className="ghost" onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } }).catch((e) => setTrouble(problem(e)))}>
          More rooms
        </button>
      )}
    </div>
  );
}

// MissingRoom offers to create a room that does not exist yet, open to
// anyone (joinPolicy OPEN), with the caller as its owner.
export function MissingRoom({ id, onCreated }) {
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
