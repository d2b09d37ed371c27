// The server as a user runs it: `node apps/server/dist/main.js` in its own process (built by `npm test`).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@polyhome/p2p/testing';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(root, 'apps/server/dist/main.js');
const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function run(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env['PATH'] ?? '', P2P_LISTEN: '/ip4/127.0.0.1/tcp/0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.on('data', (d: Buffer) => stdout.push(...d.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (d: Buffer) => stderr.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout, stderr, exited };
}

async function waitForHealth(port: number, r: Run, timeoutMs = 45_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`server exited early: ${r.stderr.join('\n')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) return (await res.json()) as Record<string, unknown>;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no healthy /health on port ${port} within ${timeoutMs} ms; stderr: ${r.stderr.join('\n')}`);
}

async function stop(r: Run): Promise<number | null> {
  r.child.kill('SIGTERM');
  return r.exited;
}

describe('server process', () => {
  let dataDir: string;

  beforeAll(async () => {
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` (npm test does) first.`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-proc-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stops at once on PORT=abc with a one-line reason naming PORT', async () => {
    const r = run({ PORT: 'abc', DATA_DIR: dataDir });
    expect(await r.exited).toBe(1);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(
      /^polyhome-server: bad configuration: PORT: got "abc", expected a whole number from 1 to 65535\.$/,
    );
  });

  it('stops with a one-line reason when DATABASE_URL is unreachable', async () => {
    const r = run({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      DATA_DIR: dataDir,
      PORT: String(await freePort()),
    });
    expect(await r.exited).toBe(1);
    expect(r.stderr).toHaveLength(1);
    expect(r.stderr[0]).toMatch(
      /^polyhome-server: cannot start: Cannot use PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/none: ECONNREFUSED/,
    );
  });

  it('starts on the embedded default, stops cleanly on SIGTERM, and reuses its data directory', async () => {
    const port = await freePort();
    const env = { DATA_DIR: dataDir, PORT: String(port) };
    const first = run(env);
    const health = await waitForHealth(port, first);
    expect(health).toMatchObject({
      status: 'ok',
      details: { database: { status: 'up', backend: 'pglite' }, queue: { status: 'up', backend: 'in-process' } },
    });
    expect(await stop(first)).toBe(0);
    const firstLogs = first.stdout.map((l) => JSON.parse(l) as { msg: string });
    expect(firstLogs.some((l) => /^applied \d+ migration/.test(l.msg))).toBe(true);
    expect(firstLogs.some((l) => l.msg === 'stopped')).toBe(true);

    const second = run(env);
    await waitForHealth(port, second);
    expect(await stop(second)).toBe(0);
    const secondLogs = second.stdout.map((l) => JSON.parse(l) as { msg: string });
    // No database migration the second time (the log names none; the account-migration routes are another thing).
    expect(secondLogs.some((l) => /^applied \d+ migration|Applying database migrations/.test(l.msg))).toBe(false);
    expect(secondLogs.some((l) => l.msg.includes('Creating the embedded database'))).toBe(false);
  });

  it('refuses a second server on the same embedded data directory', async () => {
    const port = await freePort();
    const first = run({ DATA_DIR: dataDir, PORT: String(port) });
    await waitForHealth(port, first);
    const second = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    expect(await second.exited).toBe(1);
    expect(second.stderr.join('\n')).toMatch(/data directory is in use by process \d+/);
    expect(await stop(first)).toBe(0);
  });

  it('runs on PostgreSQL and BullMQ when DATABASE_URL and REDIS_URL are set', async () => {
    const database = await createTestPostgresDatabase();
    try {
      const port = await freePort();
      const r = run({ DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: database.url, REDIS_URL: REDIS_URL });
      const health = await waitForHealth(port, r);
      expect(health).toMatchObject({
        details: { database: { status: 'up', backend: 'postgres' }, queue: { status: 'up', backend: 'bullmq' } },
      });
      expect(await stop(r)).toBe(0);
    } finally {
      await database.drop();
    }
  });
});
