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

// ringCall opens alice's call page and rings bob from it ("Call <bob>").
async function ringFrom(alice, bob) {
  await alice.getByRole('link', { name: 'Call' }).click();
  await alice.getByLabel('call user').fill(bob);
  await alice.getByRole('button', { name: `Call ${bob}` }).click();
  await alice.getByText(`Ringing ${bob}…`).waitFor();
}

// incoming is the incoming-call banner of page, from caller.
const incoming = (page, caller) => page.getByRole('alertdialog', { name: 'Incoming call' }).filter({ hasText: caller });

test('ringing: alice calls bob from the call page, bob\'s timeline rings, he accepts and both see each other\'s camera', async () => {
  const alice = await openApp(browser, server, 'ring-alice', 'call');
  const bob = await openApp(browser, server, 'ring-bob', 'timeline');
  try {
    await ringFrom(alice, 'ring-bob');
    await alice.getByRole('button', { name: 'Cancel' }).waitFor();
    const ring = incoming(bob, 'ring-alice');
    await ring.getByText('Ringing…').waitFor();
    await shot(alice, 'ring-1-alice-rings');
    await shot(bob, 'ring-2-bob-rings');

    await ring.getByRole('button', { name: 'Accept' }).click();
    await ring.waitFor({ state: 'detached' });
    await bob.waitForURL(/\/app\/call\/default:/);
    await alice.getByText('ring-bob accepted').waitFor();
    await bob.getByRole('button', { name: 'Leave' }).waitFor();
    await Promise.all([playing(alice), playing(bob)]);
    await shot(alice, 'ring-3-alice-in-call');
    await shot(bob, 'ring-4-bob-in-call');
  } finally {
    await alice.context().close();
    await bob.context().close();
  }
});

test('ringing two devices: both of bob\'s pages ring, accepting on one stops the other; a declined call shows "Declined", a cancelled one stops ringing', async () => {
  const alice = await openApp(browser, server, 'dev-alice', 'call');
  const phone = await openApp(browser, server, 'dev-bob', 'timeline');
  const laptop = await openApp(browser, server, 'dev-bob', 'chat');
  try {
    await ringFrom(alice, 'dev-bob');
    await incoming(phone, 'dev-alice').waitFor();
    await incoming(laptop, 'dev-alice').waitFor();
    await shot(laptop, 'ring-devices-1-both-ring');

    await incoming(laptop, 'dev-alice').getByRole('button', { name: 'Accept' }).click();
    // call.accepted reaches the phone: it stops ringing, and stays where it was.
    await incoming(phone, 'dev-alice').waitFor({ state: 'detached' });
    assert.match(phone.url(), /\/app\/timeline$/);
    await Promise.all([playing(alice), playing(laptop)]);
    await shot(phone, 'ring-devices-2-phone-stopped');
    await shot(laptop, 'ring-devices-3-laptop-in-call');

    // Both hang up; then alice calls again and bob declines on his phone.
    await laptop.getByRole('button', { name: 'Leave' }).click();
    await alice.getByRole('button', { name: 'Leave' }).click();
    await alice.getByRole('button', { name: 'Call dev-bob' }).click();
    await alice.getByText('Ringing dev-bob…').waitFor();
    await incoming(laptop, 'dev-alice').waitFor();
    await incoming(phone, 'dev-alice').getByRole('button', { name: 'Decline' }).click();
    await alice.getByTestId('call-status').filter({ hasText: /^Declined$/ }).waitFor();
    await incoming(laptop, 'dev-alice').waitFor({ state: 'detached' });
    assert.equal(await alice.getByRole('button', { name: 'Cancel' }).count(), 0);
    await shot(alice, 'ring-devices-4-declined');

    // A third time alice gives up before bob answers: both devices stop.
    await alice.getByRole('button', { name: 'Call dev-bob' }).click();
    await incoming(phone, 'dev-alice').waitFor();
    await incoming(laptop, 'dev-alice').waitFor();
    await alice.getByRole('button', { name: 'Cancel' }).click();
    await alice.getByTestId('call-status').filter({ hasText: /^Cancelled$/ }).waitFor();
    await incoming(phone, 'dev-alice').waitFor({ state: 'detached' });
    await incoming(laptop, 'dev-alice').waitFor({ state: 'detached' });
  } finally {
    for (const p of [alice, phone, laptop]) await p.context().close();
  }
});

test('ringing unanswered: bob does not answer, the ring is missed, alice sees "No answer" and bob\'s banner goes', async () => {
  // A server of its own, whose rings time out in 4 seconds.
  const quick = await startBrook({ env: { BROOK_WEB_DIR: join(repo, 'web', 'dist'), CALL_RING_TIMEOUT: '4s' } });
  const pages = [];
  try {
    const alice = await openApp(browser, quick, 'miss-alice', 'call');
    const bob = await openApp(browser, quick, 'miss-bob', 'chat');
    pages.push(alice, bob);
    await ringFrom(alice, 'miss-bob');
    await incoming(bob, 'miss-alice').waitFor();
    await alice.getByTestId('call-status').filter({ hasText: /^No answer$/ }).waitFor({ timeout: 30_000 });
    await incoming(bob, 'miss-alice').waitFor({ state: 'detached' });
    await alice.getByRole('button', { name: 'Call miss-bob' }).waitFor();
    await shot(alice, 'ring-missed');
  } finally {
    for (const p of pages) await p.context().close();
    await quick.remove();
  }
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
    // three subscriptions: myCallEvents, myEvents and feedUpdated.
    await alice.getByText('Nothing yet').waitFor();
    await bob.getByText('Nothing yet').waitFor();
    await subscribed(base, 6);

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

// comments reads a post's comment tree from the server, as user: text,
// author, likes and replies, in the order asked.
async function commentTree(user, activity, sort = 'OLDEST') {
  const node = 'text user { id } replyCount reactionCounts { kind count }'; // small pages: complexity
  const r = await gql(server, token(user), `query($id: ID!) { activity(id: $id) { commentCount
    comments(first: 10, sort: ${sort}) { edges { node { ${node} replies(first: 10) { edges { node { ${node} } } } } } } } }`, { id: activity });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  const flat = (n) => ({ text: n.text, by: n.user.id, likes: n.reactionCounts.find((c) => c.kind === 'like')?.count ?? 0, replies: n.replyCount });
  const a = r.data.activity;
  return {
    count: a.commentCount,
    comments: a.comments.edges.map(({ node }) => ({ ...flat(node), thread: node.replies.edges.map((e) => flat(e.node)) })),
  };
}

// commented finds the comments under scope whose own text (not a reply's)
// has text.
function commented(scope, text) {
  return scope.getByTestId('comment').filter({ has: scope.page().locator(':scope > div > .bubble > .text', { hasText: text }) });
}

// own is the row of a comment's own buttons, not its replies'.
function own(comment) {
  return comment.locator(':scope > div > .comment-actions');
}

test('comments: bob comments on alice\'s post and alice sees it live; she replies, bob sees the reply nested and likes it; edit, order and delete', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const alice = await openApp(browser, server, 'alice', 'timeline');
  const bob = await openApp(browser, server, 'bob', 'timeline');
  try {
    await subscribed(base, 6); // myCallEvents, myEvents and feedUpdated on each page
    await bob.getByLabel('follow user').fill('alice');
    await bob.getByRole('button', { name: 'Follow', exact: true }).click();
    await bob.locator('.people li', { hasText: 'alice' }).waitFor();

    await alice.getByLabel('post text').fill('Comments are in the demo app now');
    await alice.getByRole('button', { name: 'Post' }).click();
    const mine = alice.getByTestId('activity').filter({ hasText: 'Comments are in the demo app' });
    const theirs = bob.getByTestId('activity').filter({ hasText: 'Comments are in the demo app' });
    await mine.waitFor();
    await theirs.waitFor({ timeout: 30_000 });
    const { data } = await gql(server, token('alice'), '{ feed(id: "user:alice") { activities(first: 1) { edges { node { id object } } } } }');
    const post = data.feed.activities.edges[0].node;
    assert.equal(post.object, 'Comments are in the demo app now');

    // Both open the comments: one commentAdded subscription each.
    for (const p of [mine, theirs]) {
      await p.getByTestId('comment-count').filter({ hasText: '0 comments' }).click();
      await p.getByText('No comments yet.').waitFor();
    }
    assert.equal(await mine.getByTestId('comment-count').getAttribute('aria-expanded'), 'true');
    await subscribed(base, 8);

    // bob comments: alice sees it without reloading, and the post's count with it.
    await theirs.getByLabel('comment text').fill('Congrats, Alice!');
    await theirs.getByRole('button', { name: 'Comment', exact: true }).click();
    const bobsOnBob = commented(theirs, 'Congrats, Alice!');
    await bobsOnBob.waitFor();
    assert.equal(await theirs.getByLabel('comment text').inputValue(), '');
    const bobsOnAlice = commented(mine, 'Congrats, Alice!');
    await bobsOnAlice.waitFor({ timeout: 30_000 });
    await mine.getByTestId('comment-count').filter({ hasText: '1 comment' }).waitFor();
    assert.equal(await alice.evaluate(() => performance.getEntriesByType('navigation').length), 1);
    await shot(alice, 'comments-1-alice-sees-bobs-comment-live');

    // alice replies; bob sees the reply under his comment, live.
    await bobsOnAlice.getByRole('button', { name: 'Reply', exact: true }).click();
    await bobsOnAlice.getByLabel('reply text').fill('Thanks, Bob! Try replying.');
    await bobsOnAlice.getByRole('button', { name: 'Post reply' }).click();
    await bobsOnAlice.getByLabel('reply text').waitFor({ state: 'detached' });
    const reply = commented(bobsOnBob.getByRole('list', { name: 'replies to bob' }), 'Thanks, Bob!');
    await reply.waitFor({ timeout: 30_000 });
    await theirs.getByTestId('comment-count').filter({ hasText: '2 comments' }).waitFor();
    // bob's own comment came back to him as an event too (before alice's
    // reply, on the same subscription), and shows once.
    assert.equal(await commented(theirs, 'Congrats, Alice!').count(), 1);
    assert.equal(await commented(mine, 'Thanks, Bob!').count(), 1);

    // bob likes alice's reply: the count shows 1, and the server has it.
    const likeReply = reply.getByRole('button', { name: 'like comment' });
    await likeReply.click();
    await likeReply.filter({ hasText: '♥ 1' }).waitFor();
    assert.equal(await likeReply.getAttribute('aria-pressed'), 'true');
    await shot(bob, 'comments-2-bob-sees-the-reply-and-likes-it');
    assert.deepEqual(await commentTree('bob', post.id), {
      count: 2,
      comments: [{ text: 'Congrats, Alice!', by: 'bob', likes: 0, replies: 1, thread: [{ text: 'Thanks, Bob! Try replying.', by: 'alice', likes: 1, replies: 0 }] }],
    });
    // A reply to the reply nests one level deeper.
    await reply.getByRole('button', { name: 'Reply', exact: true }).click();
    await reply.getByLabel('reply text').fill('Three levels deep');
    await reply.getByRole('button', { name: 'Post reply' }).click();
    const deep = commented(mine.getByRole('list', { name: 'replies to alice' }), 'Three levels deep');
    await deep.waitFor({ timeout: 30_000 });
    await mine.getByTestId('comment-count').filter({ hasText: '3 comments' }).waitFor();
    // That is as deep as threads go (FEED_COMMENT_DEPTH, 3): no Reply there.
    assert.equal(await own(deep).getByRole('button', { name: 'Reply', exact: true }).count(), 0);
    assert.equal(await own(reply).getByRole('button', { name: 'Reply', exact: true }).count(), 1);
    if (process.env.UPDATE_DOCS_SCREENSHOTS) {
      // The guide's picture (docs/clients.md): bob's page, the thread open.
      await theirs.getByLabel('comment text').fill('Replies nest three deep');
      await bob.screenshot({ path: join(repo, 'docs', 'demo-timeline.png'), clip: { x: 0, y: 0, width: 1280, height: 660 } });
      await theirs.getByLabel('comment text').fill('');
    }

    // bob edits his comment (only his own: alice has no Edit on it).
    assert.equal(await own(bobsOnAlice).getByRole('button', { name: 'Edit', exact: true }).count(), 0);
    await own(bobsOnBob).getByRole('button', { name: 'Edit', exact: true }).click();
    await theirs.getByLabel('edit comment').fill('Congrats on shipping, Alice!'); // the text is now a field
    await theirs.getByRole('button', { name: 'Save' }).click();
    const edited = commented(theirs, 'Congrats on shipping, Alice!');
    await edited.filter({ hasText: 'edited' }).first().waitFor();

    // A second comment: newest first by default, oldest first or by
    // reactions and replies on request.
    await theirs.getByLabel('comment text').fill('Second thought');
    await theirs.getByRole('button', { name: 'Comment', exact: true }).click();
    const second = commented(mine, 'Second thought');
    await second.waitFor({ timeout: 30_000 });
    const firstText = async (page) => page.locator('.comments > .thread > [data-testid=comment] > div > .bubble .text').first().textContent();
    assert.equal(await firstText(mine), 'Second thought');
    await mine.getByLabel('sort comments').selectOption('OLDEST');
    await eventually('oldest first', async () => (await firstText(mine)) === 'Congrats on shipping, Alice!');
    await mine.getByLabel('sort comments').selectOption('TOP');
    await eventually('top first', async () => (await firstText(mine)) === 'Congrats on shipping, Alice!');
    await shot(alice, 'comments-3-alice-sorts-them');

    // alice, whose post it is, deletes bob's second comment (moderation),
    // after a confirmation; the count follows.
    await second.getByRole('button', { name: 'Delete', exact: true }).click();
    await second.getByRole('button', { name: 'Delete comment' }).click();
    await second.waitFor({ state: 'detached' });
    await mine.getByTestId('comment-count').filter({ hasText: '3 comments' }).waitFor();
    const tree = await commentTree('alice', post.id);
    assert.equal(tree.count, 3);
    assert.deepEqual(tree.comments.map((c) => c.text), ['Congrats on shipping, Alice!']);
    await shot(alice, 'comments-4-after-delete');
  } finally {
    await alice.context().close();
    await bob.context().close();
    await unsubscribed(base);
  }
});

test('more replies: a comment with more replies than the thread reads opens the rest, five at a time', async () => {
  const must = async (query) => {
    const r = await gql(server, token('dave'), query);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    return r.data;
  };
  // The thread is written before the page opens, and is in dave's
  // timeline by then (its fan-out is the workers'), so the page's first
  // read has it.
  await must('{ me { id } }');
  // What the page does on opening: dave's timeline follows his own feed.
  await must('mutation { follow(source: "timeline:dave", target: "user:dave") { createdAt } }');
  const { addActivity: post } = await must('mutation { addActivity(feed: "user:dave", input: {verb: "post", object: "A long thread"}) { id } }');
  const { addComment: top } = await must(`mutation { addComment(activity: "${post.id}", text: "Tell me your favourite number") { id } }`);
  for (let i = 1; i <= 9; i++) {
    await must(`mutation { addComment(activity: "${post.id}", parentId: "${top.id}", text: "number ${i}") { id } }`);
  }
  await eventually('the post in dave\'s timeline', async () => {
    const d = await must('{ feed(id: "timeline:dave") { activities(first: 5) { edges { node { id } } } } }');
    return d.feed.activities.edges.some((e) => e.node.id === post.id);
  });
  const dave = await openApp(browser, server, 'dave', 'timeline');
  try {
    const card = dave.getByTestId('activity').filter({ hasText: 'A long thread' });
    await card.waitFor({ timeout: 30_000 });
    await card.getByTestId('comment-count').filter({ hasText: '10 comments' }).click();
    const thread = commented(card, 'Tell me your favourite number');
    const replies = thread.getByRole('list', { name: 'replies to dave' });
    await commented(replies, 'number 3').waitFor();
    assert.equal(await replies.getByTestId('comment').count(), 3);
    // The thread query read the first 3 (oldest first); the rest come from
    // comment(id), a page of 5, then the last 1.
    await thread.getByRole('button', { name: '6 more replies' }).click();
    await commented(replies, 'number 8').waitFor();
    assert.equal(await replies.getByTestId('comment').count(), 8);
    await thread.getByRole('button', { name: '1 more reply' }).click();
    await commented(replies, 'number 9').waitFor();
    const texts = await replies.locator(':scope > [data-testid=comment] > div > .bubble .text').allTextContents();
    assert.deepEqual(texts, Array.from({ length: 9 }, (_, i) => `number ${i + 1}`));
    assert.equal(await thread.getByRole('button', { name: /more repl/ }).count(), 0);
    await shot(dave, 'comments-5-more-replies');
  } finally {
    await dave.context().close();
  }
});

test('live counts: alice likes and comments on bob\'s post, and bob\'s open page shows the new counts without reloading', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const follows = await gql(server, token('alice'), 'mutation { follow(source: "timeline:alice", target: "user:bob") { createdAt } }');
  assert.equal(follows.errors, undefined, JSON.stringify(follows.errors));
  const alice = await openApp(browser, server, 'alice', 'timeline');
  const bob = await openApp(browser, server, 'bob', 'timeline');
  try {
    await alice.getByTestId('activity').first().waitFor();
    await subscribed(base, 6); // myCallEvents, myEvents and feedUpdated on each page

    await bob.getByLabel('post text').fill('Like this, live');
    await bob.getByRole('button', { name: 'Post' }).click();
    const onBob = bob.getByTestId('activity').filter({ hasText: 'Like this, live' });
    const onAlice = alice.getByTestId('activity').filter({ hasText: 'Like this, live' });
    await onBob.waitFor();
    await onAlice.waitFor({ timeout: 30_000 });

    // alice likes it on her page: bob's page, which did nothing, shows 1.
    const like = (post) => post.getByRole('button', { name: 'like', exact: true }); // the post's, not a comment's
    await like(onAlice).click();
    await like(onAlice).and(alice.locator('[aria-pressed=true]')).filter({ hasText: '♥ 1' }).waitFor();
    await like(onBob).filter({ hasText: '♥ 1' }).waitFor({ timeout: 30_000 });
    assert.equal(await like(onBob).getAttribute('aria-pressed'), 'false'); // bob did not like it
    await shot(bob, 'live-1-bob-sees-alices-like');

    // Her comment counts on his page too, with its comments closed.
    await onAlice.getByTestId('comment-count').click();
    await onAlice.getByLabel('comment text').fill('Liked and commented');
    await onAlice.getByRole('button', { name: 'Comment', exact: true }).click();
    await onBob.getByTestId('comment-count').filter({ hasText: '1 comment' }).waitFor({ timeout: 30_000 });
    assert.equal(await onBob.getByTestId('comment-count').getAttribute('aria-expanded'), 'false');

    // Unliked: back to 0 there. Nothing reloaded.
    await like(onAlice).click();
    await like(onAlice).and(alice.locator('[aria-pressed=false]')).filter({ hasText: '♥ 0' }).waitFor();
    await like(onBob).filter({ hasText: '♥ 0' }).waitFor({ timeout: 30_000 });
    for (const page of [alice, bob]) {
      assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation').length), 1);
    }
    await shot(bob, 'live-2-the-like-undone');
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
    await subscribed(base, 4); // myCallEvents and myEvents on each page

    await alice.getByLabel('chat with').fill('bob');
    await alice.getByRole('button', { name: 'Chat', exact: true }).click();
    await alice.getByLabel('message').waitFor();
    await subscribed(base, 6); // alice's room: messageAdded, channelEvents
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
    await subscribed(base, 8);
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
    await subscribed(base, 4); // myCallEvents and myEvents on each page

    // alice opens a room that does not exist yet and creates it, open to all.
    await alice.getByLabel('room').fill('lobby');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('button', { name: 'Create it as an open room' }).click();
    await alice.getByTestId('room-info').filter({ hasText: '1 member · open · you are an owner' }).waitFor();
    await subscribed(base, 6); // alice's room: messageAdded, channelEvents
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
    await subscribed(base, 8); // carol's room too

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

// quiet reads a user's unread total and, for one of its channels, the
// channel's own count and the user's mute of it, from the server.
async function quiet(user, channel) {
  const r = await gql(server, token(user), `query($id: ID!) {
    unreadCounts { totalUnreadCount }
    channel(id: $id) { unreadCount membership { muted mutedUntil } }
  }`, { id: channel });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  const { unreadCount, membership } = r.data.channel;
  return { total: r.data.unreadCounts.totalUnreadCount, unread: unreadCount, muted: membership.muted, mutedUntil: membership.mutedUntil };
}

// menu picks an item of a message's "…" menu.
async function menu(message, item) {
  await message.getByRole('button', { name: 'more actions' }).click();
  await message.page().getByRole('menuitem', { name: item, exact: true }).click();
}

test('a quiet room: alice mutes her room, carol finds it in the room browser and writes, alice\'s total leaves it out until she unmutes; mark unread, mute and block an author, report, clear and delete', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  // alice starts with nothing unread (the chat test's last reply may be).
  await gql(server, token('alice'), 'mutation { markAllRead { totalUnreadCount } }');
  const alice = await openApp(browser, server, 'alice', 'chat');
  const carol = await openApp(browser, server, 'carol', 'chat');
  const garden = alice.getByTestId('channel').filter({ hasText: 'garden' });
  try {
    await subscribed(base, 4); // myCallEvents and myEvents on each page

    await alice.getByLabel('room').fill('garden');
    await alice.getByRole('button', { name: 'Open', exact: true }).click();
    await alice.getByRole('button', { name: 'Create it as an open room' }).click();
    await alice.getByTestId('room-info').filter({ hasText: '1 member · open · you are an owner' }).waitFor();
    await alice.getByLabel('message').fill('Welcome to the garden');
    await alice.getByRole('button', { name: 'Send' }).click();
    await said(alice, 'Welcome to the garden').waitFor();

    // Muted for an hour: the head and the list say so, and the server has it.
    await alice.getByRole('button', { name: 'Mute the room' }).click();
    await alice.getByRole('menuitem', { name: 'For 1 hour' }).click();
    await alice.getByTestId('room-info').filter({ hasText: /· muted until \d/ }).waitFor();
    const unmuteGarden = alice.getByRole('button', { name: 'unmute garden' }); // the list's bell
    await unmuteGarden.waitFor();
    let q = await quiet('alice', 'messaging:garden');
    const left = Date.parse(q.mutedUntil) - Date.now();
    assert.ok(q.muted && left > 58 * 60_000 && left <= 60 * 60_000, `muted ${q.muted}, for ${left} ms more`);
    await shot(alice, 'quiet-1-alice-mutes-for-an-hour');
    await alice.getByRole('button', { name: 'Unmute', exact: true }).click();
    await alice.getByTestId('room-info').filter({ hasText: /muted/ }).waitFor({ state: 'detached' });
    assert.equal((await quiet('alice', 'messaging:garden')).muted, false);
    // Then until she unmutes it.
    await alice.getByRole('button', { name: 'Mute the room' }).click();
    await alice.getByRole('menuitem', { name: 'Until I unmute it' }).click();
    await alice.getByTestId('room-info').filter({ hasText: /· muted$/ }).waitFor();
    q = await quiet('alice', 'messaging:garden');
    assert.deepEqual([q.muted, q.mutedUntil], [true, null]);
    await alice.locator('nav a', { hasText: 'Chat' }).click(); // the room closes
    await alice.getByText('Pick a channel').waitFor();

    // carol finds the room in the browser (channels(filter: { joined: false })) and joins.
    await carol.getByRole('button', { name: 'Browse rooms' }).click();
    await carol.getByLabel('name starts with').fill('gar');
    const row = carol.getByTestId('browse-room').filter({ hasText: 'messaging:garden' });
    await row.filter({ hasText: '1 member' }).waitFor();
    await eventually('only garden starts with gar', async () => (await carol.getByTestId('browse-room').count()) === 1);
    await shot(carol, 'quiet-2-carol-browses-rooms');
    await row.getByRole('button', { name: 'Join' }).click();
    await carol.getByTestId('room-info').filter({ hasText: '2 members' }).waitFor();
    await carol.getByTestId('channel').filter({ hasText: 'garden' }).waitFor();
    for (const text of ['The tulips are out', 'Come and see']) {
      await carol.getByLabel('message').fill(text);
      await carol.getByRole('button', { name: 'Send' }).click();
      await said(carol, text).waitFor();
    }

    // The muted room counts 2 of its own, none in alice's total: after a
    // reload, its badge is grey and the Chat tab has none.
    await eventually('garden has 2 unread for alice', async () => (await quiet('alice', 'messaging:garden')).unread === 2);
    assert.equal((await quiet('alice', 'messaging:garden')).total, 0);
    await alice.reload();
    await garden.getByTestId('unread').filter({ hasText: /^2$/ }).waitFor();
    assert.match(await garden.getByTestId('unread').getAttribute('class'), /quiet/);
    await alice.locator('nav a[data-unread="0"]').waitFor();
    assert.equal(await alice.getByTestId('unread-total').count(), 0);
    await shot(alice, 'quiet-3-muted-room-left-out-of-the-total');

    // Unmuted from the list: its 2 count in the total again.
    await unmuteGarden.click();
    await alice.getByTestId('unread-total').filter({ hasText: /^2$/ }).waitFor();
    await unmuteGarden.waitFor({ state: 'detached' });
    assert.doesNotMatch(await garden.getByTestId('unread').getAttribute('class'), /quiet/);
    q = await quiet('alice', 'messaging:garden');
    assert.deepEqual([q.muted, q.unread, q.total], [false, 2, 2]);
    await shot(alice, 'quiet-4-unmuted-counts-again');

    // alice reads the room, then marks it unread from carol's first message.
    await garden.click();
    await said(alice, 'Come and see').waitFor();
    await alice.getByTestId('unread-total').waitFor({ state: 'detached', timeout: 30_000 });
    await eventually('garden read', async () => (await quiet('alice', 'messaging:garden')).unread === 0);
    await said(alice, 'The tulips are out').getByRole('button', { name: 'more actions' }).click();
    await shot(alice, 'quiet-5-message-menu');
    await alice.getByRole('menuitem', { name: 'Mark unread from here' }).click();
    await alice.getByTestId('marked-unread').waitFor();
    assert.equal(await alice.getByTestId('message').nth(1).locator('.text').textContent(), 'The tulips are out');
    await alice.locator('[data-testid=unread-marker] + [data-testid=message]', { hasText: 'The tulips are out' }).waitFor();
    await garden.getByTestId('unread').filter({ hasText: /^2$/ }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('unread-total').filter({ hasText: /^2$/ }).waitFor({ timeout: 30_000 });
    q = await quiet('alice', 'messaging:garden');
    assert.deepEqual([q.unread, q.total], [2, 2]);
    await shot(alice, 'quiet-6-marked-unread');
    // It stays unread with the room open: a new message adds to it.
    await subscribed(base, 8); // both rooms: messageAdded, channelEvents
    await carol.getByLabel('message').fill('Bring a friend');
    await carol.getByRole('button', { name: 'Send' }).click();
    await said(alice, 'Bring a friend').waitFor({ timeout: 30_000 });
    await garden.getByTestId('unread').filter({ hasText: /^3$/ }).waitFor({ timeout: 30_000 });
    assert.equal((await quiet('alice', 'messaging:garden')).unread, 3);
    await alice.getByRole('button', { name: 'Mark read' }).click();
    await garden.getByTestId('unread').waitFor({ state: 'detached', timeout: 30_000 });
    await eventually('garden read again', async () => (await quiet('alice', 'messaging:garden')).unread === 0);

    // alice mutes carol from her message's menu, and lists her as muted.
    await menu(said(alice, 'Come and see'), 'Mute Carol');
    await said(alice, 'Come and see').getByTestId('author-muted').waitFor();
    await alice.getByTestId('muted-person').filter({ hasText: 'Carol' }).waitFor();
    const people = async () => (await gql(server, token('alice'), '{ me { mutedUsers { user { id } until } blockedUsers { id } } }')).data.me;
    assert.deepEqual(await people(), { mutedUsers: [{ user: { id: 'carol' }, until: null }], blockedUsers: [] });
    await shot(alice, 'quiet-7-alice-mutes-carol');
    await alice.getByTestId('muted-person').getByRole('button', { name: 'unmute' }).click();
    await said(alice, 'Come and see').getByTestId('author-muted').waitFor({ state: 'detached' });
    assert.deepEqual((await people()).mutedUsers, []);

    // Blocked, carol's messages leave alice's history; unblocked, they are back.
    await menu(said(alice, 'Come and see'), 'Block Carol');
    await said(alice, 'Come and see').waitFor({ state: 'detached' });
    await alice.getByTestId('blocked-person').filter({ hasText: 'Carol' }).waitFor();
    assert.deepEqual((await people()).blockedUsers, [{ id: 'carol' }]);
    assert.equal(await said(alice, 'Welcome to the garden').count(), 1);
    await shot(alice, 'quiet-8-alice-blocks-carol');
    await alice.getByTestId('blocked-person').getByRole('button', { name: 'unblock' }).click();
    await said(alice, 'Come and see').waitFor();
    assert.deepEqual((await people()).blockedUsers, []);

    // carol reports alice's welcome; alice, the owner, sees the report and dismisses it.
    await menu(said(carol, 'Welcome to the garden'), 'Report…');
    await carol.getByLabel('report reason').fill('off topic');
    await carol.getByRole('button', { name: 'Report', exact: true }).click();
    await said(carol, 'Welcome to the garden').getByTestId('reported').waitFor();
    const flags = async (status) => (await gql(server, token('alice'), `{ flags(status: ${status}) { edges { node { reason flaggedBy { id } message { text } } } } }`))
      .data.flags.edges.map((e) => [e.node.reason, e.node.flaggedBy.id, e.node.message.text]);
    assert.deepEqual(await flags('OPEN'), [['off topic', 'carol', 'Welcome to the garden']]);
    await shot(carol, 'quiet-9-carol-reports');
    await alice.reload();
    const report = alice.getByTestId('report').filter({ hasText: 'Carol reported Alice' });
    await report.filter({ hasText: 'off topic' }).waitFor();
    await shot(alice, 'quiet-10-alice-sees-the-report');
    await report.getByRole('button', { name: 'dismiss' }).click();
    await alice.getByTestId('reports').waitFor({ state: 'detached' });
    assert.deepEqual(await flags('OPEN'), []);
    assert.deepEqual(await flags('DISMISSED'), [['off topic', 'carol', 'Welcome to the garden']]);

    // Clearing the history asks first: cancelled, nothing goes; confirmed,
    // every message goes, on carol's page too.
    await subscribed(base, 8);
    await said(alice, 'Bring a friend').waitFor();
    await alice.getByRole('button', { name: 'room actions' }).click();
    await alice.getByRole('menuitem', { name: 'Clear history…' }).click();
    await alice.getByTestId('confirm').getByRole('button', { name: 'Cancel' }).click();
    await alice.getByTestId('confirm').waitFor({ state: 'detached' });
    assert.deepEqual(await roomTexts('messaging:garden', 'alice'), ['Welcome to the garden', 'The tulips are out', 'Come and see', 'Bring a friend']);
    await alice.getByRole('button', { name: 'room actions' }).click();
    await alice.getByRole('menuitem', { name: 'Clear history…' }).click();
    await shot(alice, 'quiet-11-clear-asks-first');
    await alice.getByTestId('confirm').getByRole('button', { name: 'Clear history' }).click();
    await alice.getByTestId('message').first().waitFor({ state: 'detached' });
    await carol.getByTestId('room-notice').filter({ hasText: 'Alice cleared the history.' }).waitFor({ timeout: 30_000 });
    await carol.getByTestId('message').first().waitFor({ state: 'detached' });
    assert.deepEqual(await roomTexts('messaging:garden', 'alice'), []);

    // Hidden, the room leaves alice's list for the hidden ones, until carol writes again.
    const hiddenOf = async () => (await gql(server, token('alice'), '{ channels(filter: { hidden: true }) { edges { node { id } } } }'))
      .data.channels.edges.map((e) => e.node.id);
    await alice.getByRole('button', { name: 'room actions' }).click();
    await alice.getByRole('menuitem', { name: 'Hide from my list' }).click();
    await alice.getByText('Pick a channel').waitFor();
    await garden.waitFor({ state: 'detached' });
    await alice.getByTestId('hidden-room').filter({ hasText: 'garden' }).waitFor();
    assert.deepEqual(await hiddenOf(), ['messaging:garden']);
    await shot(alice, 'quiet-12-alice-hides-the-room');
    await carol.getByLabel('message').fill('Anyone still here?');
    await carol.getByRole('button', { name: 'Send' }).click();
    await garden.getByTestId('unread').filter({ hasText: /^1$/ }).waitFor({ timeout: 30_000 });
    await alice.getByTestId('hidden-rooms').waitFor({ state: 'detached' });
    assert.deepEqual(await hiddenOf(), []);
    await garden.click();
    await said(alice, 'Anyone still here?').waitFor();

    // Deleted, after a confirmation: gone from alice's list, and carol's open room says so.
    await alice.getByRole('button', { name: 'room actions' }).click();
    await alice.getByRole('menuitem', { name: 'Delete room…' }).click();
    await alice.getByTestId('confirm').getByRole('button', { name: 'Delete room' }).click();
    await alice.getByText('Pick a channel').waitFor();
    await garden.waitFor({ state: 'detached' });
    await carol.getByTestId('room-deleted').filter({ hasText: 'Alice deleted this room' }).waitFor({ timeout: 30_000 });
    await carol.getByTestId('channel').filter({ hasText: 'garden' }).waitFor({ state: 'detached', timeout: 30_000 });
    await shot(carol, 'quiet-13-carol-sees-it-deleted');
    const gone = await gql(server, token('alice'), '{ channel(id: "messaging:garden") { id } }');
    assert.deepEqual(gone, { data: { channel: null } });
  } finally {
    await alice.context().close();
    await carol.context().close();
    await unsubscribed(base);
  }
});
