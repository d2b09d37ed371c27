// SIGTERM to a server while a DHT announcement job runs (its one DHT peer never answers, so its `provide` and
// `put` would run until their query timeout). The stop aborts that work and the process
// exits 0 well before its shutdown timeout, on the in-process queue (PGlite) and on BullMQ (PostgreSQL).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startSilentDhtPeer, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix } from '../support/convergence.js';
import { ServerProcess } from '../support/server-process.js';
import { median } from '../support/stats.js';

const TEST_MS = 300_000;
const RUNS = 3;
/** The server's own shutdown timeout (the default); a stop that reaches it exits 1. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/**
 * How long the test waits for the exit: under the shutdown timeout, generous for a loaded machine (a process
 * that loaded PGlite's WebAssembly spends seconds in its own teardown after process.exit on this machine).
 */
const EXIT_DEADLINE_MS = 8_000;

const redisUrl = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}, 60_000);

/** The dht queue's running jobs, from the admin API. */
async function activeDhtJobs(server: ServerProcess): Promise<number> {
  const answer = await server.admin('GET', '/admin/v1/queues');
  const chunk = answer.body['chunk'] as Array<{ name: string; active: number }> | undefined;
  return chunk?.find((q) => q.name === 'dht')?.active ?? 0;
}

/** Starts the server, hosts an account (its announcement job runs), stops it with SIGTERM: the stop's ms. */
async function stopWithJobInFlight(server: ServerProcess, run: number): Promise<number> {
  await server.start();
  // A peer in the routing table, so the announcement runs (with none it fails at once, NotConnectedError),
  // that never answers a DHT query.
  const stranger = await startSilentDhtPeer(server.addr);
  try {
    return await stopWhileAnnouncing(server, run);
  } finally {
    await stranger.stop();
  }
}

async function stopWhileAnnouncing(server: ServerProcess, run: number): Promise<number> {
  const made = await server.admin('POST', '/admin/v1/accounts', {
    localpart: `stop${run}`,
    password: `stop ${run} password`,
  });
  expect(made.status, JSON.stringify(made.body)).toBe(201);
  await waitFor(async () => (await activeDhtJobs(server)) > 0, 'a dht job to be running', 60_000, 50);
  const from = performance.now();
  const exited = server.kill('SIGTERM');
  const code = await Promise.race([
    exited,
    new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), EXIT_DEADLINE_MS).unref()),
  ]);
  const ms = performance.now() - from;
  if (code === 'late') await server.kill('SIGKILL');
  expect(code, `exit of run ${run} (after ${Math.round(ms)} ms):\n${server.tail()}`).toBe(0);
  expect(server.logs.join('\n')).not.toContain('graceful shutdown timed out');
  return ms;
}

async function stopTimes(label: string, env: Record<string, string>): Promise<number[]> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `polyhome-stop-${label}-`));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const server = await ServerProcess.create({
    name: `server (${label})`,
    dataDir,
    env: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), LOG_LEVEL: 'info', ...env },
  });
  cleanups.push(async () => void (await server.kill('SIGKILL')));
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) times.push(await stopWithJobInFlight(server, run));
  console.log(
    `stop with a dht job in flight (${label}): median ${Math.round(median(times))} ms of ${times
      .map((t) => Math.round(t))
      .join(', ')} ms`,
  );
  return times;
}

describe('SIGTERM while a DHT job runs', () => {
  it(
    'exits 0 promptly on the in-process queue (PGlite)',
    async () => {
      const times = await stopTimes('in-process', {});
      expect(times).toHaveLength(RUNS);
    },
    TEST_MS,
  );

  it(
    'exits 0 promptly on BullMQ (PostgreSQL)',
    async () => {
      const database = await createTestPostgresDatabase();
      const prefix = `fault-stop-${process.pid}-${Date.now()}`;
      cleanups.push(
        () => database.drop(),
        () => deleteRedisPrefix(redisUrl, prefix),
      );
      const times = await stopTimes('bullmq', {
        DATABASE_URL: database.url,
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: prefix,
      });
      expect(times).toHaveLength(RUNS);
    },
    TEST_MS,
  );
});
