// Apollo Client, the way frontend teams set it up: HTTP for queries and
// mutations, GraphQLWsLink for subscriptions, a normalized cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startBrook, token, gql as raw, metric, eventually } from '../lib/brook.mjs';
// The demo app's cache policies: how Brook's connections page in Apollo's
// cache (needs web/'s packages: make test-e2e installs both).
import { typePolicies } from '../../web/src/cache.js';

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

function apolloWithPolicies(tok) {
  const made = apollo(tok);
  const client = new ApolloClient({ link: made.client.link, cache: new InMemoryCache({ typePolicies }) });
  return { ...made, client, close: () => { client.stop(); return made.close(); } };
}

async function must(tok, query, variables) {
  const r = await raw(server, tok, query, variables);
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data;
}

const ACTIVITY_FIELDS = 'id object actor { id } reactionCounts { kind count } ownReactions { id kind }';
const TIMELINE = gql`query Timeline($feed: ID!, $after: String) {
  feed(id: $feed) { id activities(first: 2, after: $after) {
    edges { cursor node { ${ACTIVITY_FIELDS} } } pageInfo { hasNextPage endCursor } } }
}`;

test('a timeline: normalized activities, a reaction that updates the cached page, fetchMore with Relay cursors', async () => {
  const [alice, bob] = [token('apollo-tl-alice'), token('apollo-tl-bob')];
  await must(bob, '{ me { id } }');
  await must(alice, 'mutation { follow(source: "timeline:apollo-tl-alice", target: "user:apollo-tl-bob") { createdAt } }');
  const { client, requests, close } = apolloWithPolicies(alice);
  try {
    // Wait for bob's posts to reach alice's timeline through Apollo's
    // subscription: the workers write followers' timelines after addActivity.
    const base = await metric(server, 'brook_bus_subscribers');
    const added = [];
    const sub = client.subscribe({
      query: gql`subscription { feedUpdated(feed: "timeline:apollo-tl-alice") { added { id } } }`,
    }).subscribe({ next: (r) => added.push(...r.data.feedUpdated.added.map((a) => a.id)) });
    // A timeline's stream listens to its feed and to its follows topic.
    await eventually('subscribed', async () => (await metric(server, 'brook_bus_subscribers')) === base + 2, 30_000);
    const posted = [];
    for (let i = 1; i <= 5; i++) {
      const d = await must(bob, `mutation { addActivity(feed: "user:apollo-tl-bob", input: {verb: "post", object: "post ${i}"}) { id } }`);
      posted.push(d.addActivity.id);
    }
    await eventually('all five in the timeline', () => added.length === 5, 30_000);
    sub.unsubscribe();

    const variables = { feed: 'timeline:apollo-tl-alice' };
    const sent = requests.length;
    const first = await client.query({ query: TIMELINE, variables });
    assert.deepEqual(first.data.feed.activities.edges.map((e) => e.node.object), ['post 5', 'post 4']);
    assert.equal(first.data.feed.activities.pageInfo.hasNextPage, true);
    const cache = client.cache.extract();
    for (const id of posted.slice(3)) assert.ok(cache[`Activity:${id}`], `Activity:${id} is normalized`);

    // fetchMore with the connection's cursor appends the older pages.
    const watch = client.watchQuery({ query: TIMELINE, variables });
    const seen = [];
    const watching = watch.subscribe({ next: (r) => seen.push(r.data?.feed.activities.edges.length) });
    await eventually('watching', () => seen.includes(2));
    let page = first.data.feed.activities.pageInfo;
    while (page.hasNextPage) {
      const more = await watch.fetchMore({ variables: { after: page.endCursor } });
      page = more.data.feed.activities.pageInfo;
    }
    const all = client.readQuery({ query: TIMELINE, variables }).feed.activities;
    assert.deepEqual(all.edges.map((e) => e.node.object), ['post 5', 'post 4', 'post 3', 'post 2', 'post 1']);
    assert.equal(all.pageInfo.hasNextPage, false);
    assert.equal(requests.length, sent + 3, 'one request per page');
    await eventually('the watched query sees all five', () => seen.at(-1) === 5);

    // A reaction's result updates the cached activity in the page.
    const target = posted[2];
    const before = requests.length;
    await client.mutate({
      mutation: gql`mutation($id: ID!) { addReaction(activity: $id, kind: "like") { id kind activity { id reactionCounts { kind count } ownReactions { id kind } } } }`,
      variables: { id: target },
    });
    assert.equal(requests.length, before + 1, 'only the mutation went over the network');
    const liked = client.readQuery({ query: TIMELINE, variables }).feed.activities.edges.find((e) => e.node.id === target).node;
    assert.deepEqual(liked.reactionCounts, [{ __typename: 'ReactionCount', kind: 'like', count: 1 }]);
    assert.equal(liked.ownReactions[0].kind, 'like');
    watching.unsubscribe();
  } finally {
    await close();
  }
});

const ROOM = gql`query Room($id: ID!, $before: String) {
  channel(id: $id) { id name unreadCount lastMessage { id text }
    messages(last: 3, before: $before) { edges { cursor node { id text user { id } } } pageInfo { hasNextPage endCursor } } }
}`;

test('a channel: normalized, history paged backwards with fetchMore, and mutations that update the cached channel', async () => {
  const [alice, bob] = [token('apollo-ch-alice'), token('apollo-ch-bob')];
  await must(bob, '{ me { id } }');
  await must(alice, 'mutation { createChannel(input: {type: "messaging", id: "apollo", name: "Apollo", members: ["apollo-ch-bob"]}) { id } }');
  for (let i = 1; i <= 7; i++) {
    await must(bob, `mutation { sendMessage(channel: "messaging:apollo", input: {text: "m${i}"}) { id } }`);
  }
  const { client, requests, close } = apolloWithPolicies(alice);
  try {
    const variables = { id: 'messaging:apollo' };
    const first = await client.query({ query: ROOM, variables });
    assert.equal(first.data.channel.unreadCount, 7);
    assert.equal(first.data.channel.lastMessage.text, 'm7');
    assert.deepEqual(first.data.channel.messages.edges.map((e) => e.node.text), ['m5', 'm6', 'm7']);
    assert.ok(client.cache.extract()['Channel:messaging:apollo'], 'the channel is normalized under Channel:messaging:apollo');

    // Older pages go in front; endCursor is each page's oldest message.
    const watch = client.watchQuery({ query: ROOM, variables });
    const watching = watch.subscribe({ next: () => {} });
    const sent = requests.length;
    let page = first.data.channel.messages.pageInfo;
    while (page.hasNextPage) {
      const more = await watch.fetchMore({ variables: { before: page.endCursor } });
      page = more.data.channel.messages.pageInfo;
    }
    assert.equal(requests.length, sent + 2, 'two older pages: m2..m4, then m1');
    const history = client.readQuery({ query: ROOM, variables }).channel.messages;
    assert.deepEqual(history.edges.map((e) => e.node.text), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    assert.equal(history.pageInfo.hasNextPage, false);

    // Mutation results land on Channel:messaging:apollo, so the cached query
    // changes without asking the server again.
    const before = requests.length;
    await client.mutate({
      mutation: gql`mutation { sendMessage(channel: "messaging:apollo", input: {text: "hello from Apollo"}) {
        id channel { id unreadCount lastMessage { id text } } } }`,
    });
    const after = client.readQuery({ query: ROOM, variables }).channel;
    assert.equal(after.lastMessage.text, 'hello from Apollo');
    assert.equal(after.unreadCount, 0, 'sending marks the channel read for the sender');
    assert.equal(requests.length, before + 1);
    watching.unsubscribe();
  } finally {
    await close();
  }
});

// rejection runs an Apollo operation that must fail and returns its
// GraphQL errors (Apollo Client 4 rejects with CombinedGraphQLErrors).
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(CombinedGraphQLErrors.is(e), `a GraphQL error, not ${e}`);
    return e.errors;
  }
  assert.fail('the operation succeeded');
}

const LOBBY = gql`query Lobby($id: ID!) {
  channel(id: $id) { id joinPolicy memberCount membership { role status }
    messages(last: 10) { edges { node { id type text user { id } quotedMessage { id text user { id } } } } } }
}`;
const PINNED = gql`query Pinned($id: ID!) {
  channel(id: $id) { id pinnedMessages(first: 10) { edges { node { id text pinnedAt pinnedBy { id } } } } }
}`;
const SEND_QUOTE = gql`mutation Send($channel: ID!, $text: String!, $quoted: ID) {
  sendMessage(channel: $channel, input: { text: $text, quotedMessageId: $quoted }) { id text quotedMessage { id text user { id } } }
}`;

test('chat moderation: join an open channel, quote, pin, and a ban that makes the next send FORBIDDEN', async () => {
  const channel = 'messaging:apollo-lobby';
  const variables = { id: channel };
  const [aliceTok, bobTok] = [token('apollo-mod-alice'), token('apollo-mod-bob')];
  await must(bobTok, '{ me { id } }');
  const alice = apolloWithPolicies(aliceTok);
  const bob = apolloWithPolicies(bobTok);
  try {
    const created = await alice.client.mutate({
      mutation: gql`mutation { createChannel(input: { type: "messaging", id: "apollo-lobby", name: "Lobby", joinPolicy: OPEN }) { id joinPolicy membership { role } } }`,
    });
    assert.equal(created.data.createChannel.joinPolicy, 'OPEN');
    assert.equal(created.data.createChannel.membership.role, 'owner');

    // Join: a messaging channel is read by members only, so bob joins first.
    let errors = await rejection(bob.client.query({ query: LOBBY, variables }));
    assert.equal(errors[0].extensions.code, 'FORBIDDEN');
    const joined = await bob.client.mutate({
      mutation: gql`mutation($id: ID!) { joinChannel(channel: $id) { id memberCount membership { role status } } }`,
      variables,
    });
    assert.deepEqual(
      { memberCount: joined.data.joinChannel.memberCount, ...joined.data.joinChannel.membership },
      { memberCount: 2, __typename: 'Member', role: 'member', status: 'MEMBER' },
    );

    // Quote: bob quotes alice's welcome; the quote comes back on the new
    // message, and in the history, as alice's message (one cache entry).
    const welcome = (await alice.client.mutate({ mutation: SEND_QUOTE, variables: { channel, text: 'Welcome to the lobby' } })).data.sendMessage;
    const reply = (await bob.client.mutate({ mutation: SEND_QUOTE, variables: { channel, text: 'Thanks!', quoted: welcome.id } })).data.sendMessage;
    assert.deepEqual(reply.quotedMessage, { __typename: 'Message', id: welcome.id, text: 'Welcome to the lobby', user: { __typename: 'User', id: 'apollo-mod-alice' } });
    const history = (await alice.client.query({ query: LOBBY, variables, fetchPolicy: 'network-only' })).data.channel;
    const regular = history.messages.edges.map((e) => e.node).filter((m) => m.type === 'regular');
    assert.deepEqual(regular.map((m) => [m.text, m.quotedMessage?.id ?? null]), [['Welcome to the lobby', null], ['Thanks!', welcome.id]]);
    assert.equal(history.memberCount, 2);

    // Pin: bob pins the welcome; alice's pinnedMessages lists it, and the
    // cached message carries its pin.
    const pinned = (await bob.client.mutate({
      mutation: gql`mutation($id: ID!) { pinMessage(id: $id) { id pinnedAt pinnedBy { id } } }`, variables: { id: welcome.id },
    })).data.pinMessage;
    assert.ok(pinned.pinnedAt, 'pinnedAt is set');
    assert.equal(pinned.pinnedBy.id, 'apollo-mod-bob');
    const pins = (await alice.client.query({ query: PINNED, variables, fetchPolicy: 'network-only' })).data.channel.pinnedMessages.edges;
    assert.deepEqual(pins.map((e) => [e.node.id, e.node.text, e.node.pinnedBy.id]), [[welcome.id, 'Welcome to the lobby', 'apollo-mod-bob']]);
    assert.equal(alice.client.cache.extract()[`Message:${welcome.id}`].pinnedAt, pinned.pinnedAt);

    // Ban: bob hears of it on channelEvents, and his next send is
    // FORBIDDEN and writes nothing.
    const base = await metric(server, 'brook_bus_subscribers');
    const events = [];
    const sub = bob.client.subscribe({ query: gql`subscription($id: ID!) { channelEvents(channel: $id) { type user { id } } }`, variables })
      .subscribe({ next: (r) => events.push(r.data.channelEvents), error: (e) => events.push({ error: String(e) }) });
    await eventually('subscribed', async () => (await metric(server, 'brook_bus_subscribers')) >= base + 1);
    const banned = await alice.client.mutate({
      mutation: gql`mutation($id: ID!) { banUser(user: "apollo-mod-bob", channel: $id, reason: "spam") }`, variables,
    });
    assert.equal(banned.data.banUser, true);
    await eventually('user.banned', () => events.some((e) => e.type === 'user.banned'));
    assert.deepEqual(events.find((e) => e.type === 'user.banned').user, { __typename: 'User', id: 'apollo-mod-bob' });
    errors = await rejection(bob.client.mutate({ mutation: SEND_QUOTE, variables: { channel, text: 'let me in' } }));
    assert.equal(errors.length, 1);
    assert.equal(errors[0].extensions.code, 'FORBIDDEN');
    assert.match(errors[0].message, /banned/);
    assert.deepEqual(errors[0].path, ['sendMessage']);
    errors = await rejection(bob.client.mutate({
      mutation: gql`mutation($id: ID!) { pinMessage(id: $id) { id } }`, variables: { id: reply.id },
    }));
    assert.equal(errors[0].extensions.code, 'FORBIDDEN');
    const after = (await alice.client.query({ query: LOBBY, variables, fetchPolicy: 'network-only' })).data.channel;
    assert.deepEqual(after.messages.edges.map((e) => e.node.id), history.messages.edges.map((e) => e.node.id), 'the refused send wrote nothing');
    // A banned user still reads the channel; the ban only stops it writing.
    assert.equal((await bob.client.query({ query: LOBBY, variables, fetchPolicy: 'network-only' })).data.channel.memberCount, 2);

    // Unban, and bob writes again; then he leaves, and the channel is
    // closed to him.
    assert.equal((await alice.client.mutate({ mutation: gql`mutation($id: ID!) { unbanUser(user: "apollo-mod-bob", channel: $id) }`, variables })).data.unbanUser, true);
    await eventually('user.unbanned', () => events.some((e) => e.type === 'user.unbanned'));
    const back = (await bob.client.mutate({ mutation: SEND_QUOTE, variables: { channel, text: 'Back again' } })).data.sendMessage;
    assert.equal(back.text, 'Back again');
    sub.unsubscribe();
    const left = await bob.client.mutate({ mutation: gql`mutation($id: ID!) { leaveChannel(channel: $id) }`, variables });
    assert.equal(left.data.leaveChannel, true);
    errors = await rejection(bob.client.query({ query: LOBBY, variables, fetchPolicy: 'network-only' }));
    assert.equal(errors[0].extensions.code, 'FORBIDDEN');
    assert.equal((await alice.client.query({ query: LOBBY, variables, fetchPolicy: 'network-only' })).data.channel.memberCount, 1);
  } finally {
    await alice.close();
    await bob.close();
  }
});
