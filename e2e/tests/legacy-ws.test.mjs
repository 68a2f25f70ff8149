// Clients of the older subscriptions-transport-ws protocol (subprotocol
// "graphql-ws"), with that library's own client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';
import { startBrook, token, gql, metric, eventually } from '../lib/brook.mjs';

let server;
before(async () => { server = await startBrook(); });
after(async () => { await server?.remove(); });

test('one connect, subscribe, receive, stop', async () => {
  const c = new SubscriptionClient(server.wsUrl, { reconnect: false, connectionParams: { authToken: token('legacy-watch') } }, WebSocket);
  try {
    const base = await metric(server, 'brook_bus_subscribers');
    const got = [];
    const sub = c.request({ query: 'subscription { userUpdated(id: "legacy-dan") { id name } }' }).subscribe({
      next: (v) => got.push(v),
      error: (e) => got.push({ error: e }),
    });
    await eventually('subscription live', async () => (await metric(server, 'brook_bus_subscribers')) === base + 1);
    await gql(server, token('legacy-dan'), 'mutation { upsertUsers(users: [{id: "legacy-dan", name: "Dan"}]) { id } }');
    await eventually('event received', () => got.length === 1);
    assert.deepEqual(got[0].data, { userUpdated: { id: 'legacy-dan', name: 'Dan' } });
    sub.unsubscribe();
    await eventually('stopped on the server', async () => (await metric(server, 'brook_bus_subscribers')) === base);
  } finally {
    c.close();
  }
});
