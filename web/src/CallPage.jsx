import React from 'react';
import { gql } from '@apollo/client';
import { useApolloClient } from '@apollo/client/react';
import { useCallEvents, who } from './Ringer.jsx';

// A video call between you and one other person. Brook carries no media: it
// relays the WebRTC offer, answer and ICE candidates between the browsers,
// which then connect directly. "Call" rings the other person's every device
// (Ringer.jsx shows the incoming call there); "Start video call" joins the
// call the two of you share, without ringing. A path call/<call id> joins
// that call: where Ringer sends you when you accept one.

const CREATE = gql`mutation CreateCall($id: ID!, $members: [ID!]) {
  createCall(input: { type: "default", id: $id, members: $members }) { id }
}`;
// A ringing call gets a fresh id (createCall makes one): each call rings once.
const RING = gql`mutation RingCall($members: [ID!]) {
  createCall(input: { type: "default", members: $members, ring: true }) {
    id
    rings { id user { id name } state reason }
  }
}`;
const CANCEL = gql`mutation CancelRing($id: ID!) { cancelRing(id: $id) { id state } }`;
const JOIN = gql`mutation JoinCall($id: ID!) {
  joinCall(id: $id) { participant { id } others { id user { id } } session { sfu { id } } }
}`;
const LEAVE = gql`mutation LeaveCall($p: ID!) { leaveCall(participant: $p) }`;
const SIGNAL = gql`mutation Signal($p: ID!, $to: ID!, $kind: SignalKind!, $payload: String!) {
  sendSignal(participant: $p, to: $to, kind: $kind, payload: $payload) { id }
}`;
const EVENTS = gql`subscription CallEvents($p: ID!) {
  callEvents(participant: $p) {
    type
    participant { id user { id } }
    signal { from { id user { id } } kind payload }
  }
}`;

// callId is the same for both people, whoever calls first.
const callId = (a, b) => [a, b].sort().join('.');

// What the caller shows when a ring it started stops ringing unanswered.
const outcome = {
  'call.rejected': (ring) => (ring.reason === 'BUSY' ? `${who(ring.user)} is busy` : 'Declined'),
  'call.missed': () => 'No answer',
  'call.ring_cancelled': () => 'Cancelled',
};

export default function CallPage({ session, path = '', go }) {
  const client = useApolloClient();
  const joinId = decodeURIComponent(path.split('/').slice(1).join('/'));
  const [other, setOther] = React.useState('');
  const [call, setCall] = React.useState(null); // { id, participant }
  const [ringing, setRinging] = React.useState(null); // { callId, user } while our ring rings
  const [peers, setPeers] = React.useState({}); // participant id → { user, stream }
  const [status, setStatus] = React.useState('');
  const localVideo = React.useRef(null);
  const stop = React.useRef(() => {});
  const current = React.useRef(null); // the call we are in, for hangUp from callbacks
  const ringRef = React.useRef(null); // the call our ring rings, before React has re-rendered
  const gaveUp = React.useRef(null); // { id, text }: a ring that stopped before we had joined its call

  async function camera() {
    setStatus('Starting your camera…');
    const local = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    localVideo.current.srcObject = local;
    return local;
  }

  // enter joins call id and connects to everyone in it.
  async function enter(id, local) {
    const { data } = await client.mutate({ mutation: JOIN, variables: { id } });
    const me = data.joinCall.participant.id;
    current.current = { id, participant: me };
    setCall({ id, participant: me, sfu: data.joinCall.session.sfu.id });
    stop.current = connect({ client, me, others: data.joinCall.others, local, setPeers, onEnded: () => {
      // While our ring rings, its outcome (Declined, No answer) says why.
      if (!ringRef.current) hangUp('The call ended');
    } });
  }

  async function start(e) {
    e.preventDefault();
    const local = await camera();
    const id = `default:${callId(session.userId, other.trim())}`;
    await client.mutate({ mutation: CREATE, variables: { id: id.slice('default:'.length), members: [other.trim()] } });
    await enter(id, local);
    setStatus(`In call ${id}`);
  }

  // ring starts a fresh call with the other person, rings their devices and
  // joins it, so our camera is there when they accept.
  async function ring() {
    const user = other.trim();
    try {
      const local = await camera();
      const { data } = await client.mutate({ mutation: RING, variables: { members: [user] } });
      const { id, rings } = data.createCall;
      const busy = rings.find((r) => r.state === 'REJECTED');
      if (busy) {
        local.getTracks().forEach((t) => t.stop());
        setStatus(outcome['call.rejected'](busy));
        return;
      }
      ringRef.current = id;
      setRinging({ callId: id, user });
      setStatus(`Ringing ${user}…`);
      await enter(id, local);
      // Declined, missed or cancelled while we joined: leave again.
      if (gaveUp.current?.id === id) await hangUp(gaveUp.current.text);
    } catch (err) {
      await hangUp(`Could not call ${user}: ${err.message}`);
    }
  }

  async function cancel() {
    const id = ringRef.current;
    ringRef.current = null;
    gaveUp.current = { id, text: 'Cancelled' };
    setRinging(null);
    try {
      await client.mutate({ mutation: CANCEL, variables: { id } });
    } catch (err) {
      console.warn('cancelRing:', err.message); // answered or missed meanwhile
    }
    await hangUp('Cancelled');
  }

  // hangUp leaves the call (if still in it) and shows status.
  async function hangUp(text = '') {
    stop.current();
    stop.current = () => {};
    localVideo.current?.srcObject?.getTracks().forEach((t) => t.stop());
    if (localVideo.current) localVideo.current.srcObject = null;
    const was = current.current;
    current.current = null;
    if (ringRef.current) gaveUp.current = { id: ringRef.current, text };
    ringRef.current = null;
    setCall(null);
    setRinging(null);
    setPeers({});
    setStatus(text);
    if (was) {
      try {
        await client.mutate({ mutation: LEAVE, variables: { p: was.participant } });
      } catch (err) {
        console.warn('leaveCall:', err.message); // the session ended already
      }
    }
  }

  // What became of our ring: the callee accepted (they join and offer), or
  // it stopped ringing unanswered, which ends a one-to-one call.
  useCallEvents((ev) => {
    if (!ev.ring || ev.call.id !== ringRef.current || ev.ring.caller.id !== session.userId) return;
    if (ev.type === 'call.accepted') {
      ringRef.current = null;
      setRinging(null);
      setStatus(`${who(ev.ring.user)} accepted: in call ${ev.call.id}`);
    } else if (outcome[ev.type]) {
      hangUp(outcome[ev.type](ev.ring));
    }
  });

  // A path call/<id> joins that call, once per id.
  React.useEffect(() => {
    if (!joinId || current.current?.id === joinId) return;
    (async () => {
      if (current.current) await hangUp();
      try {
        const local = await camera();
        await enter(joinId, local);
        setStatus(`In call ${joinId}`);
      } catch (err) {
        await hangUp(`Could not join ${joinId}: ${err.message}`);
      }
    })();
  }, [joinId]);

  React.useEffect(() => () => { stop.current(); current.current && hangUp(); }, []);

  async function leave() {
    await hangUp();
    if (joinId) go('call');
  }

  return (
    <section className="call">
      {!call && !ringing && (
        <form onSubmit={start} className="row">
          <input placeholder="who to call, e.g. bob" value={other} onChange={(e) => setOther(e.target.value)} aria-label="call user" />
          <button type="button" onClick={ring} disabled={!other.trim()}>{other.trim() ? `Call ${other.trim()}` : 'Call'}</button>
          <button type="submit" className="ghost" disabled={!other.trim()}>Start video call</button>
        </form>
      )}
      {ringing && <button onClick={cancel} className="danger">Cancel</button>}
      {call && !ringing && <button onClick={leave} className="danger">Leave</button>}
      <p className="muted" data-testid="call-status">{status}</p>
      <div className="videos">
        <figure><video ref={localVideo} autoPlay playsInline muted data-testid="local-video" /><figcaption>you</figcaption></figure>
        {Object.entries(peers).map(([pid, p]) => (
          <figure key={pid}><RemoteVideo stream={p.stream} /><figcaption>{p.user}</figcaption></figure>
        ))}
      </div>
    </section>
  );
}

function RemoteVideo({ stream }) {
  const ref = React.useRef(null);
  React.useEffect(() => { if (ref.current) ref.current.srcObject = stream; }, [stream]);
  return <video ref={ref} autoPlay playsInline muted data-testid="remote-video" />;
}

// connect runs the WebRTC side: one RTCPeerConnection per other
// participant. Whoever joins later makes the offers; every message between
// the browsers goes through Brook's sendSignal and callEvents.
function connect({ client, me, others, local, setPeers, onEnded }) {
  const pcs = new Map(); // participant id → { pc, pending ICE candidates }
  const send = (to, kind, payload) =>
    client.mutate({ mutation: SIGNAL, variables: { p: me, to, kind, payload: JSON.stringify(payload) } });

  function peer(pid, user) {
    if (pcs.has(pid)) return pcs.get(pid);
    const pc = new RTCPeerConnection();
    const entry = { pc, pending: [] };
    pcs.set(pid, entry);
    local.getTracks().forEach((t) => pc.addTrack(t, local));
    pc.onicecandidate = (e) => e.candidate && send(pid, 'ICE_CANDIDATE', e.candidate.toJSON());
    pc.ontrack = (e) => setPeers((all) => ({ ...all, [pid]: { user, stream: e.streams[0] } }));
    return entry;
  }

  async function onSignal({ from, kind, payload }) {
    const { pc, pending } = peer(from.id, from.user.id);
    const body = JSON.parse(payload);
    if (kind === 'ICE_CANDIDATE') {
      if (pc.remoteDescription) await pc.addIceCandidate(body);
      else pending.push(body); // candidates can overtake the offer or answer
      return;
    }
    await pc.setRemoteDescription(body);
    for (const c of pending.splice(0)) await pc.addIceCandidate(c);
    if (kind === 'OFFER') {
      await pc.setLocalDescription(await pc.createAnswer());
      await send(from.id, 'ANSWER', pc.localDescription.toJSON());
    }
  }

  const sub = client.subscribe({ query: EVENTS, variables: { p: me } }).subscribe({
    next: async ({ data }) => {
      const ev = data.callEvents;
      if (ev.type === 'ready') {
        // Our stream is live: answers to our offers cannot be missed now.
        for (const o of others) {
          const { pc } = peer(o.id, o.user.id);
          await pc.setLocalDescription(await pc.createOffer());
          await send(o.id, 'OFFER', pc.localDescription.toJSON());
        }
      } else if (ev.type === 'signal') {
        await onSignal(ev.signal);
      } else if (ev.type === 'participant.left' && pcs.has(ev.participant.id)) {
        pcs.get(ev.participant.id).pc.close();
        pcs.delete(ev.participant.id);
        setPeers(({ [ev.participant.id]: _gone, ...rest }) => rest);
      } else if (ev.type === 'session.ended') {
        onEnded(); // everyone left, or a one-to-one call's callee declined
      }
    },
  });

  return () => {
    sub.unsubscribe();
    for (const { pc } of pcs.values()) pc.close();
    pcs.clear();
  };
}
