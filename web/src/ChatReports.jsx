import React from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import { FLAGS, RESOLVE_FLAG, nameOf, problem } from './chatApi.js';

// Reports shows a room's owners and moderators the open reports (flags) of
// its messages, read when the room opens and every 30 seconds (Brook sends
// no event for a new flag), each with what a moderator may do: dismiss
// it, delete the message, or ban its author from the room (when canBan
// says the caller may).
export function Reports({ id, canBan, onResolved }) {
  // errorPolicy all: a flag whose message is gone (its room deleted or
  // cleared) answers with an error in its place; the others still show.
  const { data, refetch } = useQuery(FLAGS, { fetchPolicy: 'cache-and-network', pollInterval: 30_000, errorPolicy: 'all' });
  const [resolve] = useMutation(RESOLVE_FLAG);
  const [trouble, setTrouble] = React.useState(null);
  const flags = data?.flags.edges.map((e) => e.node).filter((f) => f.message?.channel.id === id) ?? [];
  if (flags.length === 0 && !trouble) return null;

  async function act(f, action) {
    setTrouble(null);
    try {
      await resolve({ variables: { id: f.id, action } });
      onResolved(f, action);
    } catch (e) {
      setTrouble(problem(e)); // a refused action leaves the flag open
    }
    await refetch().catch(() => {});
  }

  return (
    <div className="reports" data-testid="reports">
      <strong className="small">Reports</strong>
      {trouble && <p className="error small" role="alert" data-testid="report-error">{trouble}</p>}
      <ul>
        {flags.map((f) => (
          <li key={f.id} className="row" data-testid="report">
            <span className="grow">
              <span className="muted">{nameOf(f.flaggedBy)} reported {nameOf(f.subject)}:</span>{' '}
              {f.message.type === 'deleted' ? <em className="muted">deleted message</em> : `“${f.message.text}”`}
              {f.reason && <span className="muted"> ({f.reason})</span>}
            </span>
            <button className="link small" onClick={() => act(f, 'DISMISS')}>dismiss</button>
            {f.message.type !== 'deleted' && (
              <button className="link small danger" onClick={() => act(f, 'DELETE_MESSAGE')}>delete message</button>
            )}
            {canBan(f.subject.id) && (
              <button className="link small danger" onClick={() => act(f, 'BAN_USER')}>ban {nameOf(f.subject)}</button>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
