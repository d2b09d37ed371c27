// Scale-out: two server processes share one PostgreSQL database and one Redis key prefix, each with its own
// DATA_DIR (own node key, so own PeerId): each is a home of its own in the account document. Two client
// homes (real libp2p nodes in this process) make the account's other homes. One instance is stopped while
// changes keep coming from everywhere; the other keeps serving and delivering; the stopped one restarts and
// takes part again.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { makeHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, loginDevice, serverHomeOf } from './support/client-node.js';
import {
  converged,
  covers,
  deleteRedisPrefix,
  describeHolders,
  openDatabase,
  type Holder,
} from './support/convergence.js';
import { ServerProcess } from './support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Deadline of one test: a ceiling for a loaded machine, not an expectation. */
const TEST_MS = 240_000;
const CONVERGE_MS = 90_000;

describe('two server instances on one database and one Redis', () => {
  let scratch: string;
  let database: { url: string; drop(): Promise<void> };
  const prefix = `scaleout-${process.pid}-${Date.now()}`;
  let a: ServerProcess;
  let b: ServerProcess;
  let laptop: ClientNode;
  let phone: ClientNode;
  let phonePort: number;
  const phoneLabel = `scaleout-${process.pid}:phone`;
  let db: Awaited<ReturnType<typeof openDatabase>>;
  const devices: string[] = [];

  const holders = (): Holder[] => [
    db,
    { name: 'laptop', versionVector: () => laptop.versionVector(), logDigests: () => laptop.logDigests() },
    { name: 'phone', versionVector: () => phone.versionVector(), logDigests: () => phone.logDigests() },
  ];

  async function waitConverged(what: string): Promise<void> {
    await waitFor(() => converged(holders()), what, CONVERGE_MS, 300).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await describeHolders(holders())}\nA:\n${a.tail()}\nB:\n${b.tail()}`);
    });
  }

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-scaleout-'));
    database = await createTestPostgresDatabase();
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      // Instances sharing a database share the sealing key.
      SEALING_KEY: randomBytes(32).toString('hex'),
    };
    a = await ServerProcess.create({ name: 'instance A', dataDir: path.join(scratch, 'a'), env });
    b = await ServerProcess.create({ name: 'instance B', dataDir: path.join(scratch, 'b'), env });
    // Both start at once on an empty database: the migrations must not collide.
    await Promise.all([a.start(), b.start()]);

    laptop = await ClientNode.start({ seed: `scaleout-${process.pid}` });
    phonePort = await freePort();
    db = await openDatabase(database.url, laptop.serverName, 'database of A and B');
  }, 180_000);

  afterAll(async () => {
    await Promise.allSettled([laptop?.stop(), phone?.stop()]);
    await Promise.allSettled([a?.kill('SIGTERM'), b?.kill('SIGTERM')]);
    await Promise.allSettled([a?.kill('SIGKILL'), b?.kill('SIGKILL')]);
    await db?.close().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'makes each instance a home of its own, and enrolls the second after the first stored the account',
    async () => {
      expect(a.peerId).not.toBe(b.peerId);
      await laptop.addHome(serverHomeOf(a, 'a'));
      expect(await laptop.enroll(a)).toMatchObject({ status: 201 });
      await laptop.connect(a);
      // The second instance already finds the account in the shared database; the document adding it is newer.
      await laptop.addHome(serverHomeOf(b, 'b'));
      const enrolled = await laptop.enroll(b);
      expect(enrolled).toMatchObject({ status: 201, body: { peer_id: b.peerId } });
      await laptop.connect(b);

      const phoneHome = makeHome(phoneLabel, 'client', 'phone');
      const phoneDoc = await laptop.addHome({ ...phoneHome.home, addrs: [`/ip4/127.0.0.1/tcp/${phonePort}`] });
      phone = await ClientNode.another(laptop.account, phoneLabel, phoneDoc, { port: phonePort });
      await phone.connect(a);

      for (const server of [a, b]) {
        const detail = await server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}`);
        expect(detail.status).toBe(200);
        await waitFor(
          async () =>
            (await server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}`)).body['doc_seq'] ===
            phoneDoc.seq,
          `${server.init.name} to hold the document naming every home`,
          CONVERGE_MS,
          300,
        );
      }
      const document = (await a.admin('GET', `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}`)).body[
        'document'
      ] as { homes: Array<{ peer_id: string }> };
      expect(document.homes.map((h) => h.peer_id).sort()).toEqual(
        [laptop.home.peerId, a.peerId, b.peerId, phone.home.peerId].sort(),
      );
    },
    TEST_MS,
  );

  it(
    'converges with changes made on every home, both instances included',
    async () => {
      await laptop.write(300, 'L');
      await phone.write(100, 'P');
      devices.push(await loginDevice(a, laptop.userId), await loginDevice(b, laptop.userId));
      await waitConverged('every home to hold the same ops');
      const vv = await db.versionVector();
      expect(Object.keys(vv).sort()).toEqual([laptop.home.peerId, phone.home.peerId, a.peerId, b.peerId].sort());
      expect(vv[laptop.home.peerId]).toBe(300);
    },
    TEST_MS,
  );

  it(
    'keeps converging while instance A is stopped; the phone, asleep meanwhile, is caught up by B',
    async () => {
      await a.kill('SIGTERM');
      await phone.stop();
      // Changes from the laptop (connected to B) and from B itself while A is down and the phone asleep.
      await laptop.write(400, 'LA');
      devices.push(await loginDevice(b, laptop.userId));
      await waitFor(
        async () => covers(await db.versionVector(), await laptop.versionVector()),
        'B to store what the laptop wrote while A is down',
        CONVERGE_MS,
        300,
      );
      // The phone wakes on its old port with an empty store (it kept its ops in memory): B's delivery job
      // (BullMQ; A cannot take it) dials it at the address in the document and catches it up.
      phone = await ClientNode.another(laptop.account, phoneLabel, phone.document, { port: phonePort });
      await waitConverged('the phone to be caught up by instance B while A is down');
      expect((await phone.versionVector())[laptop.home.peerId]).toBe(700);
      expect((await phone.versionVector())[phone.home.peerId]).toBe(100);
    },
    TEST_MS,
  );

  it(
    'takes instance A back: its new changes reach every home, and it acknowledges what it missed',
    async () => {
      await a.start();
      devices.push(await loginDevice(a, laptop.userId));
      await laptop.write(100, 'LB');
      await waitConverged('every home to converge after A restarted');
      // A's sessions work again: A tells the laptop it holds everything, its own ops included. It says so in an
      // ack when the laptop sent it ops, or in its hello when it already had them from the shared database
      // (then the laptop sends nothing and no ack comes): the session's peer vector joins both.
      await laptop.connect(a);
      const heldByA = (): Record<string, number> => {
        const held = { ...(laptop.acked.get(a.peerId) ?? {}) };
        const session = laptop.sync.sessions(laptop.serverName).find((x) => x.peerId === a.peerId);
        for (const [origin, seq] of Object.entries(session?.peerVector ?? {})) {
          held[origin] = Math.max(held[origin] ?? 0, seq);
        }
        return held;
      };
      await waitFor(
        async () => covers(heldByA(), await laptop.versionVector()),
        'instance A to say it holds everything the laptop holds',
        CONVERGE_MS,
        300,
      );
      const state = await db.store.state(laptop.serverName);
      for (const device of devices) expect(state.devices[device]).toBeDefined();
      // Neither instance ever queued delivery to the other (they share the op log): no job failed.
      const queues = await b.admin('GET', '/admin/v1/queues');
      const delivery = (queues.body['chunk'] as Array<{ name: string; failed: number }> | undefined)?.find(
        (q) => q.name === 'delivery',
      );
      expect(delivery?.failed ?? 0).toBe(0);
      // Each instance reports the other as holding everything (they share the op log).
      const homesOnA = await a.admin('GET', `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}/homes`);
      const bOnA = (homesOnA.body['homes'] as Array<{ peer_id: string; pending_ops: number; self: boolean }>).find(
        (h) => h.peer_id === b.peerId,
      );
      expect(bOnA).toMatchObject({ self: false, pending_ops: 0 });
    },
    TEST_MS,
  );
});
