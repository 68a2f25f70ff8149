import React from 'react';
import { gql } from '@apollo/client';
import { useApolloClient } from '@apollo/client/react';

// Ringing, on every page while signed in: one myCallEvents subscription per
// tab (every device of a user gets the same events), an incoming-call
// banner for the rings that ring you, and the events for the call page,
// which wants to know what became of the rings it started.

const MY_CALL_EVENTS = gql`subscription MyCallEvents {
  myCallEvents {
    type
    call { id }
    ring { id user { id name } caller { id name } state reason }
  }
}`;
const ACCEPT = gql`mutation AcceptCall($id: ID!) { acceptCall(id: $id) { id state } }`;
const REJECT = gql`mutation RejectCall($id: ID!) { rejectCall(id: $id, reason: DECLINED) { id state } }`;

const CallEvents = React.createContext(null);

// useCallEvents calls onEvent with every myCallEvents event of this tab.
export function useCallEvents(onEvent) {
  const listeners = React.useContext(CallEvents);
  const latest = React.useRef(onEvent);
  latest.current = onEvent;
  React.useEffect(() => {
    const l = (ev) => latest.current(ev);
    listeners.add(l);
    return () => listeners.delete(l);
  }, [listeners]);
}

// who names a user: their name, or their id when they have none.
export const who = (u) => u?.name || u?.id;

// Ringer subscribes to myCallEvents, shares the events with the pages below
// it and shows the incoming calls. onAccepted(callId) runs once a ring is
// accepted here: the app then joins the call.
export function Ringer({ session, onAccepted, children }) {
  const client = useApolloClient();
  const listeners = React.useMemo(() => new Set(), []);
  const [incoming, setIncoming] = React.useState([]); // rings that ring this user, oldest first

  React.useEffect(() => {
    const sub = client.subscribe({ query: MY_CALL_EVENTS }).subscribe({
      next: ({ data }) => {
        const ev = data?.myCallEvents;
        if (!ev) return;
        if (ev.type === 'call.ring' && ev.ring?.user.id === session.userId) {
          setIncoming((all) => (all.some((r) => r.id === ev.ring.id) ? all : [...all, { ...ev.ring, callId: ev.call.id }]));
        } else if (ev.ring) {
          // Decided here or on another device, missed, cancelled or ended:
          // this ring stops ringing everywhere.
          setIncoming((all) => all.filter((r) => r.id !== ev.ring.id));
        }
        for (const l of listeners) l(ev);
      },
      error: (e) => console.error('myCallEvents:', e),
    });
    return () => sub.unsubscribe();
  }, [client, listeners, session.userId]);

  const drop = (ring) => setIncoming((all) => all.filter((r) => r.id !== ring.id));

  async function accept(ring) {
    drop(ring);
    try {
      await client.mutate({ mutation: ACCEPT, variables: { id: ring.callId } });
    } catch (e) {
      console.warn('acceptCall:', e.message); // answered elsewhere, missed or cancelled meanwhile
      return;
    }
    onAccepted(ring.callId);
  }

  async function decline(ring) {
    drop(ring);
    try {
      await client.mutate({ mutation: REJECT, variables: { id: ring.callId } });
    } catch (e) {
      console.warn('rejectCall:', e.message);
    }
  }

  return (
    <CallEvents.Provider value={listeners}>
      {children}
      {incoming.length > 0 && (
        <div className="incoming-calls">
          {incoming.map((ring) => (
            <div key={ring.id} role="alertdialog" aria-label="Incoming call" className="incoming" data-testid="incoming-call">
              <div>
                <strong>{who(ring.caller)}</strong> is calling you
                <div className="muted ringing">Ringing…</div>
              </div>
              <div className="row">
                <button type="button" onClick={() => accept(ring)}>Accept</button>
                <button type="button" className="danger" onClick={() => decline(ring)}>Decline</button>
              </div>
            </div>
          ))}
        </div>
      )}
    </CallEvents.Provider>
  );
}
