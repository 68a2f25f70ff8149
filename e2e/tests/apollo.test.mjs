// Apollo Client, the way frontend teams set it up: HTTP for queries and
// mutations, GraphQLWsLink for subscriptions, a normalized cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startBrook, token, gql as raw, metric, eventually } from '../lib/brook.mjs';

let server;
before(async () => { server = await startBrook(); });
after(async () => { await server?.remove(); });

// apollo builds the three-line setup from the README, plus a record of what
// went over HTTP.
function apollo(tok, { persisted = false } = {}) {
  const requests = [];
  const fetchAndRecord = async (url, init) => {
    requests.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  let http = new HttpLink({ uri: `${server.url}/query`, headers: { authorization: `Bearer ${tok}` }, fetch: fetchAndRecord });
  if (persisted) {
    http = createPersistedQueryLink({ sha256: (q) => createHash('sha256').update(q).digest('hex') }).concat(http);
  }
  const wsClient = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, connectionParams: { authToken: tok } });
  const link = ApolloLink.split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === 'OperationDefinition' && def.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return { client, requests, close: () => { client.stop(); return wsClient.dispose(); } };
}

test('normalized cache: a mutation result updates every query that holds the user', async () => {
  const { client, requests, close } = apollo(token('apollo-amy'));
  try {
    const ME = gql`{ me { id name } }`;
    const USER = gql`query($id: ID!) { user(id: $id) { id name } }`;
    await client.query({ query: ME });
    await client.query({ query: USER, variables: { id: 'apollo-amy' } });
    assert.ok(client.cache.extract()['User:apollo-amy'], 'the user is normalized under User:apollo-amy');
    const sent = requests.length;
    await client.mutate({ mutation: gql`mutation { upsertUsers(users: [{id: "apollo-amy", name: "Amy"}]) { id name } }` });
    assert.equal(requests.length, sent + 1, 'only the mutation went over the network');
    assert.equal(client.readQuery({ query: ME }).me.name, 'Amy');
    assert.equal(client.readQuery({ query: USER, variables: { id: 'apollo-amy' } }).user.name, 'Amy');
  } finally {
    await close();
  }
});

test('subscriptions go over the WebSocket link', async () => {
  const { client, close } = apollo(token('apollo-watch'));
  try {
    const base = await metric(server, 'brook_bus_subscribers');
    const got = [];
    const sub = client.subscribe({ query: gql`subscription { userUpdated(id: "apollo-ben") { id name } }` })
      .subscribe({ next: (r) => got.push(r.data.userUpdated), error: (e) => got.push({ error: String(e) }) });
    await eventually('subscribed', async () => (await metric(server, 'brook_bus_subscribers')) === base + 1);
    await raw(server, token('apollo-ben'), 'mutation { upsertUsers(users: [{id: "apollo-ben", name: "Ben"}]) { id } }');
    await eventually('event', () => got.length === 1);
    assert.deepEqual(got[0], { __typename: 'User', id: 'apollo-ben', name: 'Ben' });
    sub.unsubscribe();
    await eventually('unsubscribed on the server', async () => (await metric(server, 'brook_bus_subscribers')) === base);
  } finally {
    await close();
  }
});

test('automatic persisted queries: miss, retry with the query, then hit', async () => {
  const query = gql`query PersistedMe { me { id role } }`;
  const first = apollo(token('apq-user'), { persisted: true });
  try {
    const { data } = await first.client.query({ query });
    assert.equal(data.me.id, 'apq-user');
    assert.equal(first.requests.length, 2, 'a hash-only request, then the retry with the query');
    assert.equal(first.requests[0].query, undefined);
    assert.ok(first.requests[0].extensions.persistedQuery.sha256Hash);
    assert.match(first.requests[1].query, /PersistedMe/);
  } finally {
    await first.close();
  }
  const second = apollo(token('apq-user'), { persisted: true });
  try {
    const { data } = await second.client.query({ query });
    assert.equal(data.me.role, 'user');
    assert.equal(second.requests.length, 1, 'the hash alone is enough now');
    assert.equal(second.requests[0].query, undefined);
  } finally {
    await second.close();
  }
});
