// Starts real Brook servers for the client suites: the binary built from
// this checkout, with private PostgreSQL and Redis under a temporary data
// directory (the zero-configuration path of `make run`).
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const secret = 'e2e-secret-e2e-secret-e2e-secret-0123456789';

let binary;

// buildBrook compiles the server once per test process.
export function buildBrook() {
  if (process.env.BROOK_BIN) return process.env.BROOK_BIN;
  if (!binary) {
    mkdirSync(join(repo, 'e2e', '.bin'), { recursive: true });
    binary = join(repo, 'e2e', '.bin', 'brook');
    execFileSync('go', ['build', '-o', binary, '.'], { cwd: repo, stdio: 'inherit' });
  }
  return binary;
}

// freePort asks the kernel for a free loopback port.
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const running = new Set();
process.on('exit', () => { for (const p of running) p.kill('SIGKILL'); });

// startBrook starts a server and resolves once /healthz answers. The handle
// can stop, kill and restart it on the same port and data directory.
export async function startBrook({ dataDir, port, env = {} } = {}) {
  const bin = buildBrook();
  dataDir ??= mkdtempSync(join(tmpdir(), 'brook-e2e-'));
  port ??= await freePort();
  const handle = {
    dataDir,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/query`,
    proc: null,
    log: '',
    async start() {
      const proc = spawn(bin, [], {
        cwd: repo,
        env: {
          ...process.env,
          BROOK_DATA_DIR: dataDir,
          BROOK_ADDR: `127.0.0.1:${port}`,
          BROOK_JWT_SECRET: secret,
          BROOK_DEV: 'true',
          BROOK_LOG_LEVEL: 'warn',
          DATABASE_URL: '',
          REDIS_URL: '',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      running.add(proc);
      proc.on('exit', () => running.delete(proc));
      const append = (b) => { handle.log = (handle.log + b.toString()).slice(-20000); };
      proc.stdout.on('data', append);
      proc.stderr.on('data', append);
      handle.proc = proc;
      const deadline = Date.now() + 120_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`brook exited with ${proc.exitCode}:\n${handle.log}`);
        try {
          const r = await fetch(`${handle.url}/healthz`);
          if (r.ok) return handle;
        } catch { /* not listening yet */ }
        if (Date.now() > deadline) throw new Error(`brook not healthy after 120s:\n${handle.log}`);
        await sleep(100);
      }
    },
    // stop sends SIGTERM and waits for a graceful exit.
    async stop() {
      const p = handle.proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((ok) => p.once('exit', ok));
      p.kill('SIGTERM');
      await exited;
    },
    async restart() {
      await handle.stop();
      return handle.start();
    },
    // remove stops the server and deletes its data directory.
    async remove() {
      await handle.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle.start();
}

// token signs a Brook access token (HS256 JWT) for a user.
export function token(userId, { admin = false, ttlSeconds = 3600 } = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { user_id: userId, iat: now, exp: now + ttlSeconds };
  if (admin) claims.role = 'admin';
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

// gql runs an operation over HTTP and returns the parsed response.
export async function gql(server, tok, query, variables) {
  const r = await fetch(`${server.url}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query, variables }),
  });
  return r.json();
}

// metric reads one series from /metrics.
export async function metric(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : undefined;
}

export function sleep(ms) {
  return new Promise((ok) => setTimeout(ok, ms));
}

// eventually retries fn until it returns truthy or the time is up.
export async function eventually(what, fn, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${ms} ms`);
    await sleep(50);
  }
}

// wsClient is graphql-ws's own client, unmodified, signed in to server with
// tok; it does not retry unless options say so.
export function wsClient(server, tok, options = {}) {
  return createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authToken: tok },
    retryAttempts: 0,
    ...options,
  });
}
