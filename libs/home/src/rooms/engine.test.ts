// The room engine on real storage (PostgreSQL and PGlite): createRoom's state per preset, two accounts hosted on
// one home inviting, joining and talking (the same order both ways), state, kicks and bans under power levels,
// redactions, client transaction ids, forged events refused by the one accept pipeline, /sync entries, leaving
// and forgetting.
import { MatrixError } from '@polyhome/matrix/errors';
import type { CreateRoomRequest, RoomActor } from '@polyhome/matrix';
import { buildEvent, eventIdOf, signPdu, stateKeyOf, type Pdu } from '@polyhome/rooms';
import { openStorage, SqlReplicaStore, SqlRoomStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import { makeAccount, makeHome, withHome, withoutHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoomEngine } from './engine.js';

const home = makeHome('room-engine:home', 'server', 'home');
const alice = makeAccount({ seed: 'room-engine:alice', localpart: 'alice', homes: 1 });
const bob = makeAccount({ seed: 'room-engine:bob', localpart: 'bob', homes: 1 });
const dave = makeAccount({ seed: 'room-engine:dave', localpart: 'dave', homes: 1 });
/** Hosted elsewhere: its document is not held here. */
const carol = makeAccount({ seed: 'room-engine:carol', localpart: 'carol', homes: 1 });
/** Alice's second home, revoked in the document held here. */
const revoked = makeHome('room-engine:revoked', 'client', 'old');
const stranger = makeHome('room-engine:stranger', 'client', 'stranger');

const A: RoomActor = { serverName: alice.serverName, userId: alice.userId, deviceId: 'ADEVICE' };
const B: RoomActor = { serverName: bob.serverName, userId: bob.userId, deviceId: 'BDEVICE' };
const D: RoomActor = { serverName: dave.serverName, userId: dave.userId, deviceId: 'DDEVICE' };

function request(extra: Partial<CreateRoomRequest> = {}): CreateRoomRequest {
  return { invite: [], isDirect: false, initialState: [], ...extra };
}

async function refusal(promise: Promise<unknown>): Promise<MatrixError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MatrixError);
  return error as MatrixError;
}

describe.each(STORAGE_BACKENDS)('room engine on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let rooms: SqlRoomStore;
  let engine: RoomEngine;
  const woken: string[][] = [];

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const replica = new SqlReplicaStore(storage.dataSource);
    let aliceDocument = withHome(alice, alice.document, home);
    aliceDocument = withHome(alice, aliceDocument, revoked);
    aliceDocument = withoutHome(alice, aliceDocument, revoked.peerId, 0);
    await replica.hostAccounts(
      [aliceDocument, withHome(bob, bob.document, home), withHome(dave, dave.document, home)],
      { custody: 'self' },
    );
    rooms = new SqlRoomStore(storage.dataSource);
    engine = new RoomEngine({ store: rooms, documents: replica, nodeKey: home.secretKey });
    engine.onRoomEvents((servers) => woken.push(servers));
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  /** The room's current state as type/state key → content. */
  async function contents(actor: RoomActor, roomId: string): Promise<Map<string, Record<string, unknown>>> {
    const state = await engine.state(actor, roomId);
    return new Map(state.map((e) => [stateKeyOf(e.pdu.type, e.pdu.state_key!), e.pdu.content]));
  }

  /** A room of alice that bob joined. */
  async function sharedRoom(extra: Partial<CreateRoomRequest> = {}): Promise<string> {
    const { roomId } = await engine.createRoom(A, request({ invite: [B.userId], ...extra }));
    await engine.membership(B, roomId, { action: 'join' });
    return roomId;
  }

  it('createRoom makes the spec sequence: private_chat by default, with name, topic and invites', async () => {
    const { roomId } = await engine.createRoom(
      A,
      request({ name: 'Plans', topic: 'what next', invite: [B.userId], isDirect: true }),
    );
    expect(roomId).toMatch(new RegExp(`^![A-Za-z0-9_-]+:${alice.serverName}$`));
    const state = await contents(A, roomId);
    expect(state.get(stateKeyOf('m.room.create', ''))).toEqual({ room_version: '11' });
    expect(state.get(stateKeyOf('m.room.member', A.userId))).toEqual({ membership: 'join' });
    expect(state.get(stateKeyOf('m.room.member', B.userId))).toEqual({ membership: 'invite', is_direct: true });
    expect(state.get(stateKeyOf('m.room.join_rules', ''))).toEqual({ join_rule: 'invite' });
    expect(state.get(stateKeyOf('m.room.history_visibility', ''))).toEqual({ history_visibility: 'shared' });
    expect(state.get(stateKeyOf('m.room.guest_access', ''))).toEqual({ guest_access: 'can_join' });
    expect(state.get(stateKeyOf('m.room.name', ''))).toEqual({ name: 'Plans' });
    expect(state.get(stateKeyOf('m.room.topic', ''))).toEqual({ topic: 'what next' });
    const power = state.get(stateKeyOf('m.room.power_levels', ''))!;
    expect(power['users']).toEqual({ [A.userId]: 100 });
    // The sequence is a chain in the spec's order, every event signed by this home for alice's account.
    const page = await engine.messages(A, roomId, { dir: 'f', limit: 20 });
    expect(page.events.map((e) => e.pdu.type)).toEqual([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.name',
      'm.room.topic',
      'm.room.member',
    ]);
    expect(page.events.map((e) => e.pdu.depth)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const event of page.events) {
      expect(Object.keys(event.pdu.signatures[alice.serverName]!)).toEqual([`ed25519:${home.peerId}`]);
      expect(eventIdOf('11', event.pdu)).toBe(event.eventId);
    }
    expect(woken.some((servers) => servers.includes(bob.serverName))).toBe(true);
  });

  it('createRoom presets: public_chat by visibility, trusted_private_chat invitees at 100, overrides, v10', async () => {
    const open = await engine.createRoom(A, request({ visibility: 'public' }));
    const openState = await contents(A, open.roomId);
    expect(openState.get(stateKeyOf('m.room.join_rules', ''))).toEqual({ join_rule: 'public' });
    expect(openState.get(stateKeyOf('m.room.guest_access', ''))).toEqual({ guest_access: 'forbidden' });

    const trusted = await engine.createRoom(
      A,
      request({
        preset: 'trusted_private_chat',
        invite: [B.userId],
        powerLevelOverride: { events_default: 10 },
        initialState: [{ type: 'm.room.encryption', stateKey: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      }),
    );
    const trustedState = await contents(A, trusted.roomId);
    const power = trustedState.get(stateKeyOf('m.room.power_levels', ''))!;
    expect(power['users']).toEqual({ [A.userId]: 100, [B.userId]: 100 });
    expect(power['events_default']).toBe(10);
    expect(trustedState.get(stateKeyOf('m.room.encryption', ''))).toEqual({ algorithm: 'm.megolm.v1.aes-sha2' });

    const v10 = await engine.createRoom(A, request({ roomVersion: '10' }));
    expect((await contents(A, v10.roomId)).get(stateKeyOf('m.room.create', ''))).toEqual({
      room_version: '10',
      creator: A.userId,
    });
    const unsupported = await refusal(engine.createRoom(A, request({ roomVersion: '9' as never })));
    expect(unsupported.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    expect(unsupported.status).toBe(400);
    const remote = await refusal(engine.createRoom(A, request({ invite: [carol.userId] })));
    expect(remote.errcode).toBe('M_FORBIDDEN');
    expect(remote.message).toMatch(/federation/);
  });

  it('two accounts: invite, join, both send; the same order through messages both ways and context', async () => {
    const roomId = await sharedRoom();
    expect(await engine.joinedRooms(B)).toContain(roomId);
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const actor = i % 2 === 0 ? A : B;
      sent.push((await engine.send(actor, roomId, { type: 'm.room.message', content: { body: `m${i}` } })).eventId);
    }
    for (const actor of [A, B]) {
      const back = await engine.messages(actor, roomId, { dir: 'b', limit: 6 });
      expect(back.events.map((e) => e.eventId)).toEqual([...sent].reverse());
      expect(back.end).toBeDefined();
      const forward = await engine.messages(actor, roomId, { dir: 'f', limit: 100 });
      expect(forward.events.map((e) => e.eventId).slice(-6)).toEqual(sent);
      expect(forward.end).toBeUndefined();
    }
    const context = await engine.context(B, roomId, sent[3]!, 4);
    expect(context.event.eventId).toBe(sent[3]);
    expect(context.before.events.map((e) => e.eventId)).toEqual([sent[2], sent[1]]);
    expect(context.after.events.map((e) => e.eventId)).toEqual([sent[4], sent[5]]);
    expect(context.state.some((e) => e.pdu.type === 'm.room.create')).toBe(true);
    const members = await engine.members(A, roomId);
    expect(members.map((e) => [e.pdu.state_key, e.pdu.content['membership']]).sort()).toEqual(
      [
        [A.userId, 'join'],
        [B.userId, 'join'],
      ].sort(),
    );
    // Carol's account is not held here; a room not known is not found.
    expect((await refusal(engine.messages(A, '!nowhere:x', { dir: 'b', limit: 1 }))).errcode).toBe('M_FORBIDDEN');
  });

  it('sends made at once in one room form a chain (one extremity, one depth each)', async () => {
    const roomId = await sharedRoom();
    const sent = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        engine.send(i % 2 === 0 ? A : B, roomId, { type: 'm.room.message', content: { body: `c${i}` } }),
      ),
    );
    const extremities = await rooms.forwardExtremities(roomId);
    expect(extremities).toHaveLength(1);
    const held = await rooms.eventsByIds(sent.map((s) => s.eventId));
    const depths = [...held.values()].map((e) => e.depth).sort((x, y) => x - y);
    expect(new Set(depths).size).toBe(8);
    expect(depths.at(-1)! - depths[0]!).toBe(7);
    expect(extremities[0]!.depth).toBe(depths.at(-1));
  });

  it('puts and gets state; a user without the power is refused with nothing stored', async () => {
    const roomId = await sharedRoom();
    await engine.send(A, roomId, { type: 'm.room.name', stateKey: '', content: { name: 'new name' } });
    expect((await engine.stateEvent(B, roomId, 'm.room.name', ''))?.pdu.content).toEqual({ name: 'new name' });
    expect(await engine.stateEvent(B, roomId, 'm.room.avatar', '')).toBeNull();
    const position = await engine.position();
    const refused = await refusal(
      engine.send(B, roomId, { type: 'm.room.name', stateKey: '', content: { name: 'mine' } }),
    );
    expect(refused.errcode).toBe('M_FORBIDDEN');
    expect(refused.message).toMatch(/power level 50/);
    expect(await engine.position()).toBe(position);
    expect((await engine.stateEvent(A, roomId, 'm.room.name', ''))?.pdu.content).toEqual({ name: 'new name' });
  });

  it('joins a public room without an invite, an invite-only one only with an invite', async () => {
    const { roomId: open } = await engine.createRoom(A, request({ preset: 'public_chat' }));
    await engine.membership(B, open, { action: 'join' });
    expect(await engine.joinedRooms(B)).toContain(open);
    const { roomId: closed } = await engine.createRoom(A, request());
    const refused = await refusal(engine.membership(B, closed, { action: 'join' }));
    expect(refused.errcode).toBe('M_FORBIDDEN');
    expect((await refusal(engine.membership(B, '!unknown:x', { action: 'join' }))).errcode).toBe('M_NOT_FOUND');
    expect((await refusal(engine.state(B, closed))).errcode).toBe('M_FORBIDDEN');
    expect((await refusal(engine.send(B, closed, { type: 'm.room.message', content: {} }))).errcode).toBe(
      'M_FORBIDDEN',
    );
  });

  it('history visibility: joined hides what came before the join, shared shows it', async () => {
    for (const visibility of ['joined', 'shared'] as const) {
      const { roomId } = await engine.createRoom(
        A,
        request({
          invite: [B.userId],
          initialState: [
            { type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: visibility } },
          ],
        }),
      );
      const early = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'early' } });
      await engine.membership(B, roomId, { action: 'join' });
      const late = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'late' } });
      const seen = (await engine.messages(B, roomId, { dir: 'b', limit: 50 })).events.map((e) => e.eventId);
      expect(seen).toContain(late.eventId);
      expect(seen.includes(early.eventId)).toBe(visibility === 'shared');
      if (visibility === 'joined') {
        expect((await refusal(engine.event(B, roomId, early.eventId))).errcode).toBe('M_NOT_FOUND');
      }
    }
  });

  it('refuses bad input with the spec codes and stores nothing', async () => {
    const roomId = await sharedRoom();
    const position = await engine.position();
    const big = await refusal(
      engine.send(A, roomId, { type: 'm.room.message', content: { body: 'x'.repeat(70_000) } }),
    );
    expect(big.errcode).toBe('M_TOO_LARGE');
    const float = await refusal(engine.send(A, roomId, { type: 'm.room.message', content: { n: 1.5 } }));
    expect(float.errcode).toBe('M_BAD_JSON');
    const txn = await refusal(engine.send(A, roomId, { type: 'm.room.message', content: {}, txnId: 'x'.repeat(300) }));
    expect(txn.errcode).toBe('M_INVALID_PARAM');
    expect((await refusal(engine.send(A, roomId, { type: 'm.room.create', stateKey: '', content: {} }))).errcode).toBe(
      'M_FORBIDDEN',
    );
    const stranger = { serverName: carol.serverName, userId: carol.userId, deviceId: 'C' };
    expect((await refusal(engine.createRoom(stranger, request()))).errcode).toBe('M_FORBIDDEN');
    expect(await engine.position()).toBe(position);
  });

  it('kick, ban and unban pass the power checks; without power they are refused and nothing is stored', async () => {
    const roomId = await sharedRoom();
    const position = await engine.position();
    for (const action of ['kick', 'ban'] as const) {
      const refused = await refusal(engine.membership(B, roomId, { action, target: A.userId }));
      expect(refused.errcode).toBe('M_FORBIDDEN');
    }
    expect(await engine.position()).toBe(position);
    await engine.membership(A, roomId, { action: 'kick', target: B.userId, reason: 'out' });
    expect((await engine.stateEvent(A, roomId, 'm.room.member', B.userId))?.pdu.content).toEqual({
      membership: 'leave',
      reason: 'out',
    });
    expect(await engine.joinedRooms(B)).not.toContain(roomId);
    await engine.membership(A, roomId, { action: 'ban', target: B.userId });
    expect((await refusal(engine.membership(B, roomId, { action: 'join' }))).errcode).toBe('M_FORBIDDEN');
    await engine.membership(A, roomId, { action: 'unban', target: B.userId });
    expect((await engine.stateEvent(A, roomId, 'm.room.member', B.userId))?.pdu.content).toEqual({
      membership: 'leave',
    });
    // Unbanned is not invited: the private room still needs an invite.
    expect((await refusal(engine.membership(B, roomId, { action: 'join' }))).errcode).toBe('M_FORBIDDEN');
    await engine.membership(A, roomId, { action: 'invite', target: B.userId });
    await engine.membership(B, roomId, { action: 'join' });
    expect(await engine.joinedRooms(B)).toContain(roomId);
  });

  it('redacts: reads give the redacted form with the redaction id; the stored PDU stays as received', async () => {
    const roomId = await sharedRoom();
    const { eventId } = await engine.send(B, roomId, { type: 'm.room.message', content: { body: 'oops' } });
    expect((await refusal(engine.redact(B, roomId, '$unknown', undefined, 't0'))).errcode).toBe('M_NOT_FOUND');
    const { eventId: redaction } = await engine.redact(A, roomId, eventId, 'spam', 'r1');
    const view = await engine.event(B, roomId, eventId);
    expect(view.redactedBy).toBe(redaction);
    expect(view.pdu.content).toEqual({});
    expect((await rooms.eventsByIds([eventId])).get(eventId)?.pdu.content).toEqual({ body: 'oops' });
    const redactionView = await engine.event(A, roomId, redaction);
    expect(redactionView.pdu.content).toEqual({ redacts: eventId, reason: 'spam' });
    // Bob (power 0) may redact his own events, not alice's.
    const { eventId: mine } = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'mine' } });
    expect((await refusal(engine.redact(B, roomId, mine, undefined, 'r2'))).errcode).toBe('M_FORBIDDEN');
    expect((await engine.event(B, roomId, mine)).redactedBy).toBeUndefined();
  });

  it('a transaction id makes one event: a retry returns it', async () => {
    const roomId = await sharedRoom();
    const first = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'once' }, txnId: 'tx1' });
    const position = await engine.position();
    const again = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'once' }, txnId: 'tx1' });
    expect(again).toEqual(first);
    expect(await engine.position()).toBe(position);
    // Another device's transaction id is its own.
    const other = await engine.send({ ...A, deviceId: 'OTHER' }, roomId, {
      type: 'm.room.message',
      content: { body: 'once' },
      txnId: 'tx1',
    });
    expect(other.eventId).not.toBe(first.eventId);
  });

  describe('forged events fed to the accept pipeline are refused and not stored', () => {
    let roomId: string;

    /** An event of bob's account built on the room's current state, signed with `key` as `keyId`. */
    async function forge(
      options: { keyId?: string; key?: typeof home.secretKey; sender?: string; content?: Record<string, unknown> } = {},
    ): Promise<Pdu> {
      const state = await rooms.currentState(roomId);
      const extremities = await rooms.forwardExtremities(roomId);
      const prev = await rooms.getEvents(extremities.map((e) => e.eventId));
      const template = buildEvent({
        version: '11',
        roomId,
        sender: options.sender ?? B.userId,
        type: 'm.room.message',
        content: options.content ?? { body: 'forged' },
        prevEvents: extremities.map((e) => ({ eventId: e.eventId, pdu: prev.get(e.eventId)! })),
        state,
        originServerTs: Date.now(),
      });
      const serverName = (options.sender ?? B.userId).slice((options.sender ?? B.userId).indexOf(':') + 1);
      return signPdu('11', template, {
        serverName,
        keyId: options.keyId ?? `ed25519:${home.peerId}`,
        secretKey: options.key ?? home.secretKey,
      });
    }

    async function expectRefused(pdu: unknown, stage: string): Promise<void> {
      const position = await engine.position();
      const outcome = await engine.ingest(pdu);
      expect(outcome).toMatchObject({ ok: false, stage });
      expect(await engine.position()).toBe(position);
      const id = eventIdOf('11', pdu as Pdu);
      const held = (await rooms.eventsByIds([id])).get(id);
      // Nothing, or kept as rejected evidence: never in the timeline.
      if (held !== undefined) {
        expect(held.rejected).not.toBeNull();
        expect(held.streamOrdering).toBeNull();
      }
    }

    beforeAll(async () => {
      roomId = await sharedRoom();
    });

    it('a well-made event is accepted (the control)', async () => {
      const outcome = await engine.ingest(await forge({ content: { body: 'genuine' } }));
      expect(outcome).toMatchObject({ ok: true, inserted: true });
    });

    it('a bad signature', async () => {
      const pdu = await forge();
      const signatures = pdu.signatures[bob.serverName]!;
      const keyId = Object.keys(signatures)[0]!;
      const sig = signatures[keyId]!;
      const flipped = sig.slice(0, 4) + (sig[4] === 'A' ? 'B' : 'A') + sig.slice(5);
      await expectRefused({ ...pdu, signatures: { [bob.serverName]: { [keyId]: flipped } } }, 'signature');
    });

    it('the key of a PeerId that is not a home of the account, or a revoked one', async () => {
      await expectRefused(await forge({ keyId: `ed25519:${stranger.peerId}`, key: stranger.secretKey }), 'signature');
      await expectRefused(
        await forge({ sender: A.userId, keyId: `ed25519:${revoked.peerId}`, key: revoked.secretKey }),
        'signature',
      );
      // The account key itself signs for its server (ed25519:root).
      const byRoot = await forge({ sender: A.userId, keyId: 'ed25519:root', key: alice.rootKey });
      expect(await engine.ingest(byRoot)).toMatchObject({ ok: true });
    });

    it('a wrong content hash', async () => {
      const pdu = await forge();
      // The signature covers the redacted event (no message content): it still verifies, the hash does not.
      await expectRefused({ ...pdu, content: { body: 'altered after signing' } }, 'content_hash');
    });

    it('an auth failure against the state before it: auth events from before the sender was kicked', async () => {
      const stale = await rooms.currentState(roomId);
      await engine.membership(A, roomId, { action: 'kick', target: B.userId });
      const extremities = await rooms.forwardExtremities(roomId);
      const prev = await rooms.getEvents(extremities.map((e) => e.eventId));
      const template = buildEvent({
        version: '11',
        roomId,
        sender: B.userId,
        type: 'm.room.message',
        content: { body: 'after the kick' },
        prevEvents: extremities.map((e) => ({ eventId: e.eventId, pdu: prev.get(e.eventId)! })),
        state: stale,
        originServerTs: Date.now(),
      });
      const pdu = signPdu('11', template, {
        serverName: bob.serverName,
        keyId: `ed25519:${home.peerId}`,
        secretKey: home.secretKey,
      });
      await expectRefused(pdu, 'auth_state');
      const id = eventIdOf('11', pdu);
      // Received events failing the rules are kept as rejected evidence.
      expect((await rooms.eventsByIds([id])).get(id)?.rejected?.code).toBe('not_in_room');
      await engine.membership(A, roomId, { action: 'invite', target: B.userId });
      await engine.membership(B, roomId, { action: 'join' });
    });

    it('an auth failure: a sender who is not in the room', async () => {
      const outsider = makeAccount({ seed: 'room-engine:outsider', localpart: 'eve', homes: 1 });
      const pdu = await forge({
        sender: outsider.userId,
        keyId: 'ed25519:root',
        key: outsider.rootKey,
      });
      await expectRefused(pdu, 'auth_events');
    });
  });

  it('syncRooms: initial, incremental, limited, invites and rooms left', async () => {
    const { roomId } = await engine.createRoom(A, request({ name: 'sync', invite: [B.userId] }));
    const initialB = await engine.syncRooms(B, { to: await engine.position(), timelineLimit: 10 });
    const invite = initialB.find((e) => e.roomId === roomId)!;
    expect(invite.membership).toBe('invite');
    expect(invite.inviteState?.at(-1)?.pdu.content).toEqual({ membership: 'invite' });
    expect(invite.inviteState?.some((e) => e.pdu.type === 'm.room.name')).toBe(true);

    await engine.membership(B, roomId, { action: 'join' });
    await engine.membership(A, roomId, { action: 'invite', target: D.userId });
    await engine.membership(D, roomId, { action: 'join' });
    let since = await engine.position();
    const initial = await engine.syncRooms(A, { to: since, timelineLimit: 3 });
    const entry = initial.find((e) => e.roomId === roomId)!;
    expect(entry.membership).toBe('join');
    expect(entry.limited).toBe(true);
    expect(entry.timeline).toHaveLength(3);
    expect(entry.prevBatch).not.toBeNull();
    // The whole state at the start of the timeline.
    expect(entry.state.some((e) => e.pdu.type === 'm.room.create')).toBe(true);
    // Paging back from prevBatch continues before the timeline.
    const back = await engine.messages(A, roomId, { from: entry.prevBatch!, dir: 'b', limit: 1 });
    expect(back.events[0]?.pdu.depth).toBe(entry.timeline[0]!.pdu.depth - 1);

    const one = await engine.send(B, roomId, { type: 'm.room.message', content: { body: 'one' } });
    let to = await engine.position();
    const incremental = await engine.syncRooms(A, { since, to, timelineLimit: 3 });
    expect(incremental.map((e) => e.roomId)).toEqual([roomId]);
    expect(incremental[0]).toMatchObject({ limited: false, state: [] });
    expect(incremental[0]!.timeline.map((e) => e.eventId)).toEqual([one.eventId]);

    since = to;
    for (let i = 0; i < 4; i++) await engine.send(A, roomId, { type: 'm.room.message', content: { body: `${i}` } });
    to = await engine.position();
    const limited = (await engine.syncRooms(A, { since, to, timelineLimit: 2 }))[0]!;
    expect(limited.limited).toBe(true);
    expect(limited.timeline.map((e) => e.pdu.content['body'])).toEqual(['2', '3']);
    expect(limited.state.length).toBeGreaterThan(0);
    // Lazy-loaded members: only the timeline's senders and the user syncing (not dave).
    const lazy = (await engine.syncRooms(B, { to, timelineLimit: 1, lazyLoadMembers: true })).find(
      (e) => e.roomId === roomId,
    )!;
    expect(lazy.timeline.map((e) => e.pdu.sender)).toEqual([A.userId]);
    expect(
      lazy.state
        .filter((e) => e.pdu.type === 'm.room.member')
        .map((e) => e.pdu.state_key)
        .sort(),
    ).toEqual([A.userId, B.userId].sort());
    // Nothing new: no entry.
    expect(await engine.syncRooms(A, { since: to, to, timelineLimit: 2 })).toEqual([]);

    await engine.membership(B, roomId, { action: 'leave' });
    await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'after bob left' } });
    const left = (await engine.syncRooms(B, { since: to, to: await engine.position(), timelineLimit: 5 })).find(
      (e) => e.roomId === roomId,
    )!;
    expect(left.membership).toBe('leave');
    expect(left.timeline.at(-1)?.pdu.content).toEqual({ membership: 'leave' });
  });

  it('a room joined since the last sync comes whole: its newest events, limited with prev_batch over the history', async () => {
    const { roomId } = await engine.createRoom(A, request({ name: 'history', preset: 'public_chat' }));
    for (let i = 0; i < 6; i++) await engine.send(A, roomId, { type: 'm.room.message', content: { body: `${i}` } });
    const since = await engine.position();
    await engine.membership(B, roomId, { action: 'join' });
    const entry = (await engine.syncRooms(B, { since, to: await engine.position(), timelineLimit: 3 })).find(
      (e) => e.roomId === roomId,
    )!;
    expect(entry.membership).toBe('join');
    // Not only the join (the one event after `since`): the client never had the room, so it pages back from here.
    expect(entry.timeline.map((e) => e.pdu.content['body'] ?? e.pdu.content['membership'])).toEqual(['4', '5', 'join']);
    expect(entry.limited).toBe(true);
    expect(entry.state.some((e) => e.pdu.type === 'm.room.create')).toBe(true);
    const back = await engine.messages(B, roomId, { from: entry.prevBatch!, dir: 'b', limit: 1 });
    expect(back.events[0]?.pdu.content['body']).toBe('3');
    // A whole room whose timeline reaches back to its creation is not limited.
    const small = await engine.createRoom(A, request({ name: 'small' }));
    const whole = (await engine.syncRooms(A, { to: await engine.position(), timelineLimit: 50 })).find(
      (e) => e.roomId === small.roomId,
    )!;
    expect(whole.timeline[0]?.pdu.type).toBe('m.room.create');
    expect(whole.limited).toBe(false);
  });

  it('a user who left reads up to the leave, and a forgotten room is not listed again', async () => {
    const roomId = await sharedRoom();
    const before = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'seen' } });
    expect((await refusal(engine.forget(B, roomId))).errcode).toBe('M_UNKNOWN');
    const position = await engine.position();
    await engine.membership(B, roomId, { action: 'leave' });
    const after = await engine.send(A, roomId, { type: 'm.room.message', content: { body: 'unseen' } });
    await engine.send(A, roomId, { type: 'm.room.topic', stateKey: '', content: { topic: 'later' } });

    const page = await engine.messages(B, roomId, { dir: 'b', limit: 10 });
    const ids = page.events.map((e) => e.eventId);
    expect(ids).toContain(before.eventId);
    expect(ids).not.toContain(after.eventId);
    expect((await engine.event(B, roomId, before.eventId)).eventId).toBe(before.eventId);
    expect((await refusal(engine.event(B, roomId, after.eventId))).errcode).toBe('M_NOT_FOUND');
    expect(await engine.stateEvent(B, roomId, 'm.room.topic', '')).toBeNull();
    expect((await engine.stateEvent(A, roomId, 'm.room.topic', ''))?.pdu.content).toEqual({ topic: 'later' });

    const to = await engine.position();
    expect((await engine.syncRooms(B, { since: position, to, timelineLimit: 5 })).map((e) => e.roomId)).toContain(
      roomId,
    );
    await engine.forget(B, roomId);
    expect((await engine.syncRooms(B, { since: position, to, timelineLimit: 5 })).map((e) => e.roomId)).not.toContain(
      roomId,
    );
  });
  it('stores an event with the current state it brings in one write: any position /sync takes has its membership', async () => {
    const { roomId } = await engine.createRoom(A, request());
    // A second engine over the same store, whose store calls the test sees.
    const persisted: Array<{ eventId: string; currentState?: ReadonlyMap<string, string> }> = [];
    const separateStateWrites: unknown[] = [];
    const watched = new Proxy(rooms, {
      get(target, name, receiver) {
        const value: unknown = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        if (name === 'setCurrentState')
          return (...args: unknown[]) => (separateStateWrites.push(args), value.apply(target, args));
        if (name === 'persistEvent')
          return (input: { eventId: string; currentState?: ReadonlyMap<string, string> }, ...rest: unknown[]) => {
            persisted.push(input);
            return value.apply(target, [input, ...rest]);
          };
        return value.bind(target);
      },
    });
    const watchedEngine = new RoomEngine({
      store: watched,
      documents: new SqlReplicaStore(storage.dataSource),
      nodeKey: home.secretKey,
    });
    const before = await watchedEngine.position();
    const { eventId } = await watchedEngine.membership(A, roomId, { action: 'invite', target: D.userId });
    expect(separateStateWrites).toEqual([]);
    const write = persisted.find((p) => p.eventId === eventId);
    expect(write?.currentState?.get(stateKeyOf('m.room.member', D.userId))).toBe(eventId);
    const after = await watchedEngine.position();
    expect(after).toBe(await rooms.currentStreamPosition());
    expect(after).toBeGreaterThan(before);
    const entries = await watchedEngine.syncRooms(D, { since: before, to: after, timelineLimit: 5 });
    expect(entries.find((e) => e.roomId === roomId)?.membership).toBe('invite');
  });
});
