// kill -9 of a server home in the middle of heavy sync: thousands of a client's ops in flight and Matrix
// logins being answered. Whatever the server acknowledged before it died (ops in its acks to the client,
// devices in its 200 answers) is in its database when it is gone, and after a restart every home converges.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
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
import { ServerProcess } from '../support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 100_000;

describe('kill -9 of the server during heavy sync', () => {
  let scratch: string;
  let database: { url: string; drop(): Promise<void> };
  const prefix = `fault-kill-${process.pid}-${Date.now()}`;
  let server: ServerProcess;
  let homes: Homes;
  let db: Awaited<ReturnType<typeof openDatabase>>;

  const holders = (): Holder[] => [
    db,
    { name: 'laptop', versionVector: () => homes.laptop.versionVector(), logDigests: () => homes.laptop.logDigests() },
    { name: 'phone', versionVector: () => homes.phone.versionVector(), logDigests: () => homes.phone.logDigests() },
  ];

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-kill-'));
    database = await createTestPostgresDatabase();
    server = await ServerProcess.create({
      name: 'server',
      dataDir: scratch,
      env: { DATABASE_URL: database.url, REDIS_URL, QUEUE_PREFIX: prefix },
    });
    await server.start();
    homes = await makeHomes(server, `kill-${process.pid}`);
    db = await openDatabase(database.url, homes.laptop.serverName, 'server database');
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([homes?.laptop.stop(), homes?.phone.stop()]);
    await server?.kill('SIGKILL');
    await db?.close().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'loses nothing it acknowledged, and converges after the restart',
    async () => {
      const { laptop } = homes;
      const load = new Load(laptop, server, 'K', 100, 6_000);
      // Heavy: thousands of ops written, the server part of the way through them.
      await load.until(3_000);
      await waitFor(
        () => (laptop.acked.get(server.peerId)?.[laptop.home.peerId] ?? 0) >= 500 && load.logins.length >= 2,
        'the server to acknowledge part of the load',
        CONVERGE_MS,
        20,
      );
      // One more batch pushed right before the signal: it is on the wire or in the server's hands, not acked.
      await laptop.write(100, 'LAST');
      const written = (await laptop.versionVector())[laptop.home.peerId] ?? 0;
      await server.kill('SIGKILL');
      const acked = { ...(laptop.acked.get(server.peerId) ?? {}) };
      await load.stop();
      const logins = [...load.logins];
      // Ops were in flight: the laptop had written more than the server had acknowledged when it died.
      expect(acked[laptop.home.peerId]).toBeLessThan(written);

      // With the server dead, its database holds every op it acknowledged and every device it answered 200 for.
      expect(covers(await db.versionVector(), acked)).toBe(true);
      const state = await db.store.state(laptop.serverName);
      for (const device of logins) expect(state.devices[device], `device ${device} answered 200`).toBeDefined();

      await server.start();
      await laptop.connect(server);
      await homes.phone.connect(server);
      await laptop.write(200, 'AFTER');
      await waitFor(() => converged(holders()), 'every home to converge after the restart', CONVERGE_MS, 300).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}\n${await describeHolders(holders())}\n${server.tail()}`);
        },
      );
      const vv = await db.versionVector();
      expect(vv[laptop.home.peerId]).toBe(load.opsWritten + 300);
      const after = await db.store.state(laptop.serverName);
      for (const device of logins) expect(after.devices[device]).toBeDefined();
      expect(await db.store.equivocators(laptop.serverName)).toEqual([]);
    },
    TEST_MS,
  );
});
