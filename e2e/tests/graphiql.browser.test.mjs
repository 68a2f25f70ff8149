// GraphiQL, served by Brook at /, in a real browser: the schema loads into
// Docs at once, paste a token, run a query, run a subscription and watch an
// event arrive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startBrook, token, gql, repo } from '../lib/brook.mjs';
import { launch, shot } from '../lib/browser.mjs';

let server, browser;
before(async () => {
  server = await startBrook({ env: { BROOK_WEB_DIR: join(repo, 'web', 'dist') } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.remove();
});

// editor returns the CodeMirror instance inside the element matching css.
async function setEditor(page, css, text) {
  await page.locator(`${css} .CodeMirror:visible`).first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
}

async function resultText(page) {
  return page.evaluate(() => document.querySelector('.result-window .CodeMirror')?.CodeMirror?.getValue() ?? '');
}

// openDocs opens the documentation explorer and waits for it to settle on
// the schema's root types or an error, and returns its text.
async function openDocs(page) {
  await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
  await page.locator('.graphiql-doc-explorer .graphiql-doc-explorer-root-type, .graphiql-doc-explorer-error').first().waitFor();
  return page.locator('.graphiql-doc-explorer').innerText();
}

test('GraphiQL shows the schema in Docs with no error after load', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}/`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  const docs = await openDocs(page);
  await shot(page, 'graphiql-0-docs');
  assert.doesNotMatch(docs, /Error fetching schema/);
  assert.match(docs, /query\s*:\s*Query/);
  assert.match(docs, /mutation\s*:\s*Mutation/);
  assert.doesNotMatch(await resultText(page), /UNAUTHENTICATED/);
});

test('GraphiQL in dev mode starts with a token for alice', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}/`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  await page.locator('.graphiql-execute-button').click(); // the default query: { me { id name online } }
  await page.waitForFunction(() => /"me"|"errors"/.test(document.querySelector('.result-window .CodeMirror')?.CodeMirror?.getValue() ?? ''));
  assert.match(await resultText(page), /"id": "alice"/);
  await shot(page, 'graphiql-0-dev-token');
});

// Outside dev mode the schema needs a token: pasting one fetches it again,
// with no click on GraphiQL's re-fetch button.
test('GraphiQL fetches the schema again when the Headers tab changes', async () => {
  const prod = await startBrook({ env: { BROOK_WEB_DIR: join(repo, 'web', 'dist'), BROOK_DEV: 'false' } });
  try {
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(`${prod.url}/`);
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
    assert.match(await openDocs(page), /Error fetching schema/, 'no token, no dev mode: no schema yet');
    if (!(await page.locator('.graphiql-editor-tool .CodeMirror:visible').count())) {
      await page.getByRole('button', { name: 'Headers' }).click();
    }
    await setEditor(page, '.graphiql-editor-tool', JSON.stringify({ Authorization: `Bearer ${token('gq-bob')}` }));
    await page.locator('.graphiql-doc-explorer .graphiql-doc-explorer-root-type').first().waitFor({ timeout: 10_000 });
    const docs = await page.locator('.graphiql-doc-explorer').innerText();
    await shot(page, 'graphiql-0-refetched');
    assert.doesNotMatch(docs, /Error fetching schema/);
    assert.match(docs, /query\s*:\s*Query/);
    assert.deepEqual(errors, [], 'no page errors (a missing /dev/token is silent)');
  } finally {
    await prod.remove();
  }
});

test('GraphiQL runs me with a pasted token and a live subscription', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}/`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
  await shot(page, 'graphiql-1-loaded');

  if (!(await page.locator('.graphiql-editor-tool .CodeMirror:visible').count())) {
    await page.getByRole('button', { name: 'Headers' }).click();
  }
  await setEditor(page, '.graphiql-editor-tool', JSON.stringify({ Authorization: `Bearer ${token('gq-alice')}` }));
  await setEditor(page, '.graphiql-query-editor', '{ me { id role } }');
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(() => document.querySelector('.result-window .CodeMirror')?.CodeMirror?.getValue().includes('gq-alice'));
  assert.match(await resultText(page), /"id": "gq-alice"/);
  await shot(page, 'graphiql-2-me');

  await setEditor(page, '.graphiql-query-editor', 'subscription { userUpdated(id: "gq-alice") { id name } }');
  await page.locator('.graphiql-execute-button').click();
  // Publish until the subscription (which starts asynchronously) sees it.
  const deadline = Date.now() + 15_000;
  let text = '';
  while (!text.includes('Live Alice') && Date.now() < deadline) {
    await gql(server, token('gq-alice'), 'mutation { upsertUsers(users: [{id: "gq-alice", name: "Live Alice"}]) { id } }');
    await page.waitForTimeout(300);
    text = await resultText(page);
  }
  assert.match(text, /"name": "Live Alice"/);
  await shot(page, 'graphiql-3-subscription');
});
