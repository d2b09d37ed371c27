// A network partition between two homes, healed after both sides changed. Every byte between the server
// home and the laptop goes through a TCP proxy in this process: the laptop announces only the proxy's
// address (and the account document names only it), and the laptop never dials the server itself. Cutting
// the proxy kills the connection and refuses new ones; restoring it lets the server's delivery reach the
// laptop again, and the session exchanges what each side made meanwhile.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, loginDevice, serverHomeOf } from '../support/client-node.js';
import { converged, describeHolders, openDatabase, type Holder } from '../support/convergence.js';
import { ServerProcess } from '../support/server-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 100_000;

describe('a partition between two homes, healed', () => {
  let scratch: string;
  let database: { url: string; drop(): Promise<void> };
  let server: ServerProcess;
  let laptop: ClientNode;
  let proxy: TcpProxy;
  let db: Awaited<ReturnType<typeof openDatabase>>;

  const holders = (): Holder[] => [
    db,
    { name: 'laptop', versionVector: () => laptop.versionVector(), logDigests: () => laptop.logDigests() },
  ];
  const connected = (): boolean =>
    laptop.host.getConnections().some((c) => c.remotePeer.toString() === server.peerId && c.status === 'open');

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-partition-'));
    database = await createTestPostgresDatabase();
    // The embedded queue (no REDIS_URL): delivery retries run in the server process.
    server = await ServerProcess.create({ name: 'server', dataDir: scratch, env: { DATABASE_URL: database.url } });
    await server.start();
    const laptopPort = await freePort();
    proxy = await startTcpProxy(laptopPort);
    const through = `/ip4/127.0.0.1/tcp/${proxy.port}`;
    laptop = await ClientNode.start({
      seed: `partition-${process.pid}`,
      port: laptopPort,
      announce: [through],
      denyDialPorts: [server.p2pPort],
    });
    await laptop.addHome(serverHomeOf(server, 'server'));
    // Enrolling makes the server dial the account's other homes: the laptop, through the proxy.
    expect((await laptop.enroll(server)).status).toBe(201);
    db = await openDatabase(database.url, laptop.serverName, 'server database');
  }, 180_000);

  afterAll(async () => {
    await laptop?.stop().catch(() => undefined);
    await proxy?.close();
    await server?.kill('SIGKILL');
    await db?.close().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'converges after changes on both sides of a cut connection',
    async () => {
      await waitFor(connected, 'the server to reach the laptop through the proxy', CONVERGE_MS, 100);
      expect(proxy.accepted).toBeGreaterThan(0);
      await laptop.write(200, 'BEFORE');
      await loginDevice(server, laptop.userId);
      await waitFor(() => converged(holders()), 'the two homes to converge before the cut', CONVERGE_MS, 300);

      proxy.cut();
      await waitFor(() => !connected(), 'the connection to drop', CONVERGE_MS, 100);
      const acceptedAtCut = proxy.accepted;
      // Both sides change while apart.
      const laptopOps = await laptop.write(300, 'APART');
      const devices = [await loginDevice(server, laptop.userId), await loginDevice(server, laptop.userId)];
      // The partition is real: neither side has the other's new changes.
      const serverVv = await db.versionVector();
      const laptopVv = await laptop.versionVector();
      expect(serverVv[laptop.home.peerId] ?? 0).toBeLessThan(laptopOps.at(-1)!.seq);
      expect(laptopVv[server.peerId] ?? 0).toBeLessThan(serverVv[server.peerId] ?? 0);

      proxy.restore();
      await waitFor(
        () => converged(holders()),
        'the two homes to converge after the partition heals',
        CONVERGE_MS,
        300,
      ).catch(async (err: unknown) => {
        throw new Error(`${String(err)}\n${await describeHolders(holders())}\n${server.tail()}`);
      });
      // The healing connection went through the proxy too.
      expect(proxy.accepted).toBeGreaterThan(acceptedAtCut);
      const state = await db.store.state(laptop.serverName);
      for (const device of devices) expect(state.devices[device]).toBeDefined();
      expect(state.devices['APART_499']).toBeDefined();
      expect((await laptop.versionVector())[laptop.home.peerId]).toBe(500);
    },
    TEST_MS,
  );
});
