// PostgreSQL (a private cluster: never the shared service) crashed under load (immediate shutdown: no
// checkpoint, crash recovery at the next start) and started again. The server stays up, /health says the
// database is down while it is, nothing it acknowledged before the crash is lost, and every home converges.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  converged,
  covers,
  deleteRedisPrefix,
  describeHolders,
  openDatabase,
  type Holder,
} from '../support/convergence.js';
import { Load, makeHomes, type Homes } from '../support/load.js';
import { startPrivatePostgres } from '../support/private-services.js';
import { ServerProcess } from '../support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 100_000;

describe('PostgreSQL restarted under load', () => {
  let scratch: string;
  let postgres: Awaited<ReturnType<typeof startPrivatePostgres>>;
  const prefix = `fault-pg-${process.pid}-${Date.now()}`;
  let server: ServerProcess;
  let homes: Homes;
  let db: Awaited<ReturnType<typeof openDatabase>> | undefined;

  const holders = (): Holder[] => [
    db!,
    { name: 'laptop', versionVector: () => homes.laptop.versionVector(), logDigests: () => homes.laptop.logDigests() },
    { name: 'phone', versionVector: () => homes.phone.versionVector(), logDigests: () => homes.phone.logDigests() },
  ];

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-pgfault-'));
    postgres = await startPrivatePostgres();
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE polyhome');
    await admin.end();
    server = await ServerProcess.create({
      name: 'server',
      dataDir: scratch,
      env: { DATABASE_URL: postgres.databaseUrl('polyhome'), REDIS_URL, QUEUE_PREFIX: prefix },
    });
    await server.start();
    homes = await makeHomes(server, `pg-${process.pid}`);
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([homes?.laptop.stop(), homes?.phone.stop()]);
    await server?.kill('SIGKILL');
    await db?.close().catch(() => undefined);
    await postgres?.dispose().catch(() => undefined);
    await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'survives, reports the outage, keeps what it acknowledged, and converges afterwards',
    async () => {
      const { laptop } = homes;
      await homes.phone.stop(); // asleep: it is caught up through a delivery job afterwards
      const load = new Load(laptop, server, 'G');
      await load.until(1_000);
      await waitFor(
        () => (laptop.acked.get(server.peerId)?.[laptop.home.peerId] ?? 0) >= 300 && load.logins.length >= 2,
        'the server to acknowledge part of the load',
        CONVERGE_MS,
        20,
      );

      await postgres.crash();
      // What the server acknowledged up to the crash (it cannot acknowledge more without its database).
      const acked = { ...(laptop.acked.get(server.peerId) ?? {}) };
      const loginsBefore = [...load.logins];
      await waitFor(
        async () => {
          const health = await server.health();
          const database = (health.body['details'] as Record<string, { status: string }> | undefined)?.['database'];
          return health.status === 503 && database?.status === 'down';
        },
        '/health to report the database down',
        CONVERGE_MS,
        200,
      );
      // The laptop keeps writing into the outage.
      await load.until(load.opsWritten + 500);
      expect(server.running).toBe(true);

      await postgres.start();
      await waitFor(async () => (await server.health()).status === 200, '/health to recover', CONVERGE_MS, 200);
      await load.until(load.opsWritten + 300);
      await load.stop();
      db = await openDatabase(postgres.databaseUrl('polyhome'), laptop.serverName, 'server database');
      // Nothing acknowledged before the crash was lost in it.
      expect(covers(await db.versionVector(), acked)).toBe(true);
      const state = await db.store.state(laptop.serverName);
      for (const device of loginsBefore) expect(state.devices[device], `device ${device} answered 200`).toBeDefined();

      await homes.wakePhone();
      await waitFor(() => converged(holders()), 'every home to converge', CONVERGE_MS, 300).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}\n${await describeHolders(holders())}\n${server.tail()}`);
        },
      );
      expect((await db.versionVector())[laptop.home.peerId]).toBe(load.opsWritten);
      const after = await db.store.state(laptop.serverName);
      for (const device of load.logins) expect(after.devices[device]).toBeDefined();
      expect(await db.store.equivocators(laptop.serverName)).toEqual([]);
      expect(server.running).toBe(true);
    },
    TEST_MS,
  );
});
