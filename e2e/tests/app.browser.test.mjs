// The demo app in a real browser, as two people at once: alice and bob,
// each in a browser context of their own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBrook, repo } from '../lib/brook.mjs';
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
