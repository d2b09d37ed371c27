// Room federation between real Homes on libp2p over TCP (loopback) with real SQL stores: alice on a server home
// (S1) and her laptop (L), bob on another server home (S2). An invite crosses accounts, bob's home takes the
// room in, both send, and every home ends with the same timeline; the laptop away gets what it missed from S1
// with S2 down; a stranger and forged events are refused.
import type { RoomActor } from '@polyhome/matrix';
import { waitFor } from '@polyhome/p2p/testing';
import { createInProcessQueue } from '@polyhome/queue';
import {
  addSignature,
  buildEvent,
  checkAuth,
  eventIdOf,
  resolveState,
  signPdu,
  stateKeyOf,
  type Pdu,
} from '@polyhome/rooms';
import {
  openStorage,
  SqlReceiptStore,
  SqlReplicaStore,
  SqlRoomBlockStore,
  SqlRoomStore,
  type Storage,
} from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import { makeAccount, makeHome, withHome, type FixtureHome } from '@polyhome/sync/testing';
import { federationRequest } from '@polyhome/p2p';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Home, type HomeInit } from '../home.js';

const INIT: HomeInit = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  announceEveryMs: 60 * 60 * 1000,
  federation: { minBackoffMs: 200, maxBackoffMs: 1_000 },
};

interface Running {
  home: Home;
  rooms: SqlRoomStore;
  blocks: SqlRoomBlockStore;
  replica: SqlReplicaStore;
  storage: Storage;
  db: TestDatabase;
}

async function openHome(backend: (typeof STORAGE_BACKENDS)[number], fixture: FixtureHome, db?: TestDatabase) {
  const database = db ?? (await createTestDatabase(backend));
  const storage = await openStorage({ databaseUrl: database.databaseUrl, dataDir: database.dataDir });
  const replica = new SqlReplicaStore(storage.dataSource);
  const rooms = new SqlRoomStore(storage.dataSource);
  const blocks = new SqlRoomBlockStore(storage.dataSource);
  const home = await Home.create(
    {
      nodeKey: fixture.secretKey,
      store: replica,
      queue: createInProcessQueue(),
      rooms,
      receipts: new SqlReceiptStore(storage.dataSource),
      roomBlocks: blocks,
      ...(process.env['FEDERATION_TEST_LOG'] === '1' ? { logger: consoleLogger(fixture.home.name) } : {}),
    },
    INIT,
  );
  return { home, rooms, blocks, replica, storage, db: database } satisfies Running;
}

/** Logs of a home on stderr, for a failing run (FEDERATION_TEST_LOG=1). */
function consoleLogger(name: string) {
  const log =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void =>
      console.error(
        name,
        level,
        msg,
        JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? v.message : v)),
      );
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

describe.each(STORAGE_BACKENDS)('room federation on %s', (backend) => {
  const alice = makeAccount({ seed: `federation:${backend}:alice`, localpart: 'alice', homes: 2 });
  const bob = makeAccount({ seed: `federation:${backend}:bob`, localpart: 'bob', homes: 1 });
  const stranger = makeHome(`federation:${backend}:stranger`, 'server', 'stranger');
  // carol's first home (which countersigns her invite) never runs: her second home has the invite from her
  // account's state and not the room.
  const carol = makeAccount({ seed: `federation:${backend}:carol`, localpart: 'carol', homes: 1 });
  const A: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'ALAPTOP' };
  const B: RoomActor = { serverName: bob.serverName, userId: bob.userId, deviceId: 'BPHONE' };
  let s1: Running;
  let laptop: Running;
  let s2: Running;
  let outsider: Running;
  let added: Running | undefined;
  let carolHome: Running | undefined;
  let roomId: string;

  async function connect(a: Running, b: Running): Promise<void> {
    await a.home.host.dial(b.home.host.getMultiaddrs()[0]!);
  }

  /**
   * Ids of the room's messages on a home, oldest first, in topological order (the same on every home; bob's
   * home holds no history from before it was invited, so the state events differ).
   */
  async function timeline(running: Running, actor: RoomActor): Promise<string[]> {
    const ids: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 50; page++) {
      const got = await running.home.rooms!.messages(actor, roomId, {
        dir: 'f',
        limit: 100,
        ...(from ? { from } : {}),
      });
      ids.push(...got.events.filter((e) => e.pdu.type === 'm.room.message').map((e) => e.eventId));
      if (got.end === undefined || got.events.length === 0) break;
      from = got.end;
    }
    return ids;
  }

  /** Every message body of the room on a home, oldest first, paging back to the start (backfilling on the way). */
  async function everyBody(running: Running): Promise<string[]> {
    const out: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 100; page++) {
      const got = await running.home.rooms!.messages(A, roomId, { dir: 'b', limit: 50, ...(from ? { from } : {}) });
      for (const e of got.events) if (e.pdu.type === 'm.room.message') out.push(String(e.pdu.content['body']));
      if (got.end === undefined || got.events.length === 0) break;
      from = got.end;
    }
    return out.reverse();
  }

  async function bodies(running: Running, actor: RoomActor): Promise<string[]> {
    const page = await running.home.rooms!.messages(actor, roomId, { dir: 'b', limit: 100 });
    return page.events
      .filter((e) => e.pdu.type === 'm.room.message')
      .map((e) => String(e.pdu.content['body']))
      .reverse();
  }

  /** An event of `sender` built on S1's current state of `room` and signed as `serverName` with `signer`'s key. */
  async function eventOnS1(
    room: string,
    sender: string,
    serverName: string,
    signer: FixtureHome,
    type: string,
    content: Record<string, unknown>,
    stateKey?: string,
  ): Promise<Pdu> {
    const state = await s1.rooms.currentState(room);
    const extremities = await s1.rooms.forwardExtremities(room, 10);
    const prevs = await s1.rooms.getEvents(extremities.map((e) => e.eventId));
    const template = buildEvent({
      version: '11',
      roomId: room,
      sender,
      type,
      ...(stateKey === undefined ? {} : { stateKey }),
      content,
      prevEvents: extremities.map((e) => ({ eventId: e.eventId, pdu: prevs.get(e.eventId)! })),
      state,
      originServerTs: Date.now(),
    });
    return signPdu('11', template, { serverName, keyId: `ed25519:${signer.peerId}`, secretKey: signer.secretKey });
  }

  beforeAll(async () => {
    [s1, laptop, s2, outsider] = await Promise.all([
      openHome(backend, alice.homes[0]!),
      openHome(backend, alice.homes[1]!),
      openHome(backend, bob.homes[0]!),
      openHome(backend, stranger),
    ]);
    await s1.replica.hostAccount(alice.document, { custody: 'self' });
    await laptop.replica.hostAccount(alice.document, { custody: 'self' });
    await s2.replica.hostAccount(bob.document, { custody: 'self' });
    // alice's homes know bob's document as the DHT would give it (the DHT lookup has its own tests).
    await s1.rooms.putForeignDocument(bob.serverName, bob.document.seq, JSON.stringify(bob.document));
    await Promise.all([s1.home.start(), laptop.home.start(), s2.home.start(), outsider.home.start()]);
    await connect(laptop, s1);
    await connect(s2, s1);
    await connect(laptop, s2);
  }, 240_000);

  afterAll(async () => {
    for (const running of [s1, laptop, s2, outsider, added, carolHome]) {
      if (running === undefined) continue;
      await running.home.stop();
      await running.storage.close();
      await running.db.dispose();
    }
  });

  it('an invite crosses accounts, the invitee home takes the room in, and the join reaches every home', async () => {
    ({ roomId } = await s1.home.rooms!.createRoom(A, {
      preset: 'private_chat',
      invite: [bob.userId],
      initialState: [],
      name: 'federated',
      isDirect: false,
    }));
    const invited = async () => {
      const to = await s2.rooms.currentStreamPosition();
      const rooms = await s2.home.rooms!.syncRooms(B, { to, timelineLimit: 10 });
      return rooms.find((r) => r.roomId === roomId);
    };
    await waitFor(async () => (await invited()) !== undefined, 'bob invited on S2', 30_000);
    const invite = await invited();
    expect(invite?.membership).toBe('invite');
    expect(invite?.inviteState?.some((e) => e.pdu.type === 'm.room.name')).toBe(true);
    await s2.home.rooms!.membership(B, roomId, { action: 'join' });
    for (const running of [s1, laptop]) {
      await waitFor(
        async () =>
          (await running.home.rooms!.members(A, roomId).catch(() => [])).some(
            (m) => m.pdu.state_key === bob.userId && m.pdu.content['membership'] === 'join',
          ),
        'bob joined, seen on every home of alice',
        30_000,
      );
    }
  }, 60_000);

  it('both send; every home ends with the same timeline in the same order', async () => {
    for (let i = 0; i < 10; i++) {
      await s1.home.rooms!.send(A, roomId, { type: 'm.room.message', content: { msgtype: 'm.text', body: `a${i}` } });
      await s2.home.rooms!.send(B, roomId, { type: 'm.room.message', content: { msgtype: 'm.text', body: `b${i}` } });
    }
    await laptop.home.rooms!.send(A, roomId, {
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'from the laptop' },
    });
    let reference: string[] = [];
    await waitFor(
      async () => {
        const [one, two, three] = await Promise.all([timeline(s1, A), timeline(s2, B), timeline(laptop, A)]);
        reference = one;
        return one.length >= 21 && one.join() === two.join() && two.join() === three.join();
      },
      'the same timeline on S1, S2 and the laptop',
      60_000,
    );
    const texts = await bodies(s2, B);
    expect(texts.filter((t) => t.startsWith('a')).length).toBe(10);
    expect(texts.filter((t) => t.startsWith('b')).length).toBe(10);
    expect(texts).toContain('from the laptop');
    expect(reference.length).toBe(21);
  }, 90_000);

  it('typing and read receipts of bob on S2 reach alice on S1 and her laptop (EDUs)', async () => {
    const ephemeralOn = async (running: Running) => {
      const eph = running.home.ephemeral!;
      const events = await eph.ephemeralOf(A, [roomId], undefined, await eph.position());
      return events.get(roomId) ?? [];
    };
    await s2.home.ephemeral!.setTyping(B, roomId, true, 20_000);
    const last = (await s2.home.rooms!.messages(B, roomId, { dir: 'b', limit: 1 })).events[0]!;
    await s2.home.ephemeral!.setReceipt(B, roomId, 'm.read', last.eventId, undefined);
    for (const running of [s1, laptop]) {
      await waitFor(
        async () => {
          const events = await ephemeralOn(running);
          const typing = events.find((e) => e['type'] === 'm.typing');
          const receipt = events.find((e) => e['type'] === 'm.receipt');
          return (
            (JSON.stringify(typing?.['content']) ?? '').includes(bob.userId) &&
            (JSON.stringify(receipt?.['content']) ?? '').includes(last.eventId)
          );
        },
        "bob's typing and receipt on alice's homes",
        30_000,
      );
    }
  }, 60_000);

  it('the laptop away gets what it missed from S1, with S2 down', async () => {
    await laptop.home.stop();
    await laptop.storage.close();
    for (let i = 0; i < 60; i++) {
      await s2.home.rooms!.send(B, roomId, {
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `away${i}` },
      });
    }
    await waitFor(async () => (await bodies(s1, A)).includes('away59'), "S1 has bob's messages", 30_000);
    const s2db = s2.db;
    await s2.home.stop();
    await s2.storage.close();
    laptop = await openHome(backend, alice.homes[1]!, laptop.db);
    await laptop.home.start();
    await connect(laptop, s1);
    await waitFor(
      async () => (await bodies(laptop, A).catch((): string[] => [])).includes('away59'),
      'the laptop caught up',
      60_000,
    );
    const texts = await bodies(laptop, A);
    for (let i = 0; i < 60; i++) expect(texts).toContain(`away${i}`);
    expect((await timeline(laptop, A)).join()).toBe((await timeline(s1, A)).join());
    s2 = await openHome(backend, bob.homes[0]!, s2db);
    await s2.home.start();
  }, 120_000);

  it('concurrent state changes on S1 and the laptop converge on every home', async () => {
    await connect(s2, s1);
    await connect(laptop, s2);
    const levels = async (running: Running): Promise<Record<string, unknown>> =>
      (await running.home.rooms!.stateEvent(A, roomId, 'm.room.power_levels', ''))!.pdu.content;
    const before = await levels(s1);
    const sent = await Promise.all([
      s1.home.rooms!.send(A, roomId, { type: 'm.room.name', stateKey: '', content: { name: 'named on S1' } }),
      laptop.home.rooms!.send(A, roomId, {
        type: 'm.room.name',
        stateKey: '',
        content: { name: 'named on the laptop' },
      }),
      s1.home.rooms!.send(A, roomId, {
        type: 'm.room.power_levels',
        stateKey: '',
        content: { ...before, events_default: 10 },
      }),
      laptop.home.rooms!.send(A, roomId, {
        type: 'm.room.power_levels',
        stateKey: '',
        content: { ...before, state_default: 60 },
      }),
    ]);
    const stateOf = async (running: Running, actor: RoomActor) => {
      const name = await running.home.rooms!.stateEvent(actor, roomId, 'm.room.name', '');
      const power = await running.home.rooms!.stateEvent(actor, roomId, 'm.room.power_levels', '');
      return `${name?.eventId ?? ''} ${power?.eventId ?? ''}`;
    };
    let states: string[] = [];
    await waitFor(
      async () => {
        states = await Promise.all([stateOf(s1, A), stateOf(laptop, A), stateOf(s2, B)]);
        const names = await Promise.all(
          [s1, laptop, s2].map((r, i) => r.home.rooms!.stateEvent(i === 2 ? B : A, roomId, 'm.room.name', '')),
        );
        return new Set(states).size === 1 && names.every((n) => String(n?.pdu.content['name']).startsWith('named on'));
      },
      'one resolved state on S1, the laptop and S2',
      60_000,
    );
    expect(new Set(states).size).toBe(1);
    // The changes were concurrent: S1's name change does not descend from the laptop's, nor the other way.
    const ancestors = async (id: string): Promise<Set<string>> => {
      const seen = new Set<string>();
      let frontier = [id];
      for (let hops = 0; hops < 50 && frontier.length > 0; hops++) {
        const held = await s1.rooms.eventsByIds(frontier);
        frontier = [...held.values()].flatMap((e) => e.pdu.prev_events).filter((p) => !seen.has(p));
        for (const p of frontier) seen.add(p);
      }
      return seen;
    };
    const [onS1, onLaptop] = [sent[0]!.eventId, sent[1]!.eventId];
    expect((await ancestors(onS1)).has(onLaptop)).toBe(false);
    expect((await ancestors(onLaptop)).has(onS1)).toBe(false);
    // Every home holds what state resolution v2 gives over the room's final DAG: the resolution of the states at
    // its forward extremities, derived here from S1's events apart from the homes' own incremental work.
    const extremities = await s1.rooms.forwardExtremities(roomId);
    const resolved = await resolveState(
      '11',
      await Promise.all(extremities.map((e) => s1.rooms.stateAfter(e.eventId))),
      s1.rooms,
      checkAuth,
    );
    const expected = `${resolved.get(stateKeyOf('m.room.name', ''))} ${resolved.get(stateKeyOf('m.room.power_levels', ''))}`;
    expect(states[0]).toBe(expected);
    for (const [home, store] of [
      ['S1', s1.rooms],
      ['the laptop', laptop.rooms],
      ['S2', s2.rooms],
    ] as const) {
      const current = await store.currentState(roomId);
      expect(`${home} ${current.get(stateKeyOf('m.room.name', ''))}`).toBe(
        `${home} ${resolved.get(stateKeyOf('m.room.name', ''))}`,
      );
      expect(`${home} ${current.get(stateKeyOf('m.room.power_levels', ''))}`).toBe(
        `${home} ${resolved.get(stateKeyOf('m.room.power_levels', ''))}`,
      );
    }
  }, 90_000);

  it('refuses a stranger, and events with a bad signature or forged by a home of another account', async () => {
    const send = (from: Running, origin: string, pdus: unknown[]) =>
      federationRequest(from.home.host, s1.home.peerId, {
        method: 'PUT',
        path: `/_matrix/federation/v1/send/t${Date.now()}`,
        query: { origin },
        body: { origin, origin_server_ts: Date.now(), pdus, edus: [] },
      });
    await connect(outsider, s1);
    // A stranger claiming to speak for bob is not one of bob's homes.
    expect((await send(outsider, bob.serverName, [])).status).toBe(403);
    // bob's home sends an event signed by the stranger's key as bob: refused, not stored.
    const [last] = (await s1.rooms.forwardExtremities(roomId, 1)).map((e) => e.eventId);
    const forged = signPdu(
      '11',
      {
        room_id: roomId,
        type: 'm.room.message',
        sender: bob.userId,
        content: { body: 'forged' },
        prev_events: [last!],
        auth_events: [],
        depth: 1_000,
        origin_server_ts: Date.now(),
      } as never,
      { serverName: bob.serverName, keyId: `ed25519:${stranger.peerId}`, secretKey: stranger.secretKey },
    );
    await connect(s2, s1);
    const answer = await send(s2, bob.serverName, [forged]);
    expect(answer.status).toBe(200);
    const results = Object.values((answer.body as { pdus: Record<string, { error?: string }> }).pdus);
    expect(results[0]?.error).toMatch(/unknown_key|signature/);
    expect(await bodies(s1, A)).not.toContain('forged');
    // Events signed with bob's real home key, built on S1's current state.
    const bobEvent = (type: string, content: Record<string, unknown>, stateKey?: string): Promise<Pdu> =>
      eventOnS1(roomId, bob.userId, bob.serverName, bob.homes[0]!, type, content, stateKey);
    const errorOf = async (pdu: unknown): Promise<string | undefined> => {
      const answer = await send(s2, bob.serverName, [pdu]);
      expect(answer.status).toBe(200);
      return Object.values((answer.body as { pdus: Record<string, { error?: string }> }).pdus)[0]?.error;
    };
    // A changed body under a valid signature: the content hash fails.
    const genuine = await bobEvent('m.room.message', { body: 'genuine' });
    expect(await errorOf({ ...genuine, content: { body: 'changed' } })).toMatch(/hash/i);
    // bob has no power to change the power levels.
    const levels = (await s1.home.rooms!.stateEvent(A, roomId, 'm.room.power_levels', ''))!.pdu.content;
    const grab = await bobEvent('m.room.power_levels', { ...levels, users: { [bob.userId]: 100 } }, '');
    expect(await errorOf(grab)).toBeDefined();
    // Oversized: over the spec's 64 KiB per PDU.
    expect(await errorOf(await bobEvent('m.room.message', { body: 'x'.repeat(70_000) }))).toMatch(/large|size|65/i);
    // Kicked, bob's server can no longer put messages in the room.
    await s1.home.rooms!.membership(A, roomId, { action: 'kick', target: bob.userId });
    expect(await errorOf(await bobEvent('m.room.message', { body: 'after the kick' }))).toBeDefined();
    const texts = await bodies(s1, A);
    for (const text of ['forged', 'changed', 'after the kick']) expect(texts).not.toContain(text);
    const levelsNow = (await s1.home.rooms!.stateEvent(A, roomId, 'm.room.power_levels', ''))!.pdu.content;
    expect((levelsNow['users'] as Record<string, number>)[bob.userId]).toBeUndefined();
    const refused = s1.home.federation!.stats.refused;
    expect(refused['signature']).toBeGreaterThanOrEqual(1);
    expect(refused['content_hash']).toBeGreaterThanOrEqual(1);
    expect(refused['format']).toBeGreaterThanOrEqual(1);
    // The power grab and the message after the kick fail the authorization rules (kept as rejected evidence).
    expect((refused['auth_events'] ?? 0) + (refused['auth_state'] ?? 0)).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("a home whose operator blocked a room refuses to countersign its user's invite into it", async () => {
    const { roomId: blocked } = await s1.home.rooms!.createRoom(A, {
      preset: 'private_chat',
      invite: [],
      initialState: [],
      name: 'blocked on S2',
      isDirect: false,
    });
    await s2.blocks.blockRoom(blocked, 'Spam');
    const refused = await s1.home.rooms!.membership(A, blocked, { action: 'invite', target: bob.userId }).then(
      () => undefined,
      (err: unknown) => err as { errcode?: string; message?: string },
    );
    expect(refused?.message).toContain(`Room ${blocked} is blocked by the server's administrator.`);
    // Nothing was made: bob is not invited on S1.
    const state = await s1.rooms.currentState(blocked);
    expect(state.has(stateKeyOf('m.room.member', bob.userId))).toBe(false);
    // Lifted, the same invite goes through.
    expect(await s2.blocks.unblockRoom(blocked)).toBe(true);
    await s1.home.rooms!.membership(A, blocked, { action: 'invite', target: bob.userId });
    expect((await s1.rooms.currentState(blocked)).has(stateKeyOf('m.room.member', bob.userId))).toBe(true);
    // alice leaves it, so that the home added to her account next has one room to take in, as that test counts.
    await s1.home.rooms!.membership(A, blocked, { action: 'leave' });
  }, 60_000);

  it("a home added to alice's account later takes in her room from her homes, and the next message reaches it", async () => {
    const fixture = makeHome(`federation:${backend}:alice:added`, 'server', 'added');
    const document = withHome(alice, alice.document, fixture);
    // alice's homes take the new document (as adding a home gives it to them), then the new home starts.
    for (const running of [s1, laptop]) {
      await running.replica.offerDocument(alice.serverName, document, 'test');
      await running.home.hostAccount(alice.serverName);
    }
    added = await openHome(backend, fixture);
    await added.replica.hostAccount(document, { custody: 'self' });
    await added.home.start();
    expect(await added.home.rooms!.holds(roomId)).toBe(false);
    await connect(added, s1);
    // The account's memberships replicate (with their room events); the room itself is taken in from S1.
    await waitFor(async () => added!.home.rooms!.holds(roomId), 'the added home to hold the room', 60_000);
    const latest = (await s1.rooms.forwardExtremities(roomId, 10)).map((e) => e.eventId).sort();
    await waitFor(
      async () =>
        JSON.stringify((await added!.rooms.forwardExtremities(roomId, 10)).map((e) => e.eventId).sort()) ===
        JSON.stringify(latest),
      "the added home at S1's latest events",
      30_000,
    );
    // The room's current state is set just after its latest event is stored (another transaction): read once set.
    await waitFor(
      async () => {
        const members = await added!.home.rooms!.members(A, roomId).catch(() => []);
        return members.find((m) => m.pdu.state_key === alice.userId)?.pdu.content['membership'] === 'join';
      },
      'alice joined in the state the added home took in',
      30_000,
    );
    // Taken in, not delivered: S1 owed the new home nothing for the room's earlier events.
    expect(added.home.federation!.stats.takenIn).toBe(1);
    await s1.home.rooms!.send(A, roomId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'to all' } });
    await waitFor(
      async () => (await bodies(added!, A)).includes('to all'),
      'the next message on the added home',
      30_000,
    );
    // Paging back past what it took in, the added home fetches the older events (/backfill) from alice's homes:
    // the whole history, in the same order as on S1.
    const history = await everyBody(s1);
    expect(history.length).toBeGreaterThan(60);
    expect(await everyBody(added)).toEqual(history);
    expect(added.home.federation!.stats.backfilled).toBeGreaterThan(60);
  }, 120_000);
  describe('leaving a room not held (make_leave/send_leave)', () => {
    const C: RoomActor = { serverName: carol.serverName, userId: carol.userId, deviceId: 'CPHONE' };
    // carol's second home, added after the invite was fanned out.
    const second = makeHome(`federation:${backend}:carol:second`, 'server', 'second');
    let declined: string;
    let leaveId: string;

    it("carol's home without the room rejects alice's invite through alice's home", async () => {
      ({ roomId: declined } = await s1.home.rooms!.createRoom(A, {
        preset: 'private_chat',
        invite: [],
        initialState: [],
        name: 'declined',
        isDirect: false,
      }));
      // alice's invite, countersigned by carol's first home (the invite handshake), in the room on S1.
      await s1.rooms.putForeignDocument(carol.serverName, carol.document.seq, JSON.stringify(carol.document));
      const made = await eventOnS1(
        declined,
        alice.userId,
        alice.serverName,
        alice.homes[0]!,
        'm.room.member',
        {
          membership: 'invite',
        },
        carol.userId,
      );
      const invite = addSignature('11', made, {
        serverName: carol.serverName,
        keyId: `ed25519:${carol.homes[0]!.peerId}`,
        secretKey: carol.homes[0]!.secretKey,
      });
      expect((await s1.home.rooms!.ingest(invite)).ok).toBe(true);
      const inviteId = eventIdOf('11', invite);
      // carol's second home, added after the invite was fanned out: the invite reaches it in her account's state.
      const fixture = second;
      const document = withHome(carol, carol.document, fixture);
      carolHome = await openHome(backend, fixture);
      await carolHome.replica.hostAccount(document, { custody: 'self' });
      await carolHome.rooms.putForeignDocument(alice.serverName, alice.document.seq, JSON.stringify(alice.document));
      await carolHome.home.start();
      await carolHome.home.applyLocal(carol.serverName, [
        {
          op: 'member.set',
          key: declined,
          body: { room_id: declined, membership: 'invite', event: { ...invite, event_id: inviteId } },
        },
      ]);
      await connect(carolHome, s1);
      expect(await carolHome.home.rooms!.holds(declined)).toBe(false);
      ({ eventId: leaveId } = await carolHome.home.rooms!.membership(C, declined, { action: 'leave' }, [
        alice.serverName,
      ]));
      // alice's home took the leave into the room: carol's membership there is the leave made on her home.
      const members = await s1.home.rooms!.members(A, declined);
      const own = members.find((m) => m.pdu.state_key === carol.userId);
      expect(own?.eventId).toBe(leaveId);
      expect(own?.pdu.content['membership']).toBe('leave');
      expect(own?.pdu.signatures?.[carol.serverName]?.[`ed25519:${fixture.peerId}`]).toBeDefined();
      // carol's account now says leave, with the event (what /sync lists a room not held from): the invite is gone.
      const membership = (await carolHome.replica.state(carol.serverName)).memberships[declined];
      expect(membership?.['membership']).toBe('leave');
      expect((membership?.['event'] as { event_id?: string } | undefined)?.event_id).toBe(leaveId);
      expect(await carolHome.home.rooms!.holds(declined)).toBe(false);
      // alice's home fans the leave out as if it had made it (carol's home that made it does not hold the room):
      // to alice's laptop, and to carol's first home (away: it waits in the outbox), not back to its maker.
      await waitFor(
        async () => (await laptop.rooms.eventsByIds([leaveId])).has(leaveId),
        "the leave on alice's laptop",
        30_000,
      );
      await waitFor(
        async () => (await s1.rooms.pendingDeliveries(carol.homes[0]!.peerId, 50)).some((p) => p.eventId === leaveId),
        "the leave owed to carol's first home",
        30_000,
      );
      expect((await s1.rooms.pendingDeliveries(fixture.peerId, 50)).some((p) => p.eventId === leaveId)).toBe(false);
    }, 90_000);

    it('make_leave and send_leave refuse what is not a leave of a user of the origin, and store nothing', async () => {
      const home = carolHome!;
      const ask = (method: string, path: string, body?: unknown) =>
        federationRequest(home.home.host, s1.home.peerId, {
          method,
          path,
          query: { origin: carol.serverName },
          ...(body === undefined ? {} : { body }),
        });
      const makeLeave = (room: string, user: string) =>
        ask('GET', `/_matrix/federation/v1/make_leave/${encodeURIComponent(room)}/${encodeURIComponent(user)}`);
      // alice is not a user of carol's account; a room S1 does not hold; carol, who has left, cannot leave again.
      expect((await makeLeave(declined, alice.userId)).status).toBe(403);
      expect((await makeLeave(`!nowhere:${alice.serverName}`, carol.userId)).status).toBe(404);
      const again = await makeLeave(declined, carol.userId);
      expect(again.status).toBe(403);
      expect((again.body as { errcode?: string }).errcode).toBe('M_FORBIDDEN');
      const sendLeave = (room: string, eventId: string, pdu: unknown) =>
        ask('PUT', `/_matrix/federation/v2/send_leave/${encodeURIComponent(room)}/${encodeURIComponent(eventId)}`, pdu);
      const signer = second;
      const carolEvent = (room: string, type: string, content: Record<string, unknown>, stateKey?: string) =>
        eventOnS1(room, carol.userId, carol.serverName, signer, type, content, stateKey);
      const refusedAndNotStored = async (room: string, eventId: string, pdu: Pdu, status: number) => {
        const answer = await sendLeave(room, eventId, pdu);
        expect(answer.status).toBe(status);
        expect((await s1.rooms.eventsByIds([eventIdOf('11', pdu)])).size).toBe(0);
      };
      // Not a leave: a message, and a join.
      const message = await carolEvent(declined, 'm.room.message', { body: 'not a leave' });
      await refusedAndNotStored(declined, eventIdOf('11', message), message, 400);
      const join = await carolEvent(declined, 'm.room.member', { membership: 'join' }, carol.userId);
      await refusedAndNotStored(declined, eventIdOf('11', join), join, 400);
      // A leave of another room than the path's, and under another event id.
      const leave = await carolEvent(declined, 'm.room.member', { membership: 'leave' }, carol.userId);
      const { roomId: other } = await s1.home.rooms!.createRoom(A, {
        preset: 'private_chat',
        invite: [],
        initialState: [],
        isDirect: false,
      });
      await refusedAndNotStored(other, eventIdOf('11', leave), leave, 400);
      await refusedAndNotStored(declined, leaveId, leave, 400);
      // A leave of alice (another account's user) sent as carol.
      const ofAlice = await eventOnS1(
        declined,
        alice.userId,
        carol.serverName,
        signer,
        'm.room.member',
        {
          membership: 'leave',
        },
        alice.userId,
      );
      await refusedAndNotStored(declined, eventIdOf('11', ofAlice), ofAlice, 400);
      // A bad signature: signed by a key carol's account does not name.
      const forged = await eventOnS1(
        declined,
        carol.userId,
        carol.serverName,
        stranger,
        'm.room.member',
        {
          membership: 'leave',
        },
        carol.userId,
      );
      await refusedAndNotStored(declined, eventIdOf('11', forged), forged, 403);
      // Still carol's one leave in the room.
      const own = (await s1.home.rooms!.members(A, declined)).find((m) => m.pdu.state_key === carol.userId);
      expect(own?.eventId).toBe(leaveId);
    }, 60_000);
  });
});
