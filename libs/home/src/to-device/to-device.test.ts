// To-device messages between real Homes on libp2p over TCP (loopback) with real SQL stores: alice on a server home
// (S1) and her laptop (L), bob on another server home (S2). Messages reach a device of the same account on another
// home, a device of another account (through that account's server home), are held by alice's server home while
// the laptop is away (across a restart of S1) and delivered once when it connects; retried txn ids and EDUs sent
// twice are taken once; a flood is refused whole; forged and malformed EDUs are refused (and the answer says so);
// a home over its cap refuses for now and the sender sends again, in order (a refusal for good is dropped); one sender device's outbox is capped;
// messages for a device not replicated yet are held until it appears, or expire; unfetched messages expire.
import type { RoomActor, ToDeviceMessages } from '@polyhome/matrix';
import { waitFor } from '@polyhome/p2p/testing';
import { createInProcessQueue } from '@polyhome/queue';
import {
  openStorage,
  SqlReceiptStore,
  SqlReplicaStore,
  SqlRoomStore,
  SqlToDeviceStore,
  type Storage,
} from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, table, type TestDatabase } from '@polyhome/storage/testing';
import { deviceBody, makeAccount, type FixtureAccount, type FixtureHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, type HomeInit } from '../home.js';
import { TO_DEVICE_EDU } from './to-device.js';

/** Messages one device may hold from one sender here (small, so the flood test is short). */
const CAP = 5;
/** Messages one sender device may have waiting in the outbox. */
const OUTBOX_CAP = CAP + 3;
const HOUR = 60 * 60 * 1000;

const INIT: HomeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  announceEveryMs: 60 * 60 * 1000,
  federation: { minBackoffMs: 200, maxBackoffMs: 1_000 },
  toDevice: { maxPendingPerSender: CAP, maxOutboxPerSender: OUTBOX_CAP, minBackoffMs: 200, maxBackoffMs: 1_000 },
};

interface Running {
  home: Home;
  /** The messages the home logged. */
  logs: string[];
  replica: SqlReplicaStore;
  rooms: SqlRoomStore;
  storage: Storage;
  db: TestDatabase;
}

async function openHome(
  backend: (typeof STORAGE_BACKENDS)[number],
  fixture: FixtureHome,
  db?: TestDatabase,
): Promise<Running> {
  const database = db ?? (await createTestDatabase(backend));
  const storage = await openStorage({ databaseUrl: database.databaseUrl, dataDir: database.dataDir });
  const replica = new SqlReplicaStore(storage.dataSource);
  const rooms = new SqlRoomStore(storage.dataSource);
  const logs: string[] = [];
  const log = (_fields: unknown, message?: string) => void logs.push(String(message));
  const home = await Home.create(
    {
      logger: { debug: log, info: log, warn: log, error: log },
      nodeKey: fixture.secretKey,
      store: replica,
      queue: createInProcessQueue(),
      rooms,
      receipts: new SqlReceiptStore(storage.dataSource),
      toDevice: new SqlToDeviceStore(storage.dataSource),
    },
    INIT,
  );
  return { home, logs, replica, rooms, storage, db: database };
}

function messages(userId: string, deviceId: string, content: Record<string, unknown>): ToDeviceMessages {
  return new Map([[userId, new Map([[deviceId, content]])]]);
}

describe.each(STORAGE_BACKENDS)('to-device messages on %s', (backend) => {
  const alice = makeAccount({ seed: `to-device:${backend}:alice`, localpart: 'alice', homes: 2 });
  const bob = makeAccount({ seed: `to-device:${backend}:bob`, localpart: 'bob', homes: 1 });
  const AS1: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'AS1' };
  const AS2: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'AS2' };
  const AL: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'AL' };
  const BP: RoomActor = { serverName: bob.serverName, userId: bob.userId, deviceId: 'BP' };
  let s1: Running;
  let laptop: Running;
  let s2: Running;

  async function connect(a: Running, b: Running): Promise<void> {
    await a.home.host.dial(b.home.host.getMultiaddrs()[0]!);
  }

  /** The messages waiting for a device (nothing acknowledged). */
  async function inbox(running: Running, actor: RoomActor): Promise<Array<Record<string, unknown>>> {
    const port = running.home.toDevice!;
    const { events } = await port.messages(actor, undefined, await port.position(), 100);
    return events.map((e) => ({ sender: e.sender, type: e.type, ...e.content }));
  }

  /** Acknowledges everything waiting for a device (as a /sync from the position now would). */
  async function acknowledge(running: Running, actor: RoomActor): Promise<void> {
    const port = running.home.toDevice!;
    const position = await port.position();
    await port.messages(actor, position, position, 100);
  }

  async function addDevice(running: Running, account: FixtureAccount, deviceId: string): Promise<void> {
    await running.home.applyLocal(account.serverName, [
      {
        op: 'device.put',
        key: deviceId,
        body: { ...deviceBody(account, deviceId, { home: running.home.peerId }) },
      },
    ]);
  }

  async function knows(running: Running, account: FixtureAccount, deviceIds: string[]): Promise<boolean> {
    const state = await running.replica.state(account.serverName);
    return deviceIds.every((id) => state.devices[id] !== undefined);
  }

  beforeAll(async () => {
    [s1, laptop, s2] = await Promise.all([
      openHome(backend, alice.homes[0]!),
      openHome(backend, alice.homes[1]!),
      openHome(backend, bob.homes[0]!),
    ]);
    await s1.replica.hostAccount(alice.document, { custody: 'self' });
    await laptop.replica.hostAccount(alice.document, { custody: 'self' });
    await s2.replica.hostAccount(bob.document, { custody: 'self' });
    // Each side knows the other account's document as the DHT would give it.
    for (const running of [s1, laptop]) {
      await running.rooms.putForeignDocument(bob.serverName, bob.document.seq, JSON.stringify(bob.document));
    }
    await s2.rooms.putForeignDocument(alice.serverName, alice.document.seq, JSON.stringify(alice.document));
    await Promise.all([s1.home.start(), laptop.home.start(), s2.home.start()]);
    await connect(laptop, s1);
    await connect(s2, s1);
    await connect(laptop, s2);
    await addDevice(s1, alice, 'AS1');
    await addDevice(s1, alice, 'AS2');
    await addDevice(laptop, alice, 'AL');
    await addDevice(s2, bob, 'BP');
    for (const running of [s1, laptop]) {
      await waitFor(() => knows(running, alice, ['AS1', 'AS2', 'AL']), "alice's devices on each of her homes", 30_000);
    }
  }, 240_000);

  afterAll(async () => {
    for (const running of [s1, laptop, s2]) {
      if (running === undefined) continue;
      await running.home.stop();
      await running.storage.close();
      await running.db.dispose();
    }
  });

  it('reaches a device of the same account on another home, and is gone once acknowledged', async () => {
    await s1.home.toDevice!.send(AS1, 'm.test', 't1', messages(alice.userId, 'AL', { n: 1 }));
    await waitFor(async () => (await inbox(laptop, AL)).length === 1, 'the message on the laptop', 30_000);
    expect(await inbox(laptop, AL)).toEqual([{ sender: alice.userId, type: 'm.test', n: 1 }]);
    // And back, from the laptop to both devices on S1 (`*` is every device, the laptop's own included).
    await laptop.home.toDevice!.send(AL, 'm.test', 't1', messages(alice.userId, '*', { n: 2 }));
    await waitFor(async () => (await inbox(s1, AS2)).length === 1, 'the message on S1', 30_000);
    expect(await inbox(s1, AS1)).toEqual([{ sender: alice.userId, type: 'm.test', n: 2 }]);
    expect((await inbox(laptop, AL)).map((m) => m['n'])).toEqual([1, 2]);
    for (const [running, actor] of [
      [laptop, AL],
      [s1, AS1],
      [s1, AS2],
    ] as const) {
      await acknowledge(running, actor);
      expect(await inbox(running, actor)).toEqual([]);
    }
  }, 60_000);

  it("reaches another account's device, and comes back through that account's server home", async () => {
    await s1.home.toDevice!.send(AS1, 'm.room_key_request', 'k1', messages(bob.userId, 'BP', { to: 'bob' }));
    await waitFor(async () => (await inbox(s2, BP)).length === 1, "the message on bob's home", 30_000);
    expect(await inbox(s2, BP)).toEqual([{ sender: alice.userId, type: 'm.room_key_request', to: 'bob' }]);
    // bob's home does not know alice's devices: S1 (her server home) routes the message on to the laptop.
    await s2.home.toDevice!.send(BP, 'm.room_key_request', 'k1', messages(alice.userId, 'AL', { to: 'alice' }));
    await waitFor(async () => (await inbox(laptop, AL)).length === 1, 'the message on the laptop', 30_000);
    expect(await inbox(laptop, AL)).toEqual([{ sender: bob.userId, type: 'm.room_key_request', to: 'alice' }]);
    expect(await inbox(s1, AS1)).toEqual([]);
    await acknowledge(s2, BP);
    await acknowledge(laptop, AL);
  }, 60_000);

  it('a retried txn id and an EDU sent twice are taken once', async () => {
    const port = s1.home.toDevice!;
    await port.send(AS1, 'm.test', 'dup', messages(alice.userId, 'AL', { n: 'dup' }));
    await port.send(AS1, 'm.test', 'dup', messages(alice.userId, 'AL', { n: 'dup' }));
    // The same EDU twice from S1 (a retried transaction, or a second path), then a last message.
    const edu = {
      edu_type: TO_DEVICE_EDU,
      content: {
        sender: alice.userId,
        type: 'm.test',
        message_id: 'twice',
        messages: { [alice.userId]: { AL: { n: 'edu' } } },
      },
    };
    for (let i = 0; i < 2; i++) {
      expect((await s1.home.federation!.sendEdus(laptop.home.peerId, alice.serverName, [edu])).status).toBe(200);
    }
    await port.send(AS1, 'm.test', 'last', messages(alice.userId, 'AL', { n: 'last' }));
    await waitFor(
      async () => (await inbox(laptop, AL)).some((m) => m['n'] === 'last'),
      'the last message on the laptop',
      30_000,
    );
    // In order per path: the sends went through S1's outbox, the EDUs straight from the test.
    expect((await inbox(laptop, AL)).map((m) => m['n']).sort()).toEqual(['dup', 'edu', 'last']);
    await acknowledge(laptop, AL);
  }, 60_000);

  it('a flood is refused whole, and taken again once the device has synced', async () => {
    const port = s1.home.toDevice!;
    for (let i = 0; i < CAP; i++) await port.send(AS1, 'm.test', `flood${i}`, messages(alice.userId, 'AS2', { i }));
    const over = new Map([
      [
        alice.userId,
        new Map([
          ['AS2', { i: 'over' }],
          ['AL', { i: 'over' }],
        ]),
      ],
    ]);
    await expect(port.send(AS1, 'm.test', 'over', over)).rejects.toMatchObject({
      errcode: 'M_LIMIT_EXCEEDED',
      status: 429,
    });
    // Nothing of the refused request was kept: not the message for AS2, not the one owed to the laptop.
    expect((await inbox(s1, AS2)).length).toBe(CAP);
    // (Rows an earlier test left for the laptop may still be in delivery: only this request's are looked for.)
    const owed = await table(s1.storage, 'to_device_outbox').rows();
    expect(owed.filter((row) => String(row['edu']).includes('"over"'))).toEqual([]);
    // Another sender device is counted on its own.
    await port.send(AL, 'm.test', 'other', messages(alice.userId, 'AS2', { i: 'other' }));
    await acknowledge(s1, AS2);
    await port.send(AS1, 'm.test', 'over', over);
    expect((await inbox(s1, AS2)).map((m) => m['i'])).toEqual(['over']);
    await waitFor(async () => (await inbox(laptop, AL)).length === 1, 'the message on the laptop', 30_000);
    await acknowledge(s1, AS2);
    await acknowledge(laptop, AL);
  }, 60_000);

  it('forged and malformed EDUs are refused and change nothing', async () => {
    const send = (content: unknown) =>
      s2.home.federation!.sendEdus(s1.home.peerId, bob.serverName, [{ edu_type: TO_DEVICE_EDU, content }]);
    const to = { [alice.userId]: { AS1: { forged: true } } };
    // bob's home speaking for alice.
    const forged = await send({ sender: alice.userId, type: 'm.test', message_id: 'forged', messages: to });
    // The answer names the EDU refused for good, so the sender drops it knowingly.
    expect(forged.body).toMatchObject({ edus: { '0': { errcode: 'M_FORBIDDEN' } } });
    await send({ sender: bob.userId, type: 'm.test', message_id: 'bad1', messages: [] });
    await send({
      sender: bob.userId,
      type: 'm.test',
      message_id: 'bad2',
      messages: { [alice.userId]: { AS1: 'text' } },
    });
    await send({ sender: bob.userId, type: '', message_id: 'bad3', messages: to });
    await send({ sender: 'bob', type: 'm.test', message_id: 'bad4', messages: to });
    await send({ sender: bob.userId, type: 'm.test', message_id: 'x'.repeat(300), messages: to });
    await send({
      sender: bob.userId,
      type: 'm.test',
      message_id: 'good',
      messages: { [alice.userId]: { AS1: { ok: 1 } } },
    });
    await waitFor(async () => (await inbox(s1, AS1)).length > 0, 'the good message on S1', 30_000);
    // A home of alice forwarding a message whose sender is no account: refused (EDUs are taken before the answer).
    const forwarded = await s1.home.federation!.sendEdus(laptop.home.peerId, alice.serverName, [
      {
        edu_type: TO_DEVICE_EDU,
        content: {
          sender: `@eve:${'a'.repeat(80)}`,
          type: 'm.test',
          message_id: 'bad5',
          messages: { [alice.userId]: { AL: { n: 1 } } },
        },
      },
    ]);
    expect(forwarded.status).toBe(200);
    expect(forwarded.body).toMatchObject({ edus: { '0': { errcode: 'M_FORBIDDEN' } } });
    expect(await inbox(laptop, AL)).toEqual([]);
    expect(await inbox(s1, AS1)).toEqual([{ sender: bob.userId, type: 'm.test', ok: 1 }]);
    await acknowledge(s1, AS1);
  }, 60_000);

  it('the laptop away: S1 holds the messages, across its own restart, and the laptop gets each once', async () => {
    await laptop.home.stop();
    await laptop.storage.close();
    await s1.home.toDevice!.send(AS1, 'm.test', 'away1', messages(alice.userId, 'AL', { n: 'from S1' }));
    await s2.home.toDevice!.send(BP, 'm.test', 'away2', messages(alice.userId, 'AL', { n: 'from bob' }));
    const held = table(s1.storage, 'to_device_outbox');
    await waitFor(
      async () => (await held.count({ destination: laptop.home.peerId })) === 2,
      'both messages held on S1 for the laptop',
      30_000,
    );
    // bob's home handed its message over: it holds nothing.
    await waitFor(async () => (await table(s2.storage, 'to_device_outbox').count()) === 0, 'S2 holds nothing', 30_000);
    await s1.home.stop();
    await s1.storage.close();
    s1 = await openHome(backend, alice.homes[0]!, s1.db);
    await s1.home.start();
    laptop = await openHome(backend, alice.homes[1]!, laptop.db);
    await laptop.home.start();
    await connect(laptop, s1);
    await waitFor(async () => (await inbox(laptop, AL)).length >= 2, 'the held messages on the laptop', 60_000);
    await s1.home.toDevice!.send(AS1, 'm.test', 'after', messages(alice.userId, 'AL', { n: 'after' }));
    await waitFor(
      async () => (await inbox(laptop, AL)).some((m) => m['n'] === 'after'),
      'a later message on the laptop',
      30_000,
    );
    expect((await inbox(laptop, AL)).map((m) => m['n']).sort()).toEqual(['after', 'from S1', 'from bob']);
    // S1 forgets what it held once the laptop answered (just after the laptop stored it).
    await waitFor(async () => (await table(s1.storage, 'to_device_outbox').count()) === 0, 'S1 holds nothing', 30_000);
  }, 120_000);

  it('a sync takes at most its limit, in order; the rest come with the next, once', async () => {
    const port = s1.home.toDevice!;
    for (let i = 0; i < 3; i++) await port.send(AS2, 'm.test', `limit${i}`, messages(alice.userId, 'AS1', { i }));
    const to = await port.position();
    const first = await port.messages(AS1, undefined, to, 2);
    expect(first.events.map((e) => e.content['i'])).toEqual([0, 1]);
    expect(first.position).toBeLessThan(to);
    const second = await port.messages(AS1, first.position, await port.position(), 2);
    expect(second.events.map((e) => e.content['i'])).toEqual([2]);
    expect(second.position).toBe(to);
    expect((await port.messages(AS1, second.position, await port.position(), 2)).events).toEqual([]);
  }, 30_000);

  it("a deleted device's waiting messages are forgotten", async () => {
    await s1.home.toDevice!.send(AS1, 'm.test', 'gone', messages(alice.userId, 'AS2', { n: 'gone' }));
    expect((await inbox(s1, AS2)).length).toBe(1);
    await s1.home.applyLocal(alice.serverName, [{ op: 'device.delete', key: 'AS2', body: {} }]);
    const waiting = table(s1.storage, 'to_device_inbox');
    await waitFor(async () => (await waiting.count({ deviceId: 'AS2' })) === 0, 'the inbox of AS2 emptied', 30_000);
  }, 30_000);

  it('a home over its cap refuses for now: the sender keeps the messages and sends them again, in order', async () => {
    // (S1 and the laptop were restarted on new ports above.)
    await connect(s2, s1);
    await connect(s2, laptop);
    await acknowledge(s1, AS1);
    const port = s2.home.toDevice!;
    for (let i = 0; i < CAP; i++) await port.send(BP, 'm.test', `full${i}`, messages(alice.userId, 'AS1', { i }));
    await waitFor(async () => (await inbox(s1, AS1)).length === CAP, "bob's messages on S1", 30_000);
    // The answer to an EDU over the cap says "for now".
    const direct = await s2.home.federation!.sendEdus(s1.home.peerId, bob.serverName, [
      {
        edu_type: TO_DEVICE_EDU,
        content: {
          sender: bob.userId,
          type: 'm.test',
          message_id: 'direct',
          messages: { [alice.userId]: { AS1: {} } },
        },
      },
    ]);
    expect(direct.body).toMatchObject({ edus: { '0': { errcode: 'M_LIMIT_EXCEEDED' } } });
    await port.send(BP, 'm.test', 'late1', messages(alice.userId, 'AS1', { i: 'late1' }));
    await port.send(BP, 'm.test', 'late2', messages(alice.userId, 'AS1', { i: 'late2' }));
    // S1 refused them for now: bob's home keeps them (without the refusal in the answer it dropped them).
    const owed = table(s2.storage, 'to_device_outbox');
    const refusedForNow = 'a home refused to-device messages for now: they are kept and sent again';
    await waitFor(async () => s2.logs.includes(refusedForNow), "S1's refusal seen by bob's home", 30_000);
    expect((await owed.rows()).filter((r) => String(r['edu']).includes('late')).length).toBe(2);
    expect((await inbox(s1, AS1)).length).toBe(CAP);
    // AS1 syncs: the next attempt is taken, the messages in the order they were sent.
    await acknowledge(s1, AS1);
    await waitFor(async () => (await inbox(s1, AS1)).length === 2, 'the kept messages on S1', 30_000);
    expect((await inbox(s1, AS1)).map((m) => m['i'])).toEqual(['late1', 'late2']);
    await waitFor(async () => (await owed.count()) === 0, "bob's home holds nothing", 30_000);
    await acknowledge(s1, AS1);
  }, 60_000);

  it('an EDU refused for good is dropped by the sender, with a warning naming why', async () => {
    // bob's server has one user, bob: his home refuses a message for another user of that server for good.
    const stranger = `@stranger:${bob.serverName}`;
    await s1.home.toDevice!.send(AS1, 'm.test', 'stranger', messages(stranger, 'X', { n: 'stranger' }));
    const dropped = 'a home refused to-device messages for good: they are dropped';
    await waitFor(async () => s1.logs.includes(dropped), 'the warning on S1', 30_000);
    const owed = await table(s1.storage, 'to_device_outbox').rows();
    expect(owed.filter((r) => String(r['edu']).includes('stranger'))).toEqual([]);
  }, 60_000);

  it("one sender device's outbox is capped: over it the request is refused whole, nothing of it kept", async () => {
    // An account no home answers for: what is owed to it waits in S1's outbox.
    const carol = makeAccount({ seed: `to-device:${backend}:carol`, localpart: 'carol', homes: 1 });
    const AF: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'AFLOOD' };
    const port = s1.home.toDevice!;
    for (let i = 0; i < OUTBOX_CAP; i++) await port.send(AF, 'm.test', `o${i}`, messages(carol.userId, 'C', { i }));
    const over = new Map([
      [carol.userId, new Map([['C', { i: 'over' }]])],
      [alice.userId, new Map([['AS1', { i: 'over' }]])],
    ]);
    await expect(port.send(AF, 'm.test', 'over', over)).rejects.toMatchObject({
      errcode: 'M_LIMIT_EXCEEDED',
      status: 429,
    });
    expect(await inbox(s1, AS1)).toEqual([]);
    const owed = table(s1.storage, 'to_device_outbox');
    expect((await owed.rows()).filter((r) => String(r['edu']).includes('"over"'))).toEqual([]);
    expect(await owed.count({ destination: carol.serverName })).toBe(OUTBOX_CAP);
    // Another sender device has its own room.
    await port.send(AS2, 'm.test', 'o-other', messages(carol.userId, 'C', { i: 'other' }));
    // What no home took expires (the sweep, 30 days on); then the request fits.
    const swept = await port.sweep(Date.now() + 31 * 24 * HOUR);
    expect(swept.outbox).toBeGreaterThanOrEqual(OUTBOX_CAP + 1);
    await port.send(AF, 'm.test', 'over', over);
    expect((await inbox(s1, AS1)).map((m) => m['i'])).toEqual(['over']);
    await acknowledge(s1, AS1);
    await port.sweep(Date.now() + 31 * 24 * HOUR);
  }, 60_000);

  it('a message for a device not known yet is held until its device.put arrives, or expires', async () => {
    const held = table(s1.storage, 'to_device_held');
    // On S1: a device of alice that S1 will host, from a local send.
    await s1.home.toDevice!.send(AS1, 'm.test', 'early1', messages(alice.userId, 'ANEW', { n: 'early' }));
    expect(await held.count({ deviceId: 'ANEW' })).toBe(1);
    const ANEW: RoomActor = { ...AS1, deviceId: 'ANEW' };
    expect(await inbox(s1, ANEW)).toEqual([]);
    await addDevice(s1, alice, 'ANEW');
    await waitFor(async () => (await inbox(s1, ANEW)).length === 1, 'the held message on S1', 30_000);
    expect(await inbox(s1, ANEW)).toEqual([{ sender: alice.userId, type: 'm.test', n: 'early' }]);
    expect(await held.count({ deviceId: 'ANEW' })).toBe(0);
    // From bob to a laptop device S1 does not know yet: S1 holds it, then routes it to the laptop.
    await s2.home.toDevice!.send(BP, 'm.test', 'early2', messages(alice.userId, 'LNEW', { n: 'early bob' }));
    await waitFor(async () => (await held.count({ deviceId: 'LNEW' })) === 1, 'the message held on S1', 30_000);
    await addDevice(laptop, alice, 'LNEW');
    const LNEW: RoomActor = { ...AL, deviceId: 'LNEW' };
    await waitFor(async () => (await inbox(laptop, LNEW)).length === 1, 'the held message on the laptop', 30_000);
    expect(await inbox(laptop, LNEW)).toEqual([{ sender: bob.userId, type: 'm.test', n: 'early bob' }]);
    // A device that never appears: its messages go after the hold time (an hour).
    await s1.home.toDevice!.send(AS1, 'm.test', 'never', messages(alice.userId, 'NEVER', { n: 'never' }));
    expect(await held.count({ deviceId: 'NEVER' })).toBe(1);
    expect((await s1.home.toDevice!.sweep(Date.now() + 30 * 60 * 1000)).held).toBe(0);
    expect((await s1.home.toDevice!.sweep(Date.now() + 2 * HOUR)).held).toBe(1);
    expect(await held.count()).toBe(0);
    await acknowledge(s1, ANEW);
    await acknowledge(laptop, LNEW);
  }, 60_000);

  it('a message its device never fetches expires after 30 days', async () => {
    await s1.home.toDevice!.send(AS2, 'm.test', 'stale', messages(alice.userId, 'AS1', { n: 'stale' }));
    expect((await s1.home.toDevice!.sweep(Date.now() + 29 * 24 * HOUR)).inbox).toBe(0);
    expect((await inbox(s1, AS1)).length).toBe(1);
    expect((await s1.home.toDevice!.sweep(Date.now() + 31 * 24 * HOUR)).inbox).toBe(1);
    expect(await inbox(s1, AS1)).toEqual([]);
  }, 30_000);
});
