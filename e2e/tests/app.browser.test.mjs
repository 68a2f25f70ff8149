// The demo app in a real browser, as two people at once: alice and bob,
// each in a browser context of their own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBrook, repo, metric, eventually, gql, token } from '../lib/brook.mjs';
import { launch, openApp, shot } from '../lib/browser.mjs';

let server, browser;
before(async () => {
  server = await startBrook({ env: { BROOK_WEB_DIR: join(repo, 'web', 'dist') } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.remove();
});

// playing waits until page shows a remote video that is really playing:
// it has frames (videoWidth > 0) and its time moves on.
async function playing(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector('[data-testid=remote-video]');
    return v && v.videoWidth > 0 && v.currentTime > 0;
  }, null, { timeout: 10_000 });
  const t0 = await page.evaluate(() => document.querySelector('[data-testid=remote-video]').currentTime);
  await page.waitForFunction((t) => document.querySelector('[data-testid=remote-video]').currentTime > t + 0.2, t0, { timeout: 10_000 });
}

test('a video call: each side sees the other\'s camera, signaled through Brook', async () => {
  const alice = await openApp(browser, server, 'call-alice');
  const bob = await openApp(browser, server, 'call-bob');
  for (const [page, other] of [[alice, 'call-bob'], [bob, 'call-alice']]) {
    await page.getByRole('link', { name: 'Call' }).click();
    await page.getByLabel('call user').fill(other);
    await page.getByRole('button', { name: 'Start video call' }).click();
    await page.getByRole('button', { name: 'Leave' }).waitFor();
  }
  const started = Date.now();
  await Promise.all([playing(alice), playing(bob)]);
  const seconds = (Date.now() - started) / 1000;
  assert.ok(seconds < 10, `remote video playing on both sides after ${seconds}s`);
  await shot(alice, 'call-alice');
  await shot(bob, 'call-bob');
});

// subscribed waits until the server holds n more bus subscribers than at
// base: the pages' subscriptions are live, so no event can slip past them.
async function subscribed(base, n) {
  await eventually(`${n} subscriptions live`, async () => (await metric(server, 'brook_bus_subscribers')) >= base + n, 30_000);
}

// unsubscribed waits until the server has dropped the subscriptions of
// closed pages, so the next test starts from a settled count.
async function unsubscribed(base) {
  await eventually('closed pages unsubscribed', async () => (await metric(server, 'brook_bus_subscribers')) <= base, 30_000);
}

test('timeline: bob posts, and alice, who follows bob, sees it without reloading', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const alice = await openApp(browser, server, 'alice', 'timeline');
  const bob = await openApp(browser, server, 'bob', 'timeline');
  try {
    // Both timelines have loaded (so both users exist) and each page holds
    // two subscriptions: myEvents and feedUpdated.
    await alice.getByText('Nothing yet').waitFor();
    await bob.getByText('Nothing yet').waitFor();
    await subscribed(base, 4);

    await alice.getByLabel('follow user').fill('bob');
    await alice.getByRole('button', { name: 'Follow', exact: true }).click();
    await alice.locator('.people li', { hasText: 'bob' }).waitFor();
    await shot(alice, 'timeline-1-alice-follows-bob');

    await bob.getByLabel('post text').fill('Shipping Brook\'s demo app today!');
    await bob.getByRole('button', { name: 'Post' }).click();
    await bob.getByTestId('activity').filter({ hasText: 'Shipping Brook' }).waitFor();
    await shot(bob, 'timeline-2-bob-posts');

    // No reload: feedUpdated brings it.
    const post = alice.getByTestId('activity').filter({ hasText: 'Shipping Brook' });
    await post.waitFor({ timeout: 30_000 });
    assert.equal(await alice.evaluate(() => performance.getEntriesByType('navigation').length), 1);
    await shot(alice, 'timeline-3-alice-sees-it-live');

    // Like and unlike: the mutation results update the cached activity.
    const like = post.getByRole('button', { name: 'like' });
    await like.click();
    await post.locator('button.like.on', { hasText: '♥ 1' }).waitFor();
    await shot(alice, 'timeline-4-alice-likes-it');
    if (process.env.UPDATE_DOCS_SCREENSHOTS) {
      await bob.getByLabel('post text').fill('Timelines, chat and calls on one GraphQL API.');
      await bob.getByRole('button', { name: 'Post' }).click();
      await alice.getByTestId('activity').filter({ hasText: 'one GraphQL API' }).waitFor({ timeout: 30_000 });
      await alice.getByLabel('post text').fill('Following bob now. Hi!');
      await alice.screenshot({ path: join(repo, 'docs', 'demo-timeline.png'), clip: { x: 0, y: 0, width: 1280, height: 500 } });
      await alice.getByLabel('post text').fill('');
    }
    await like.click();
    await post.locator('button.like:not(.on)', { hasText: '♥ 0' }).waitFor();

    // Paging: ten more posts arrive live; after a reload the first page
    // holds ten and "Load more" fetches the rest with the cursor.
    const activities = alice.getByTestId('activity');
    const total = (await activities.count()) + 10;
    for (let i = 1; i <= 10; i++) {
      const r = await gql(server, token('bob'), `mutation { addActivity(feed: "user:bob", input: {verb: "post", object: "note ${i}"}) { id } }`);
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    }
    await alice.getByTestId('activity').filter({ hasText: 'note 10' }).waitFor({ timeout: 30_000 });
    await eventually('all live', async () => (await activities.count()) === total, 30_000);
    await alice.reload();
    await alice.getByRole('button', { name: 'Load more' }).click();
    await eventually('older page appended', async () => (await activities.count()) === total, 30_000);
    await alice.getByRole('button', { name: 'Load more' }).waitFor({ state: 'detached' });
    assert.equal(await activities.first().locator('.text').textContent(), 'note 10');
    await activities.filter({ hasText: 'Shipping Brook' }).waitFor();
    await shot(alice, 'timeline-5-load-more');
  } finally {
    await alice.context().close();
    await bob.context().close();
    await unsubscribed(base);
  }
});

test('chat: alice writes, bob\'s unread badge goes to 1 and back to 0 when he opens the room; typing shows on the other side', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const alice = await openApp(browser, server, 'alice', 'chat');
  const bob = await openApp(browser, server, 'bob', 'chat');
  try {
    await subscribed(base, 2); // myEvents on each page

    await alice.getByLabel('chat with').fill('bob');
    await alice.getByRole('button', { name: 'Chat', exact: true }).click();
    await alice.getByLabel('message').waitFor();
    await subscribed(base, 4); // alice's room: messageAdded, channelEvents
    await alice.getByLabel('message').fill('Hi Bob! Did you see the demo?');
    await alice.getByRole('button', { name: 'Send' }).click();
    await alice.getByTestId('message').filter({ hasText: 'Hi Bob!' }).waitFor();
    await shot(alice, 'chat-1-alice-sends');

    // bob did not reload: myEvents told his page.
    const channel = bob.getByTestId('channel').filter({ hasText: 'alice & bob' });
    await channel.getByTestId('unread').filter({ hasText: /^1$/ }).waitFor({ timeout: 30_000 });
    await bob.getByTestId('unread-total').filter({ hasText: /^1$/ }).waitFor();
    await shot(bob, 'chat-2-bob-unread-1');

    await channel.click();
    await bob.getByTestId('message').filter({ hasText: 'Hi Bob!' }).waitFor();
    await channel.getByTestId('unread').waitFor({ state: 'detached', timeout: 30_000 });
    await bob.getByTestId('unread-total').waitFor({ state: 'detached', timeout: 30_000 });
    await shot(bob, 'chat-3-bob-reads-badge-0');

    // Typing, both ways, once both rooms are subscribed.
    await subscribed(base, 6);
    await alice.getByLabel('message').fill('Yes, it');
    await bob.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor({ timeout: 30_000 });
    await shot(bob, 'chat-4-bob-sees-alice-typing');
    await alice.getByLabel('message').fill('');
    await bob.getByTestId('typing').filter({ hasText: /^$/ }).waitFor({ timeout: 30_000 });

    await bob.getByLabel('message').fill('Looks great');
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor({ timeout: 30_000 });
    await bob.getByRole('button', { name: 'Send' }).click();
    await alice.getByTestId('message').filter({ hasText: 'Looks great' }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('typing').filter({ hasText: /^$/ }).waitFor();
    await shot(alice, 'chat-5-alice-gets-the-reply');
  } finally {
    await alice.context().close();
    await bob.context().close();
    await unsubscribed(base);
  }
});

// said finds the message of a room whose own text (not a quote of it) has text.
function said(page, text) {
  return page.getByTestId('message').filter({ has: page.locator('.text', { hasText: text }) });
}

// roomTexts reads a channel's history from the server, as its owner.
async function roomTexts(channel, owner) {
  const r = await gql(server, token(owner), 'query($id: ID!) { channel(id: $id) { messages(last: 50) { edges { node { text type } } } } }', { id: channel });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.channel.messages.edges.map((e) => e.node).filter((m) => m.type === 'regular').map((m) => m.text);
}

test('a room: carol joins alice\'s open room, quotes her, alice pins it and bans carol, whose send is FORBIDDEN', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const alice = await openApp(browser, server, 'alice', 'chat');
  const carol = await openApp(browser, server, 'carol', 'chat');
  try {
    await subscribed(base, 2); // myEvents on each page

    // alice opens a room that does not exist yet and creates it, open to all.
    await alice.getByLabel('room').fill('lobby');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('button', { name: 'Create it as an open room' }).click();
    await alice.getByTestId('room-info').filter({ hasText: '1 member · open · you are an owner' }).waitFor();
    await subscribed(base, 4); // alice's room: messageAdded, channelEvents
    await alice.getByLabel('message').fill('Welcome to the lobby!');
    await alice.getByRole('button', { name: 'Send' }).click();
    await said(alice, 'Welcome to the lobby!').waitFor();
    await shot(alice, 'room-1-alice-opens-lobby');

    // carol is no member of the messaging room: she may join it, as it is open.
    await carol.getByLabel('room').fill('lobby');
    await carol.getByRole('button', { name: 'Open', exact: true }).click();
    await carol.getByTestId('not-member').waitFor();
    await shot(carol, 'room-2-carol-not-member');
    await carol.getByRole('button', { name: 'Join' }).click();
    await said(carol, 'Welcome to the lobby!').waitFor({ timeout: 30_000 });
    await carol.getByLabel('message').waitFor();
    await carol.getByTestId('channel').filter({ hasText: 'lobby' }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('system-message').filter({ hasText: /joined/ }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('room-info').filter({ hasText: '2 members' }).waitFor({ timeout: 30_000 });
    await shot(carol, 'room-3-carol-joins');
    await subscribed(base, 6); // carol's room too

    // carol quotes alice: the quote shows in her composer, then above her message, on both sides.
    await said(carol, 'Welcome to the lobby!').getByRole('button', { name: 'quote' }).click();
    await carol.getByTestId('composer-quote').filter({ hasText: 'Welcome to the lobby!' }).waitFor();
    await carol.getByLabel('message').fill('Thanks, glad to be here');
    await shot(carol, 'room-4-carol-quotes');
    await carol.getByRole('button', { name: 'Send' }).click();
    await said(carol, 'Thanks, glad to be here').getByTestId('quote').filter({ hasText: 'Welcome to the lobby!' }).waitFor();
    await carol.getByTestId('composer-quote').waitFor({ state: 'detached' });
    await said(alice, 'Thanks, glad to be here').getByTestId('quote').filter({ hasText: 'Welcome to the lobby!' }).waitFor({ timeout: 30_000 });
    await shot(alice, 'room-5-alice-sees-the-quote');

    // alice pins her welcome: the pinned list shows it, on carol's page too.
    await said(alice, 'Welcome to the lobby!').getByRole('button', { name: 'pin', exact: true }).click();
    await alice.getByTestId('pin').filter({ hasText: 'Welcome to the lobby!' }).waitFor();
    await said(alice, 'Welcome to the lobby!').getByTestId('pinned-mark').waitFor();
    await carol.getByTestId('pin').filter({ hasText: 'Welcome to the lobby!' }).waitFor({ timeout: 30_000 });
    await said(carol, 'Welcome to the lobby!').getByTestId('pinned-mark').waitFor({ timeout: 30_000 });
    const pins = await gql(server, token('carol'), '{ channel(id: "messaging:lobby") { pinnedMessages { edges { node { text pinnedBy { id } } } } } }');
    assert.deepEqual(pins.data.channel.pinnedMessages.edges.map((e) => [e.node.text, e.node.pinnedBy.id]), [['Welcome to the lobby!', 'alice']]);
    await shot(carol, 'room-6-pinned');

    // alice, the owner, bans carol: both pages show it, and carol's send is
    // refused with FORBIDDEN, keeping her text and writing nothing.
    await said(alice, 'Thanks, glad to be here').getByRole('button', { name: 'ban' }).click();
    await said(alice, 'Thanks, glad to be here').getByTestId('banned').waitFor();
    await carol.getByTestId('banned-me').waitFor({ timeout: 30_000 });
    await shot(alice, 'room-7-alice-bans-carol');
    await carol.getByLabel('message').fill('Why was I banned?');
    await carol.getByRole('button', { name: 'Send' }).click();
    const refused = carol.getByTestId('send-error');
    await refused.waitFor();
    assert.match(await refused.textContent(), /^Not sent: you are banned from channel "messaging:lobby" \(FORBIDDEN\)$/);
    assert.equal(await carol.getByLabel('message').inputValue(), 'Why was I banned?');
    assert.deepEqual(await roomTexts('messaging:lobby', 'alice'), ['Welcome to the lobby!', 'Thanks, glad to be here']);
    await shot(carol, 'room-8-carol-send-forbidden');

    // Unbanned, her kept text goes through.
    await said(alice, 'Thanks, glad to be here').getByRole('button', { name: 'unban' }).click();
    await said(alice, 'Thanks, glad to be here').getByTestId('banned').waitFor({ state: 'detached' });
    await carol.getByTestId('banned-me').waitFor({ state: 'detached', timeout: 30_000 });
    await carol.getByRole('button', { name: 'Send' }).click();
    await said(alice, 'Why was I banned?').waitFor({ timeout: 30_000 });
    await carol.getByTestId('send-error').waitFor({ state: 'detached' });

    // carol leaves: the messaging room closes to her, offering to join again.
    await carol.getByRole('button', { name: 'Leave' }).click();
    await carol.getByTestId('not-member').waitFor({ timeout: 30_000 });
    await carol.getByRole('button', { name: 'Join' }).waitFor();
    await carol.getByTestId('channel').filter({ hasText: 'lobby' }).waitFor({ state: 'detached', timeout: 30_000 });
    await alice.getByTestId('room-info').filter({ hasText: '1 member' }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('system-message').filter({ hasText: /left/ }).waitFor({ timeout: 30_000 });
    await shot(alice, 'room-9-carol-left');
  } finally {
    await alice.context().close();
    await carol.context().close();
    await unsubscribed(base);
  }
});
