// Redis (a private one: never the shared service) killed under load and started again empty, as a Redis
// without persistence comes back. The server keeps syncing connected homes meanwhile, /health says the
// queue is down while it is, and the delivery jobs Redis lost are queued again, so a home that slept
// through it all is still caught up.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { converged, covers, describeHolders, openDatabase, type Holder } from '../support/convergence.js';
import { loginDevice } from '../support/client-node.js';
import { Load, makeHomes, type Homes } from '../support/load.js';
import { startPrivateRedis, type PrivateService } from '../support/private-services.js';
import { ServerProcess } from '../support/server-process.js';

/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 100_000;

describe('Redis restarted under load', () => {
  let scratch: string;
  let database: { url: string; drop(): Promise<void> };
  let redis: PrivateService;
  let server: ServerProcess;
  let homes: Homes;
  let db: Awaited<ReturnType<typeof openDatabase>>;

  const holders = (): Holder[] => [
    db,
    { name: 'laptop', versionVector: () => homes.laptop.versionVector(), logDigests: () => homes.laptop.logDigests() },
    { name: 'phone', versionVector: () => homes.phone.versionVector(), logDigests: () => homes.phone.logDigests() },
  ];

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-redis-'));
    database = await createTestPostgresDatabase();
    redis = await startPrivateRedis();
    server = await ServerProcess.create({
      name: 'server',
      dataDir: scratch,
      env: { DATABASE_URL: database.url, REDIS_URL: redis.url },
    });
    await server.start();
    homes = await makeHomes(server, `redis-${process.pid}`);
    db = await openDatabase(database.url, homes.laptop.serverName, 'server database');
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([homes?.laptop.stop(), homes?.phone.stop()]);
    await server?.kill('SIGKILL');
    await redis?.dispose().catch(() => undefined);
    await db?.close().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'survives, reports the outage, and converges with every home afterwards',
    async () => {
      const { laptop } = homes;
      await homes.phone.stop(); // asleep: only a delivery job can bring it what it misses
      const load = new Load(laptop, server, 'R');
      await load.until(500);

      await redis.crash();
      await waitFor(
        async () => {
          const health = await server.health();
          const queue = (health.body['details'] as Record<string, { status: string }> | undefined)?.['queue'];
          return health.status === 503 && queue?.status === 'down';
        },
        '/health to report the queue down',
        CONVERGE_MS,
        200,
      );
      // Sync with the connected laptop goes on without Redis.
      const during = load.opsWritten + 300;
      await load.until(during);
      await waitFor(
        async () => ((await db.versionVector())[laptop.home.peerId] ?? 0) >= during,
        'the server to store the laptop’s ops while Redis is down',
        CONVERGE_MS,
        200,
      );
      expect(server.running).toBe(true);
      // The load ends before Redis returns: no later change will queue the phone's delivery again.
      await load.stop();
      const acked = { ...(laptop.acked.get(server.peerId) ?? {}) };

      await redis.start();
      await waitFor(async () => (await server.health()).status === 200, '/health to recover', CONVERGE_MS, 200);
      await homes.wakePhone();
      await waitFor(() => converged(holders()), 'every home to converge', CONVERGE_MS, 300).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}\n${await describeHolders(holders())}\n${server.tail()}`);
        },
      );
      expect(covers(await db.versionVector(), acked)).toBe(true);
      expect((await db.versionVector())[laptop.home.peerId]).toBe(load.opsWritten);
      const state = await db.store.state(laptop.serverName);
      for (const device of load.logins) expect(state.devices[device]).toBeDefined();
      expect(server.running).toBe(true);
    },
    TEST_MS,
  );

  it(
    'queues again the deliveries a Redis that came back empty lost, with no further change to prompt it',
    async () => {
      const { laptop } = homes;
      await homes.phone.stop();
      const device = await loginDevice(server, laptop.userId);
      // The server holds a change the sleeping phone lacks: a delivery job waits in Redis, retrying.
      await waitFor(
        async () => {
          const queues = await server.admin('GET', '/admin/v1/queues');
          const delivery = (queues.body['chunk'] as Array<Record<string, number | string>> | undefined)?.find(
            (q) => q['name'] === 'delivery',
          );
          return (
            delivery !== undefined &&
            Number(delivery['waiting']) + Number(delivery['delayed']) + Number(delivery['active']) > 0
          );
        },
        'a delivery job for the phone',
        CONVERGE_MS,
        200,
      );
      await redis.crash();
      await redis.start();
      await waitFor(async () => (await server.health()).status === 200, '/health to recover', CONVERGE_MS, 200);
      await homes.wakePhone();
      await waitFor(() => converged(holders()), 'the phone to be caught up', CONVERGE_MS, 300).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}\n${await describeHolders(holders())}\n${server.tail()}`);
        },
      );
      expect((await db.store.state(laptop.serverName)).devices[device]).toBeDefined();
      expect(server.logs.some((l) => l.includes('the job queue lost its jobs'))).toBe(true);
    },
    TEST_MS,
  );
});
