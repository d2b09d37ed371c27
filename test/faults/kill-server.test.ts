// kill -9 of a server home in the middle of heavy sync: thousands of a client's ops in flight and Matrix
// logins being answered. Whatever the server acknowledged before it died (ops in its acks to the client,
// devices in its 200 answers) is in its database when it is gone, and after a restart every home converges.
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { converged, covers, describeHolders, openDatabase, type Holder } from '../support/convergence.js';
import { Load, makeHomes, type Homes } from '../support/load.js';
import { ServerProcess, startFreshServer, type FreshServer } from '../support/server-process.js';

/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 100_000;

describe('kill -9 of the server during heavy sync', () => {
  let fresh: FreshServer;
  let server: ServerProcess;
  let homes: Homes;
  let db: Awaited<ReturnType<typeof openDatabase>>;

  const holders = (): Holder[] => [
    db,
    { name: 'laptop', versionVector: () => homes.laptop.versionVector(), logDigests: () => homes.laptop.logDigests() },
    { name: 'phone', versionVector: () => homes.phone.versionVector(), logDigests: () => homes.phone.logDigests() },
  ];

  beforeAll(async () => {
    fresh = await startFreshServer('kill');
    server = fresh.server;
    homes = await makeHomes(server, `kill-${process.pid}`);
    db = await openDatabase(fresh.databaseUrl, homes.laptop.serverName, 'server database');
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([homes?.laptop.stop(), homes?.phone.stop()]);
    await server?.kill('SIGKILL');
    await db?.close().catch(() => undefined);
    await fresh?.dispose();
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
