// End-to-end keys across homes and accounts between real Homes on libp2p (loopback TCP) with real SQL stores:
// alice on a server home (S1) and her laptop (L), bob on another server home (S2), carol whose only home never
// runs. Device and cross-signing keys are asked of a home of the account; one-time keys of the home that holds
// them (each handed out once, then the fallback key); an unreachable account lands in `failures`.
import { DEVICE_KEY_LIMITS, type RoomActor } from '@polyhome/matrix';
import { federationRequest, type FederationResponse } from '@polyhome/p2p';
import { waitFor } from '@polyhome/p2p/testing';
import { createInProcessQueue } from '@polyhome/queue';
import { openStorage, SqlMatrixStore, SqlReplicaStore, SqlRoomStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import {
  crossSigningKeys,
  deviceBody,
  makeAccount,
  withCrossSigningMaster,
  type FixtureAccount,
  type FixtureHome,
} from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, type HomeInit } from '../home.js';
import { MAX_KEY_DEVICES, MAX_KEY_USERS } from './federation-keys.js';

const INIT: HomeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  announceEveryMs: 60 * 60 * 1000,
  federation: { minBackoffMs: 200, maxBackoffMs: 1_000 },
};
const ALG = 'signed_curve25519';

interface Running {
  home: Home;
  rooms: SqlRoomStore;
  replica: SqlReplicaStore;
  keys: SqlMatrixStore;
  storage: Storage;
  db: TestDatabase;
}

async function openHome(backend: (typeof STORAGE_BACKENDS)[number], fixture: FixtureHome): Promise<Running> {
  const db = await createTestDatabase(backend);
  const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  const replica = new SqlReplicaStore(storage.dataSource);
  const rooms = new SqlRoomStore(storage.dataSource);
  const keys = new SqlMatrixStore(storage.dataSource);
  const home = await Home.create(
    { nodeKey: fixture.secretKey, store: replica, queue: createInProcessQueue(), rooms, oneTimeKeys: keys },
    INIT,
  );
  return { home, rooms, replica, keys, storage, db };
}

function oneTime(id: string) {
  return { keyId: `${ALG}:${id}`, algorithm: ALG, value: { key: `key-${id}` } };
}

describe.each(STORAGE_BACKENDS)('keys across homes on %s', (backend) => {
  const alice = makeAccount({ seed: `fedkeys:${backend}:alice`, localpart: 'alice', homes: 2 });
  const bob = makeAccount({ seed: `fedkeys:${backend}:bob`, localpart: 'bob', homes: 1 });
  const carol = makeAccount({ seed: `fedkeys:${backend}:carol`, localpart: 'carol', homes: 1 });
  const bobKeys = crossSigningKeys(bob, 'bob-cs');
  const bobDocument = withCrossSigningMaster(bob, bob.document, bobKeys.master);
  let s1: Running;
  let laptop: Running;
  let s2: Running;
  const claimedOnLaptop: string[][] = [];
  /** `local-changed` events of each home: `<account> <key>`. */
  const localChanges = new Map<Running, string[]>();

  async function connect(a: Running, b: Running): Promise<void> {
    await a.home.host.dial(b.home.host.getMultiaddrs()[0]!);
  }

  const know = (running: Running, account: FixtureAccount, document = account.document) =>
    running.rooms.putForeignDocument(account.serverName, document.seq, JSON.stringify(document));

  const device = (account: FixtureAccount, id: string, on: Running) => ({
    op: 'device.put' as const,
    key: id,
    body: { ...deviceBody(account, id), display_name: `${id} phone`, home: on.home.peerId },
  });

  /** A request to a home's keys routes as `origin` (from one of origin's homes). */
  const ask = (from: Running, to: Running, origin: string, method: string, path: string, body?: unknown) =>
    federationRequest(from.home.host, to.home.peerId, {
      method,
      path: `/_matrix/federation/v1/user/${path}`,
      query: { origin },
      ...(body === undefined ? {} : { body }),
    });

  const errcode = (answer: FederationResponse) => (answer.body as { errcode?: string }).errcode;

  beforeAll(async () => {
    [s1, laptop, s2] = await Promise.all([
      openHome(backend, alice.homes[0]!),
      openHome(backend, alice.homes[1]!),
      openHome(backend, bob.homes[0]!),
    ]);
    await s1.replica.hostAccount(alice.document, { custody: 'self' });
    await laptop.replica.hostAccount(alice.document, { custody: 'self' });
    await s2.replica.hostAccount(bobDocument, { custody: 'self' });
    // Documents as the DHT would give them (the DHT lookup has its own tests).
    for (const running of [s1, laptop]) {
      await know(running, bob, bobDocument);
      await know(running, carol);
    }
    await know(s2, alice);
    laptop.home.on('local-changed', ({ keys }) => claimedOnLaptop.push(keys));
    for (const running of [s1, laptop, s2]) {
      localChanges.set(running, []);
      running.home.on('local-changed', ({ account, keys }) =>
        localChanges.get(running)!.push(...keys.map((k) => `${account} ${k}`)),
      );
    }
    await Promise.all([s1.home.start(), laptop.home.start(), s2.home.start()]);
    await connect(laptop, s1);
    await connect(s2, s1);
    await connect(laptop, s2);
    await s1.home.applyLocal(alice.serverName, [device(alice, 'ASERVER', s1)]);
    await laptop.home.applyLocal(alice.serverName, [device(alice, 'ALAPTOP', laptop)]);
    await s2.home.applyLocal(bob.serverName, [
      device(bob, 'BPHONE', s2),
      ...(['master', 'self_signing', 'user_signing'] as const).map((usage) => ({
        op: 'cross_signing.put' as const,
        key: usage,
        body: { ...bobKeys.bodies[usage] },
      })),
    ]);
    // One-time keys live only where the device uploaded them.
    await laptop.keys.uploadKeys(
      alice.serverName,
      'ALAPTOP',
      { oneTime: [oneTime('L1'), oneTime('L2')], fallback: [] },
      DEVICE_KEY_LIMITS,
    );
    await s2.keys.uploadKeys(
      bob.serverName,
      'BPHONE',
      { oneTime: [oneTime('B1')], fallback: [{ ...oneTime('BFALLBACK') }] },
      DEVICE_KEY_LIMITS,
    );
    for (const running of [s1, laptop]) {
      await waitFor(
        async () => Object.keys((await running.replica.state(alice.serverName)).devices).length === 2,
        "alice's two devices replicated to both of her homes",
        30_000,
      );
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

  it("queries another account's device and cross-signing keys at its home", async () => {
    const answer = await s1.home.federation!.keys!.query(alice.serverName, { [bob.userId]: [] }, 10_000);
    expect(answer.failures).toEqual({});
    const phone = answer.device_keys[bob.userId]?.['BPHONE'];
    expect(phone).toMatchObject({ user_id: bob.userId, device_id: 'BPHONE', keys: deviceBody(bob, 'BPHONE').keys });
    expect(phone?.['unsigned']).toEqual({ device_display_name: 'BPHONE phone' });
    expect(phone).not.toHaveProperty('home');
    expect(answer.master_keys[bob.userId]).toEqual(bobKeys.bodies.master);
    expect(answer.self_signing_keys[bob.userId]).toEqual(bobKeys.bodies.self_signing);
    // The user-signing key is the user's own business (spec: federation answers no user_signing_keys).
    expect(answer).not.toHaveProperty('user_signing_keys');
    // Asking for one device of two gives that one.
    const one = await s2.home.federation!.keys!.query(bob.serverName, { [alice.userId]: ['ALAPTOP'] }, 10_000);
    expect(Object.keys(one.device_keys[alice.userId] ?? {})).toEqual(['ALAPTOP']);
    // The route itself, spec-shaped.
    const raw = await ask(s1, s2, alice.serverName, 'POST', 'keys/query', { device_keys: { [bob.userId]: [] } });
    expect(raw.status).toBe(200);
    expect(Object.keys((raw.body as { device_keys: Record<string, object> }).device_keys[bob.userId]!)).toEqual([
      'BPHONE',
    ]);
  });

  it('lists devices with a stream_id that grows when the device list changes', async () => {
    const first = await ask(s1, s2, alice.serverName, 'GET', `devices/${encodeURIComponent(bob.userId)}`);
    expect(first.status).toBe(200);
    const body = first.body as {
      user_id: string;
      stream_id: number;
      devices: Array<{ device_id: string; keys: object; device_display_name?: string }>;
      master_key: object;
      self_signing_key: object;
    };
    expect(body.user_id).toBe(bob.userId);
    expect(body.devices.map((d) => d.device_id)).toEqual(['BPHONE']);
    expect(body.devices[0]!.device_display_name).toBe('BPHONE phone');
    expect(body.master_key).toEqual(bobKeys.bodies.master);
    expect(body.self_signing_key).toEqual(bobKeys.bodies.self_signing);
    await s2.home.applyLocal(bob.serverName, [device(bob, 'BTABLET', s2)]);
    const second = await ask(s1, s2, alice.serverName, 'GET', `devices/${encodeURIComponent(bob.userId)}`);
    const after = second.body as typeof body;
    expect(after.stream_id).toBeGreaterThan(body.stream_id);
    expect(after.devices.map((d) => d.device_id).sort()).toEqual(['BPHONE', 'BTABLET']);
    // Both homes of alice give the same list and version once they hold the same ops.
    const fromS1 = await ask(s2, s1, bob.serverName, 'GET', `devices/${encodeURIComponent(alice.userId)}`);
    const fromLaptop = await ask(s2, laptop, bob.serverName, 'GET', `devices/${encodeURIComponent(alice.userId)}`);
    expect(fromS1.body).toEqual(fromLaptop.body);
  });

  it("claims another account's one-time key once, then its fallback key", async () => {
    const keys = s1.home.federation!.keys!;
    const claim = () => keys.claim(alice.serverName, { [bob.userId]: { BPHONE: ALG } }, 10_000);
    const first = await claim();
    expect(first.failures).toEqual({});
    expect(first.one_time_keys[bob.userId]).toEqual({ BPHONE: { [`${ALG}:B1`]: { key: 'key-B1' } } });
    const second = await claim();
    expect(second.one_time_keys[bob.userId]).toEqual({ BPHONE: { [`${ALG}:BFALLBACK`]: { key: 'key-BFALLBACK' } } });
    const third = await claim();
    expect(third.one_time_keys[bob.userId]).toEqual(second.one_time_keys[bob.userId]);
    expect(await s2.keys.countOneTimeKeys(bob.serverName, 'BPHONE')).toEqual({});
    // A device with no keys at all gets none, and is no failure.
    const none = await keys.claim(alice.serverName, { [bob.userId]: { BTABLET: ALG } }, 10_000);
    expect(none).toEqual({ one_time_keys: { [bob.userId]: {} }, failures: {} });
  });

  it("claims keys held by the account's other home: from the same account, and from another account", async () => {
    // S1 knows from the replicated device list that ALAPTOP lives on the laptop.
    const own = await s1.home.federation!.keys!.claim(alice.serverName, { [alice.userId]: { ALAPTOP: ALG } }, 10_000);
    expect(own).toEqual({
      one_time_keys: { [alice.userId]: { ALAPTOP: { [`${ALG}:L1`]: { key: 'key-L1' } } } },
      failures: {},
    });
    // bob's home asks alice's server home first, which names the laptop; the laptop hands out the next key.
    const other = await s2.home.federation!.keys!.claim(bob.serverName, { [alice.userId]: { ALAPTOP: ALG } }, 10_000);
    expect(other.failures).toEqual({});
    expect(other.one_time_keys[alice.userId]).toEqual({ ALAPTOP: { [`${ALG}:L2`]: { key: 'key-L2' } } });
    expect(await laptop.keys.countOneTimeKeys(alice.serverName, 'ALAPTOP')).toEqual({});
    // The laptop told its clients' /sync that the device's one-time keys changed.
    expect(claimedOnLaptop).toContainEqual(['keys:ALAPTOP']);
    // No key is left and none is made up.
    const empty = await s2.home.federation!.keys!.claim(bob.serverName, { [alice.userId]: { ALAPTOP: ALG } }, 10_000);
    expect(empty).toEqual({ one_time_keys: { [alice.userId]: {} }, failures: {} });
    // A home asked for a device whose keys another home holds claims nothing and names that home.
    const named = await ask(s2, s1, bob.serverName, 'POST', 'keys/claim', {
      one_time_keys: { [alice.userId]: { ALAPTOP: ALG } },
    });
    expect(named.body).toEqual({
      one_time_keys: { [alice.userId]: {} },
      'org.polyhome.device_homes': { [alice.userId]: { ALAPTOP: laptop.home.peerId } },
    });
  });

  it('names an account none of whose homes answers in failures, and answers the rest', async () => {
    const keys = s1.home.federation!.keys!;
    const query = await keys.query(alice.serverName, { [carol.userId]: [], [bob.userId]: ['BPHONE'] }, 3_000);
    expect(Object.keys(query.failures)).toEqual([carol.serverName]);
    expect(query.failures[carol.serverName]).toMatchObject({ status: 503 });
    expect(String(query.failures[carol.serverName]!['message'])).toContain(carol.homes[0]!.peerId);
    expect(Object.keys(query.device_keys[bob.userId] ?? {})).toEqual(['BPHONE']);
    const claim = await keys.claim(alice.serverName, { [carol.userId]: { CPHONE: ALG } }, 3_000);
    expect(Object.keys(claim.failures)).toEqual([carol.serverName]);
    expect(claim.one_time_keys).toEqual({});
  });

  it('refuses bad user ids and oversized requests, and answers nothing for users not hosted here', async () => {
    const badUser = await ask(s1, s2, alice.serverName, 'POST', 'keys/query', { device_keys: { 'not-a-user': [] } });
    expect([badUser.status, errcode(badUser)]).toEqual([400, 'M_INVALID_PARAM']);
    const badClaim = await ask(s1, s2, alice.serverName, 'POST', 'keys/claim', {
      one_time_keys: { [bob.userId]: { BPHONE: 7 } },
    });
    expect([badClaim.status, errcode(badClaim)]).toEqual([400, 'M_BAD_JSON']);
    const notObject = await ask(s1, s2, alice.serverName, 'POST', 'keys/query', { device_keys: [] });
    expect([notObject.status, errcode(notObject)]).toEqual([400, 'M_BAD_JSON']);
    const manyUsers = Object.fromEntries(
      Array.from({ length: MAX_KEY_USERS + 1 }, (_, i) => [`@u${i}:${bob.serverName}`, []]),
    );
    const tooMany = await ask(s1, s2, alice.serverName, 'POST', 'keys/query', { device_keys: manyUsers });
    expect([tooMany.status, errcode(tooMany)]).toEqual([413, 'M_TOO_LARGE']);
    const manyDevices = Object.fromEntries(Array.from({ length: MAX_KEY_DEVICES + 1 }, (_, i) => [`D${i}`, ALG]));
    const tooManyDevices = await ask(s1, s2, alice.serverName, 'POST', 'keys/claim', {
      one_time_keys: { [bob.userId]: manyDevices },
    });
    expect([tooManyDevices.status, errcode(tooManyDevices)]).toEqual([413, 'M_TOO_LARGE']);
    const badPath = await ask(s1, s2, alice.serverName, 'GET', 'devices/nobody');
    expect([badPath.status, errcode(badPath)]).toEqual([400, 'M_INVALID_PARAM']);
    const elsewhere = await ask(s1, s2, alice.serverName, 'GET', `devices/${encodeURIComponent(carol.userId)}`);
    expect([elsewhere.status, errcode(elsewhere)]).toEqual([404, 'M_NOT_FOUND']);
    // Another localpart on bob's server names nobody: nothing is answered for it.
    const stranger = await ask(s1, s2, alice.serverName, 'POST', 'keys/query', {
      device_keys: { [`@mallory:${bob.serverName}`]: [] },
    });
    expect(stranger.status).toBe(200);
    expect((stranger.body as { device_keys: object }).device_keys).toEqual({});
    // Nothing was claimed by the refused requests.
    expect(await s2.keys.countOneTimeKeys(bob.serverName, 'BPHONE')).toEqual({});
  });

  it("a device added on one account's home marks its user changed on the homes of an account sharing a room", async () => {
    const A: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'ASERVER' };
    const B: RoomActor = { serverName: bob.serverName, userId: bob.userId, deviceId: 'BPHONE' };
    const { roomId } = await s1.home.rooms!.createRoom(A, {
      preset: 'private_chat',
      invite: [bob.userId],
      initialState: [],
      isDirect: false,
    });
    await waitFor(
      async () =>
        (await s2.home.rooms!.syncRooms(B, { to: await s2.rooms.currentStreamPosition(), timelineLimit: 1 })).some(
          (r) => r.roomId === roomId,
        ),
      'bob invited on S2',
      30_000,
    );
    await s2.home.rooms!.membership(B, roomId, { action: 'join' });
    for (const running of [s1, laptop]) {
      await waitFor(
        async () => (await running.home.rooms!.joinedMembers(roomId)).includes(bob.userId),
        "bob's join on alice's homes",
        30_000,
      );
    }
    // bob's new device: S2 made it, and tells both of alice's homes.
    await s2.home.applyLocal(bob.serverName, [device(bob, 'BWATCH', s2)]);
    for (const running of [s1, laptop]) {
      await waitFor(
        async () => localChanges.get(running)!.includes(`${alice.serverName} user_keys:${bob.userId}`),
        "bob's device list change marked for alice",
        30_000,
      );
    }
    // alice's new device on her laptop reaches bob's home, from the laptop (and from S1, her server home).
    expect(localChanges.get(s2)!).not.toContain(`${bob.serverName} user_keys:${alice.userId}`);
    await laptop.home.applyLocal(alice.serverName, [device(alice, 'ATABLET', laptop)]);
    await waitFor(
      async () => localChanges.get(s2)!.includes(`${bob.serverName} user_keys:${alice.userId}`),
      "alice's device list change marked for bob",
      30_000,
    );
    // A home of an account is never told of its own user this way (its replicated state says it).
    expect(localChanges.get(s1)!.some((c) => c.endsWith(`user_keys:${alice.userId}`))).toBe(false);
  }, 90_000);
});
