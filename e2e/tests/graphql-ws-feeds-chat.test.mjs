// graphql-ws, unmodified, against the feeds and chat subscriptions: each one
// receives a real event, and messageAdded(after:) resumes across a server
// restart without losing or repeating a message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBrook, token, gql, metric, eventually, wsClient } from '../lib/brook.mjs';

let server;
before(async () => { server = await startBrook(); });
after(async () => { await server?.remove(); });

// must runs an operation over HTTP and fails the test on any error.
async function must(tok, query, variables) {
  const r = await gql(server, tok, query, variables);
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data;
}

// users makes sure each user exists (the first request as a user creates it).
async function users(...ids) {
  for (const id of ids) await must(token(id), '{ me { id } }');
  return Object.fromEntries(ids.map((id) => [id, token(id)]));
}

// live starts a subscription and resolves once the server has subscribed it
// to the bus, so an event published from now on reaches it.
async function live(c, query, variables) {
  const base = await metric(server, 'brook_bus_subscribers');
  const events = c.iterate({ query, variables });
  const first = events.next();
  await eventually('subscription live', async () => (await metric(server, 'brook_bus_subscribers')) > base, 30_000);
  return { first, events };
}

const SEND = 'mutation($c: ID!, $t: String!) { sendMessage(channel: $c, input: {text: $t}) { id text } }';

test('feedUpdated: a followed user\'s post reaches the follower\'s timeline', async () => {
  const t = await users('wsf-alice', 'wsf-bob');
  await must(t['wsf-alice'], 'mutation { follow(source: "timeline:wsf-alice", target: "user:wsf-bob") { createdAt } }');
  const c = wsClient(server, t['wsf-alice']);
  try {
    const { first, events } = await live(c,
      'subscription { feedUpdated(feed: "timeline:wsf-alice") { feed { id } added { id verb object actor { id } } removed } }');
    // addActivity returns before the workers write the followers' timelines:
    // the subscription event is what says it is there.
    const { addActivity } = await must(t['wsf-bob'],
      'mutation { addActivity(feed: "user:wsf-bob", input: {verb: "post", object: "hello from bob"}) { id } }');
    const { value } = await first;
    assert.deepEqual(value.data.feedUpdated, {
      feed: { id: 'timeline:wsf-alice' },
      added: [{ id: addActivity.id, verb: 'post', object: 'hello from bob', actor: { id: 'wsf-bob' } }],
      removed: [],
    });
    await events.return();
  } finally {
    await c.dispose();
  }
});

test('messageAdded: a member receives a message sent by another', async () => {
  const t = await users('wsm-alice', 'wsm-bob');
  await must(t['wsm-alice'], 'mutation { createChannel(input: {type: "messaging", id: "wsm", members: ["wsm-bob"]}) { id } }');
  // Start after a message of our own, so none sent once we subscribe can
  // fall between subscribing and the server reading where "now" is.
  const { sendMessage: m0 } = await must(t['wsm-alice'], SEND, { c: 'messaging:wsm', t: 'first' });
  const c = wsClient(server, t['wsm-alice']);
  try {
    const { first, events } = await live(c,
      'subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { id text user { id } } }',
      { c: 'messaging:wsm', a: m0.id });
    const { sendMessage: m1 } = await must(t['wsm-bob'], SEND, { c: 'messaging:wsm', t: 'hi alice' });
    const { value } = await first;
    assert.deepEqual(value.data.messageAdded, { id: m1.id, text: 'hi alice', user: { id: 'wsm-bob' } });
    await events.return();
  } finally {
    await c.dispose();
  }
});

test('channelEvents: typing.start and typing.stop from another member', async () => {
  const t = await users('wse-alice', 'wse-bob');
  await must(t['wse-alice'], 'mutation { createChannel(input: {type: "messaging", id: "wse", members: ["wse-bob"]}) { id } }');
  const c = wsClient(server, t['wse-alice']);
  try {
    const { first, events } = await live(c,
      'subscription { channelEvents(channel: "messaging:wse") { type channel user { id } } }');
    await must(t['wse-bob'], 'mutation { sendTypingEvent(channel: "messaging:wse") }');
    assert.deepEqual((await first).value.data.channelEvents, { type: 'typing.start', channel: 'messaging:wse', user: { id: 'wse-bob' } });
    await must(t['wse-bob'], 'mutation { sendTypingEvent(channel: "messaging:wse", typing: false) }');
    assert.deepEqual((await events.next()).value.data.channelEvents, { type: 'typing.stop', channel: 'messaging:wse', user: { id: 'wse-bob' } });
    await events.return();
  } finally {
    await c.dispose();
  }
});

test('myEvents: notification.message_new with the new unread totals', async () => {
  const t = await users('wsn-alice', 'wsn-bob');
  await must(t['wsn-bob'], 'mutation { createChannel(input: {type: "messaging", id: "wsn", members: ["wsn-alice"]}) { id } }');
  const c = wsClient(server, t['wsn-alice']);
  try {
    const { first, events } = await live(c,
      'subscription { myEvents { type channel totalUnreadCount unreadChannels message { text user { id } } } }');
    await must(t['wsn-bob'], SEND, { c: 'messaging:wsn', t: 'ping' });
    assert.deepEqual((await first).value.data.myEvents, {
      type: 'notification.message_new',
      channel: 'messaging:wsn',
      totalUnreadCount: 1,
      unreadChannels: 1,
      message: { text: 'ping', user: { id: 'wsn-bob' } },
    });
    await events.return();
  } finally {
    await c.dispose();
  }
});

test('after a server restart, the built-in retry and messageAdded(after:) deliver every message sent meanwhile, once, in order', async () => {
  const t = await users('wsr-alice', 'wsr-bob');
  const channel = 'messaging:wsr';
  await must(t['wsr-alice'], 'mutation { createChannel(input: {type: "messaging", id: "wsr", members: ["wsr-bob"]}) { id } }');
  const { sendMessage: m0 } = await must(t['wsr-bob'], SEND, { c: channel, t: 'm0' });

  // The client reconnects only when the test lets it, so the messages below
  // are certainly sent while it is away.
  let letReconnect;
  const reconnectAllowed = new Promise((ok) => { letReconnect = ok; });
  let connects = 0;
  const c = wsClient(server, t['wsr-alice'], {
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: () => reconnectAllowed,
    on: { connected: () => { connects++; } },
  });

  // What an app does: remember the last message seen, and whenever the
  // connection drops, subscribe again from there. graphql-ws sends the new
  // subscription once its retry has reconnected.
  const received = [];
  const errors = [];
  let last = m0.id;
  let unsubscribe = () => {};
  const subscribe = () => {
    const previous = unsubscribe;
    unsubscribe = c.subscribe(
      { query: 'subscription($c: ID!, $a: ID) { messageAdded(channel: $c, after: $a) { id text } }', variables: { c: channel, a: last } },
      {
        next: ({ data, errors: e }) => {
          if (e) errors.push(e);
          else { received.push(data.messageAdded.text); last = data.messageAdded.id; }
        },
        error: (e) => errors.push(e),
        complete: () => {},
      },
    );
    previous(); // after the new one, so the client never has nothing to retry for
  };
  const offClosed = c.on('closed', () => { if (connects > 0) subscribe(); });
  try {
    subscribe();
    await eventually('connected', () => connects === 1, 30_000);
    await must(t['wsr-bob'], SEND, { c: channel, t: 'm1' });
    await eventually('m1 live', () => received.includes('m1'), 30_000);

    await server.restart();
    for (const text of ['m2', 'm3', 'm4', 'm5']) await must(t['wsr-bob'], SEND, { c: channel, t: text });
    letReconnect();
    await eventually('reconnected', () => connects === 2, 60_000);
    await eventually('missed messages replayed', () => received.length >= 5, 30_000);
    // Positions are delivered in order, so once m6 (sent live) arrives no
    // duplicate of an earlier one can still come.
    await must(t['wsr-bob'], SEND, { c: channel, t: 'm6' });
    await eventually('m6 live', () => received.includes('m6'), 30_000);
    assert.deepEqual(received, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    assert.deepEqual(errors, []);
  } finally {
    offClosed();
    unsubscribe();
    await c.dispose();
  }
});
