// Drives Debian's Chromium with playwright-core for the browser tests, and
// saves a screenshot of every step under e2e/artifacts/.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from './brook.mjs';

export const artifacts = join(repo, 'e2e', 'artifacts');

// The flags keep Chromium off the network (this machine has none) and let
// it use a fake camera and microphone without asking.
const flags = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  // Offer plain host addresses rather than mDNS names, which nothing on an
  // offline machine resolves: the two browsers must find each other.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']) {
    if (p && existsSync(p)) return p;
  }
  throw new Error('Chromium not found: install Debian\'s chromium package (make test-e2e does when root) or set CHROMIUM_PATH');
}

export async function launch() {
  mkdirSync(artifacts, { recursive: true });
  return chromium.launch({ executablePath: chromiumPath(), args: flags, headless: true });
}

// shot saves a screenshot of page as artifacts/<name>.png.
export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

// openApp opens the demo app in a new browser context as user, at a page
// of the app (the path under /app/).
export async function openApp(browser, server, user, path = '') {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${user}] page error:`, e.stack ?? e.message));
  await page.goto(`${server.url}/app/${path}`);
  await page.getByLabel('user id').fill(user);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('header .me').waitFor();
  return page;
}
