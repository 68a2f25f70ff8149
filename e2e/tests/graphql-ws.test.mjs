// The reference client of the graphql-transport-ws protocol, unmodified.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBrook, token, gql, metric, eventually, wsClient } from '../lib/brook.mjs';

let server;
before(async () => { server = await startBrook(); });
after(async () => { await server?.remove(); });

// result runs a query or mutation and returns its result once complete.
function result(c, payload) {
  return new Promise((ok, fail) => {
    let value;
    c.subscribe(payload, {
      next: (v) => { value = v; },
      error: fail,
      complete: () => ok(value),
    });
  });
}

test('query and mutation with a token in connectionParams', async () => {
  const c = wsClient(server, token('ws-alice'));
  try {
    const me = await result(c, { query: '{ me { id role } }' });
    assert.deepEqual(me.data, { me: { id: 'ws-alice', role: 'user' } });
    const up = await result(c, { query: 'mutation { upsertUsers(users: [{id: "ws-alice", name: "Alice WS"}]) { id name } }' });
    assert.deepEqual(up.data.upsertUsers, [{ id: 'ws-alice', name: 'Alice WS' }]);
  } finally {
    await c.dispose();
  }
});

test('a subscription receives what a mutation publishes', async () => {
  const c = wsClient(server, token('ws-watcher'));
  try {
    const base = await metric(server, 'brook_bus_subscribers');
    const events = c.iterate({ query: 'subscription { userUpdated(id: "ws-bob") { id name } }' });
    const nextEvent = events.next();
    await eventually('subscription live', async () => (await metric(server, 'brook_bus_subscribers')) === base + 1);
    await gql(server, token('ws-bob'), 'mutation { upsertUsers(users: [{id: "ws-bob", name: "Bob"}]) { id } }');
    const { value } = await nextEvent;
    assert.deepEqual(value.data, { userUpdated: { id: 'ws-bob', name: 'Bob' } });
    await events.return();
  } finally {
    await c.dispose();
  }
});

test('a bad token is refused with close code 4403', async () => {
  for (const bad of ['', 'garbage', token('x', { ttlSeconds: -60 })]) {
    const closed = new Promise((ok) => {
      const c = wsClient(server, bad, { on: { closed: (e) => ok(e) } });
      c.subscribe({ query: '{ me { id } }' }, { next() {}, error() {}, complete() {} });
    });
    const e = await closed;
    assert.equal(e.code, 4403, `token ${JSON.stringify(bad).slice(0, 20)}: close ${e.code} ${e.reason}`);
    assert.match(e.reason, /Forbidden/);
  }
});

test('complete from the client stops the work on the server', async () => {
  const c = wsClient(server, token('ws-quitter'));
  try {
    const before = await metric(server, 'brook_bus_subscribers');
    const events = c.iterate({ query: 'subscription { userUpdated(id: "nobody") { id } }' });
    const pending = events.next();
    await eventually('subscription running', async () => (await metric(server, 'brook_bus_subscribers')) === before + 1);
    await events.return();
    await pending.catch(() => {});
    await eventually('server work stopped', async () =>
      (await metric(server, 'brook_bus_subscribers')) === before &&
      (await metric(server, 'brook_graphql_subscriptions_open')) === 0);
  } finally {
    await c.dispose();
  }
});

test('the built-in retry reconnects after a server restart and the subscription resumes', async () => {
  let connects = 0;
  const c = wsClient(server, token('ws-patient'), {
    retryAttempts: 30,
    shouldRetry: () => true,
    retryWait: async () => new Promise((ok) => setTimeout(ok, 300)),
    on: { connected: () => { connects++; } },
  });
  try {
    const received = [];
    c.subscribe({ query: 'subscription { userUpdated(id: "ws-carol") { name } }' }, {
      next: (v) => received.push(v.data.userUpdated.name),
      error: (e) => received.push(`error ${e?.code ?? e}`),
      complete: () => {},
    });
    await eventually('first connection', () => connects === 1);
    await server.restart();
    await eventually('reconnected', () => connects === 2, 60_000);
    // After a restart the workers' own subscription is the only other one.
    await eventually('resubscribed', async () => (await metric(server, 'brook_bus_subscribers')) === 2);
    await gql(server, token('ws-carol'), 'mutation { upsertUsers(users: [{id: "ws-carol", name: "after restart"}]) { id } }');
    await eventually('event after restart', () => received.includes('after restart'));
    assert.ok(!received.some((r) => r.startsWith('error')), `errors: ${received}`);
  } finally {
    await c.dispose();
  }
});

test('callEvents: ready, then a signal from another participant', async () => {
  const alice = token('ws-call-alice');
  const bob = token('ws-call-bob');
  await gql(server, bob, '{ me { id } }');
  const created = await gql(server, alice, 'mutation { createCall(input: {type: "default", members: ["ws-call-bob"]}) { id } }');
  const call = created.data.createCall.id;
  const join = (tok) => gql(server, tok, `mutation { joinCall(id: "${call}") { participant { id } } }`);
  const a = (await join(alice)).data.joinCall.participant.id;
  const b = (await join(bob)).data.joinCall.participant.id;
  const c = wsClient(server, alice);
  try {
    const events = c.iterate({ query: `subscription { callEvents(participant: "${a}") { type signal { kind payload from { id } } } }` });
    const ready = await events.next();
    assert.equal(ready.value.data.callEvents.type, 'ready');
    const sent = await gql(server, bob, `mutation { sendSignal(participant: "${b}", to: "${a}", kind: OFFER, payload: "v=0") { id } }`);
    assert.equal(sent.errors, undefined, JSON.stringify(sent.errors));
    const { value } = await events.next();
    assert.deepEqual(value.data.callEvents, { type: 'signal', signal: { kind: 'OFFER', payload: 'v=0', from: { id: b } } });
    await events.return();
  } finally {
    await c.dispose();
  }
});
