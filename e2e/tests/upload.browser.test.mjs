// The demo app sends a photo: alice attaches a PNG in Chromium (createUpload,
// one PUT straight to Brook's local-disk storage, completeUpload), sends it,
// and bob's open room shows it, first as whatever URL the message has and,
// once the thumbnail worker has made it, as the thumbnail (message.updated).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBrook, repo, metric, eventually } from '../lib/brook.mjs';
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

async function subscribed(base, n) {
  await eventually(`${n} subscriptions live`, async () => (await metric(server, 'brook_bus_subscribers')) >= base + n, 30_000);
}

// picture draws a 900x600 PNG in the page (a canvas: sky, a sun, a hill)
// and returns its bytes: a real image, made by the test.
async function picture(page) {
  const b64 = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 900;
    c.height = 600;
    const g = c.getContext('2d');
    g.fillStyle = '#7ec8f2';
    g.fillRect(0, 0, 900, 600);
    g.fillStyle = '#ffd23f';
    g.beginPath();
    g.arc(700, 150, 90, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#3f8f4a';
    g.beginPath();
    g.ellipse(350, 640, 600, 260, 0, 0, 2 * Math.PI);
    g.fill();
    return c.toDataURL('image/png').split(',')[1];
  });
  return Buffer.from(b64, 'base64');
}

// image is the <img> of the message with text, on page, and what it shows.
async function image(page, text) {
  return page.getByTestId('message').filter({ hasText: text }).locator('[data-testid=attachment-image] img')
    .evaluate((img) => ({ loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, height: img.naturalHeight, thumb: img.dataset.thumb, src: img.currentSrc }));
}

test('an image message: alice attaches a PNG and sends it; bob sees it load, then its 400-pixel thumbnail', async () => {
  const base = await metric(server, 'brook_bus_subscribers');
  const alice = await openApp(browser, server, 'pic-alice', 'chat');
  const bob = await openApp(browser, server, 'pic-bob', 'chat');
  try {
    await subscribed(base, 4); // myCallEvents and myEvents on each page
    await alice.getByLabel('chat with').fill('pic-bob');
    await alice.getByRole('button', { name: 'Chat', exact: true }).click();
    await alice.getByLabel('message').waitFor();
    await alice.getByLabel('message').fill('A photo is coming');
    await alice.getByRole('button', { name: 'Send' }).click();
    await alice.getByTestId('message').filter({ hasText: 'A photo is coming' }).waitFor();

    const channel = bob.getByTestId('channel').filter({ hasText: 'pic-alice & pic-bob' });
    await channel.click({ timeout: 30_000 });
    await bob.getByTestId('message').filter({ hasText: 'A photo is coming' }).waitFor();
    await subscribed(base, 8); // both rooms: messageAdded and channelEvents

    const png = await picture(alice);
    await alice.getByTestId('attach-input').setInputFiles({ name: 'hill.png', mimeType: 'image/png', buffer: png });
    await alice.locator('[data-testid=attaching][data-stage=ready]').waitFor({ timeout: 30_000 });
    await alice.getByLabel('message').fill('The view from the hill');
    await alice.getByRole('button', { name: 'Send' }).click();
    await alice.getByTestId('message').filter({ hasText: 'The view from the hill' }).locator('[data-testid=attachment-image] img').waitFor();
    await shot(alice, 'upload-1-alice-sends-a-photo');

    // bob's page got the message live; its image loads (whichever URL
    // it has at first), and then the thumbnail replaces it.
    await bob.getByTestId('message').filter({ hasText: 'The view from the hill' }).locator('[data-testid=attachment-image] img').waitFor({ timeout: 30_000 });
    const first = await eventually('bob\'s image loads', async () => {
      const s = await image(bob, 'The view from the hill');
      return s.loaded && s;
    }, 30_000);
    assert.ok(first.width === 900 || first.width === 400, `image is ${first.width}x${first.height}`);
    const thumb = await eventually('bob sees the thumbnail', async () => {
      const s = await image(bob, 'The view from the hill');
      return s.loaded && s.thumb === 'yes' && s;
    }, 30_000);
    assert.ok(thumb.width === 400 && Math.abs(thumb.height - 267) <= 1, `thumbnail is ${thumb.width}x${thumb.height}`);
    assert.match(thumb.src, /thumb/);
    await shot(bob, 'upload-2-bob-sees-the-thumbnail');

    // A click opens the full image, under its own signed URL.
    const href = await bob.getByTestId('message').filter({ hasText: 'The view from the hill' })
      .getByTestId('attachment-image').getAttribute('href');
    const full = await fetch(href);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await full.arrayBuffer()), png);

    // A reload reads the thumbnail with the message.
    await bob.reload();
    await eventually('bob\'s reloaded room shows the thumbnail', async () => {
      const s = await image(bob, 'The view from the hill').catch(() => null);
      return s?.loaded && s.thumb === 'yes' && s.width === 400;
    }, 30_000);
  } finally {
    await alice.context().close();
    await bob.context().close();
  }
});
