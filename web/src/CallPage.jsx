import React from 'react';
import { gql } from '@apollo/client';
import { useApolloClient } from '@apollo/client/react';

// A video call between you and one other person. Brook carries no media: it
// relays the WebRTC offer, answer and ICE candidates between the browsers,
// which then connect directly.

const CREATE = gql`mutation CreateCall($id: ID!, $members: [ID!]) {
  createCall(input: { type: "default", id: $id, members: $members }) { id }
}`;
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

export default function CallPage({ session }) {
  const client = useApolloClient();
  const [other, setOther] = React.useState('');
  const [call, setCall] = React.useState(null); // { id, participant }
  const [peers, setPeers] = React.useState({}); // participant id → { user, stream }
  const [status, setStatus] = React.useState('');
  const localVideo = React.useRef(null);
  const stop = React.useRef(() => {});

  async function start(e) {
    e.preventDefault();
    setStatus('Starting your camera…');
    const local = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    localVideo.current.srcObject = local;
    const id = `default:${callId(session.userId, other.trim())}`;
    await client.mutate({ mutation: CREATE, variables: { id: id.slice('default:'.length), members: [other.trim()] } });
    const { data } = await client.mutate({ mutation: JOIN, variables: { id } });
    const me = data.joinCall.participant.id;
    setCall({ id, participant: me, sfu: data.joinCall.session.sfu.id });
    setStatus(`In call ${id}`);
    stop.current = connect({ client, me, others: data.joinCall.others, local, setPeers });
  }

  async function leave() {
    stop.current();
    localVideo.current.srcObject?.getTracks().forEach((t) => t.stop());
    if (call) await client.mutate({ mutation: LEAVE, variables: { p: call.participant } });
    setCall(null);
    setPeers({});
    setStatus('');
  }

  React.useEffect(() => () => stop.current(), []);

  return (
    <section className="call">
      {!call && (
        <form onSubmit={start} className="row">
          <input placeholder="who to call, e.g. bob" value={other} onChange={(e) => setOther(e.target.value)} aria-label="call user" />
          <button type="submit" disabled={!other.trim()}>Start video call</button>
        </form>
      )}
      {call && <button onClick={leave} className="danger">Leave</button>}
      <p className="muted">{status}</p>
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
function connect({ client, me, others, local, setPeers }) {
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
      }
    },
  });

  return () => {
    sub.unsubscribe();
    for (const { pc } of pcs.values()) pc.close();
    pcs.clear();
  };
}
