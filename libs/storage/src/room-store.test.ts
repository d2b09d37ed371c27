// Matrix room storage on PostgreSQL and PGlite: idempotent persists, forward extremities through forks, merges
// and children that arrive before their parents (also when persisted at once), state groups that read the right
// map through long chains while storing bounded deltas, outliers and rejected events kept out of the timeline and
// the state, stream versus topological order with pagination tokens, client transaction ids, the current state
// log with memberships by server, and a failure midway that leaves nothing behind.
import type { RoomStore } from '@polyhome/home';
import { stateKeyOf, type Pdu, type StateTuple } from '@polyhome/rooms';
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { SqlReplicaStore } from './replica-store.js';
import { SqlTransactions } from './repositories/transaction.js';
import { SqlRoomStore, type StoredRoomEvent } from './room-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { table, type TableName } from './testing/tables.js';

/** What a test event says: its room, type, state key, prev events and depth (auth events are not checked here). */
interface EventSpec {
  room: string;
  type?: string;
  stateKey?: string;
  prev?: string[];
  depth: number;
  content?: Record<string, unknown>;
}

let clock = 1_700_000_000_000;

/** A hand-made PDU: the store verifies nothing, so hashes and signatures are placeholders. */
function pdu(spec: EventSpec): Pdu {
  return {
    room_id: spec.room,
    sender: '@alice:example',
    type: spec.type ?? 'm.room.message',
    ...(spec.stateKey === undefined ? {} : { state_key: spec.stateKey }),
    content: spec.content ?? { body: `at depth ${spec.depth}` },
    origin_server_ts: clock++,
    depth: spec.depth,
    prev_events: spec.prev ?? [],
    auth_events: [],
    hashes: { sha256: 'unchecked' },
    signatures: {},
  };
}

const ROOM_TABLES: TableName[] = [
  'room',
  'room_event',
  'room_event_edge',
  'room_event_auth',
  'room_forward_extremity',
  'room_missing_prev',
  'room_state_group',
  'room_state_group_entry',
  'room_current_state',
  'room_current_state_delta',
  'room_membership',
  'room_txn',
];

const ids = (events: StoredRoomEvent[]) => events.map((e) => e.eventId);

describe.each(STORAGE_BACKENDS)('room store on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlRoomStore;
  const alice = makeAccount({ seed: 'room-store:alice', homes: 1 });
  let rooms = 0;
  /** A fresh room id per test, so tests share the database but not their rooms. */
  const newRoom = () => `!room${++rooms}:example`;

  /** Persists a timeline event whose state before is the state after `after` (or empty for a create event). */
  async function add(eventId: string, spec: EventSpec, after?: string) {
    return store.persistEvent({
      eventId,
      roomVersion: '11',
      pdu: pdu(spec),
      stateBefore: after === undefined ? { state: new Map() } : { afterEvent: after },
    });
  }

  async function extremities(room: string): Promise<string[]> {
    return (await store.forwardExtremities(room)).map((e) => e.eventId).sort();
  }

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    await new SqlReplicaStore(storage.dataSource).hostAccounts([alice.document], { custody: 'self' });
    store = new SqlRoomStore(storage.dataSource);
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('satisfies the RoomStore port of @polyhome/home', () => {
    const port: RoomStore = store;
    expect(port).toBe(store);
  });

  it('persists an event once: a retry changes nothing and returns the same stream ordering', async () => {
    const room = newRoom();
    const create = pdu({ room, type: 'm.room.create', stateKey: '', depth: 1, content: { room_version: '11' } });
    const input = { eventId: '$create1', roomVersion: '11' as const, pdu: create, stateBefore: { state: new Map() } };
    const first = await store.persistEvent(input);
    expect(first.inserted).toBe(true);
    expect(first.streamOrdering).toBeGreaterThan(0);
    const groups = await table(storage, 'room_state_group').count({ roomId: room });
    expect(await store.persistEvent(input)).toEqual({ inserted: false, streamOrdering: first.streamOrdering });
    expect(await table(storage, 'room_event').count({ roomId: room })).toBe(1);
    expect(await table(storage, 'room_state_group').count({ roomId: room })).toBe(groups);
    expect(await store.roomVersion(room)).toBe('11');
    // The PDU comes back exactly as given.
    expect((await store.eventsByIds(['$create1'])).get('$create1')?.pdu).toEqual(create);
    expect((await store.getEvents(['$create1', '$unknown'])).get('$create1')).toEqual(create);
    expect(await store.stateAfter('$create1')).toEqual(new Map([[stateKeyOf('m.room.create', ''), '$create1']]));
    expect(await store.stateBefore('$create1')).toEqual(new Map());
  });

  it('refuses malformed input with a clear error and writes nothing', async () => {
    const room = newRoom();
    await expect(
      store.persistEvent({ eventId: '$bad', roomVersion: '11', pdu: { ...pdu({ room, depth: -1 }) } }),
    ).rejects.toThrow(/depth must be a non-negative integer/);
    await expect(
      store.persistEvent({ eventId: '$bad', roomVersion: '11', pdu: pdu({ room, depth: 1 }) }),
    ).rejects.toThrow(/needs stateBefore/);
    await expect(
      store.persistEvent({
        eventId: '$bad',
        roomVersion: '11',
        pdu: pdu({ room, depth: 1 }),
        stateBefore: { state: new Map([['no separator', '$x']]) },
      }),
    ).rejects.toThrow(/make keys with stateKeyOf/);
    expect(await store.hasEvents(['$bad'])).toEqual(new Set());
    expect(await table(storage, 'room').count({ roomId: room })).toBe(0);
    await expect(store.messages(room, { dir: 'b', limit: 5, from: 'nonsense' })).rejects.toThrow(
      /not a room pagination token/,
    );
    await expect(store.timelineSince(room, 0, 0)).rejects.toThrow(/limit must be a positive integer/);
  });

  it('keeps forward extremities through a fork, a merge and a child that arrives before its parent', async () => {
    const room = newRoom();
    await add('$A', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    expect(await extremities(room)).toEqual(['$A']);
    await add('$B', { room, prev: ['$A'], depth: 2 }, '$A');
    await add('$C', { room, prev: ['$A'], depth: 2 }, '$A');
    expect(await extremities(room)).toEqual(['$B', '$C']);
    await add('$D', { room, prev: ['$B', '$C'], depth: 3 }, '$B');
    expect(await store.forwardExtremities(room)).toEqual([{ eventId: '$D', depth: 3 }]);

    // $F names $E, which is not held yet: a gap, and $F is an extremity beside $D.
    await add('$F', { room, prev: ['$E'], depth: 5 }, '$D');
    expect(await extremities(room)).toEqual(['$D', '$F']);
    expect(await store.missingPrevEvents(room)).toEqual(['$E']);
    // $E arrives: it takes $D's place but is no extremity, since $F already references it.
    await add('$E', { room, prev: ['$D'], depth: 4 }, '$D');
    expect(await extremities(room)).toEqual(['$F']);
    expect(await store.missingPrevEvents(room)).toEqual([]);
    expect(await store.hasEvents(['$A', '$E', '$Z'])).toEqual(new Set(['$A', '$E']));
  });

  it('reads the right state through 300 state changes while the delta chains stay bounded', async () => {
    const room = newRoom();
    const create = stateKeyOf('m.room.create', '');
    await add('$s0', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    const expectedAfter: Array<Map<StateTuple, string>> = [new Map([[create, '$s0']])];
    for (let i = 1; i <= 300; i++) {
      // 150 users, each changing twice: deltas replace keys as well as add them.
      const user = `@u${i % 150}:example`;
      await add(
        `$s${i}`,
        { room, type: 'm.room.member', stateKey: user, prev: [`$s${i - 1}`], depth: i + 1 },
        `$s${i - 1}`,
      );
      expectedAfter.push(new Map(expectedAfter[i - 1]!).set(stateKeyOf('m.room.member', user), `$s${i}`));
    }
    for (const i of [1, 2, 99, 100, 101, 102, 150, 151, 200, 201, 202, 299, 300]) {
      expect(await store.stateBefore(`$s${i}`)).toEqual(expectedAfter[i - 1]);
      expect(await store.stateAfter(`$s${i}`)).toEqual(expectedAfter[i]);
    }

    const groups = await table(storage, 'room_state_group').rows({ roomId: room });
    const hops = groups.map((g) => g['deltaHops'] as number);
    // One group per state change (plus the empty one before the create event), never a copy per event.
    expect(groups).toHaveLength(302);
    expect(Math.max(...hops)).toBe(100);
    const snapshots = groups.filter((g) => g['deltaHops'] === 0);
    expect(snapshots).toHaveLength(3);
    const groupIds = groups.map((g) => g['id'] as string);
    let entries = 0;
    for (const id of groupIds) entries += await table(storage, 'room_state_group_entry').count({ stateGroup: id });
    // 301 one-entry deltas and two snapshots of at most 151 entries; a copy per event would be some 35,000 rows.
    expect(entries).toBeLessThanOrEqual(301 + 2 * 151);

    // A whole map equal to the state after a prev event reuses its group; one key off becomes a one-entry delta.
    const last = expectedAfter[300]!;
    await store.persistEvent({
      eventId: '$same',
      roomVersion: '11',
      pdu: pdu({ room, prev: ['$s300'], depth: 302 }),
      stateBefore: { state: last },
    });
    expect(await table(storage, 'room_state_group').count({ roomId: room })).toBe(302);
    const changed = new Map(last).set(stateKeyOf('m.room.topic', ''), '$s0');
    changed.delete(stateKeyOf('m.room.member', '@u1:example'));
    await store.persistEvent({
      eventId: '$close',
      roomVersion: '11',
      pdu: pdu({ room, prev: ['$same'], depth: 303 }),
      stateBefore: { state: changed },
    });
    expect(await store.stateBefore('$close')).toEqual(changed);
    const [newest] = (await table(storage, 'room_state_group').rows({ roomId: room })).sort(
      (a, b) => Number(b['id']) - Number(a['id']),
    );
    expect(await table(storage, 'room_state_group_entry').count({ stateGroup: newest!['id'] })).toBe(2);

    // "After X plus a delta" with a removal.
    await store.persistEvent({
      eventId: '$removed',
      roomVersion: '11',
      pdu: pdu({ room, prev: ['$close'], depth: 304 }),
      stateBefore: { afterEvent: '$close', delta: new Map([[stateKeyOf('m.room.topic', ''), null]]) },
    });
    const withoutTopic = new Map(changed);
    withoutTopic.delete(stateKeyOf('m.room.topic', ''));
    expect(await store.stateAfter('$removed')).toEqual(withoutTopic);
  });

  it('holds outliers and rejected events but keeps them out of the timeline, the state and the extremities', async () => {
    const room = newRoom();
    await add('$root', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    // An auth event fetched for a check: held, not in the timeline, no state.
    const outlier = await store.persistEvent({
      eventId: '$out',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.power_levels', stateKey: '', prev: ['$root'], depth: 2 }),
      outlier: true,
    });
    expect(outlier).toEqual({ inserted: true, streamOrdering: null });
    // A rejected state event: kept with its reason, its state before stored, but it changes nothing.
    const rejected = await store.persistEvent({
      eventId: '$rej',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.join_rules', stateKey: '', prev: ['$root'], depth: 2 }),
      rejected: { code: 'M_FORBIDDEN', message: 'sender may not set join rules' },
      stateBefore: { afterEvent: '$root' },
    });
    expect(rejected).toEqual({ inserted: true, streamOrdering: null });

    expect(await store.hasEvents(['$out', '$rej'])).toEqual(new Set(['$out', '$rej']));
    const held = await store.eventsByIds(['$out', '$rej']);
    expect(held.get('$out')).toMatchObject({ outlier: true, rejected: null, streamOrdering: null });
    expect(held.get('$rej')).toMatchObject({
      outlier: false,
      rejected: { code: 'M_FORBIDDEN', message: 'sender may not set join rules' },
      streamOrdering: null,
    });
    // The DAG walks never see a rejected event; they do see outliers.
    expect([...(await store.getEvents(['$out', '$rej'])).keys()]).toEqual(['$out']);
    expect(await extremities(room)).toEqual(['$root']);
    expect(ids((await store.timelineSince(room, 0, 10)).events)).toEqual(['$root']);
    expect(ids((await store.messages(room, { dir: 'b', limit: 10 })).events)).toEqual(['$root']);
    expect(await store.stateAfter('$rej')).toEqual(await store.stateAfter('$root'));
    await expect(store.stateBefore('$out')).rejects.toThrow(/held without its state/);
    // A gap at a rejected event is not a gap: it is held, as evidence.
    await add('$child', { room, prev: ['$rej', '$out'], depth: 3 }, '$root');
    expect(await store.missingPrevEvents(room)).toEqual(['$out']);

    // The outlier persisted into the timeline: now it has a position, state and is an extremity candidate.
    const promoted = await store.persistEvent({
      eventId: '$out',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.power_levels', stateKey: '', prev: ['$root'], depth: 2 }),
      stateBefore: { afterEvent: '$root' },
    });
    expect(promoted.inserted).toBe(true);
    expect(promoted.streamOrdering).toBeGreaterThan(0);
    expect((await store.stateAfter('$out')).get(stateKeyOf('m.room.power_levels', ''))).toBe('$out');
    // $child already references it, so it is no extremity; the gap is filled.
    expect(await extremities(room)).toEqual(['$child']);
    expect(await store.missingPrevEvents(room)).toEqual([]);
    expect(ids((await store.timelineSince(room, 0, 10)).events)).toEqual(['$root', '$child', '$out']);
  });

  it('orders the timeline by arrival for /sync and by depth then event id bytes for /messages', async () => {
    const room = newRoom();
    await add('$t1', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    await add('$t5', { room, prev: ['$t1'], depth: 5 }, '$t1');
    // Backfilled later, but older: depth 3, two events at the same depth ordered by id bytes ("Z" < "a").
    await add('$abc', { room, prev: ['$t1'], depth: 3 }, '$t1');
    await add('$Zed', { room, prev: ['$t1'], depth: 3 }, '$t1');
    expect(ids((await store.timelineSince(room, 0, 10)).events)).toEqual(['$t1', '$t5', '$abc', '$Zed']);
    expect(ids((await store.messages(room, { dir: 'f', limit: 10 })).events)).toEqual(['$t1', '$Zed', '$abc', '$t5']);
    expect(ids((await store.messages(room, { dir: 'b', limit: 10 })).events)).toEqual(['$t5', '$abc', '$Zed', '$t1']);
  });

  it('pages both ways with tokens and limits, and /sync pages continue into /messages', async () => {
    const room = newRoom();
    await add('$p1', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    for (let i = 2; i <= 10; i++) await add(`$p${i}`, { room, prev: [`$p${i - 1}`], depth: i }, `$p${i - 1}`);

    const pages: string[][] = [];
    let from: string | undefined;
    for (;;) {
      const page = await store.messages(room, { dir: 'b', limit: 3, ...(from === undefined ? {} : { from }) });
      pages.push(ids(page.events));
      if (page.end === null) break;
      from = page.end;
    }
    expect(pages).toEqual([['$p10', '$p9', '$p8'], ['$p7', '$p6', '$p5'], ['$p4', '$p3', '$p2'], ['$p1']]);

    const token5 = await store.topologicalTokenOf('$p5');
    expect(token5).not.toBeNull();
    const forward = await store.messages(room, { dir: 'f', limit: 3, from: token5! });
    expect(ids(forward.events)).toEqual(['$p6', '$p7', '$p8']);
    expect(forward.start).toBe(token5);
    const rest = await store.messages(room, { dir: 'f', limit: 3, from: forward.end! });
    expect(ids(rest.events)).toEqual(['$p9', '$p10']);
    expect(rest.end).toBeNull();
    // /context around $p5: before and after, without it.
    expect(ids((await store.messages(room, { dir: 'b', limit: 2, from: token5! })).events)).toEqual(['$p4', '$p3']);

    // /sync: the newest three after position 0, newest last, limited; its prevBatch continues backwards.
    const sync = await store.timelineSince(room, 0, 3);
    expect(ids(sync.events)).toEqual(['$p8', '$p9', '$p10']);
    expect(sync.limited).toBe(true);
    expect(sync.position).toBe(sync.events[2]!.streamOrdering);
    expect(ids((await store.messages(room, { dir: 'b', limit: 2, from: sync.prevBatch! })).events)).toEqual([
      '$p7',
      '$p6',
    ]);
    const after8 = await store.timelineSince(room, sync.events[0]!.streamOrdering!, 5);
    expect(ids(after8.events)).toEqual(['$p9', '$p10']);
    expect(after8.limited).toBe(false);
    const upTo9 = await store.timelineSince(room, 0, 5, sync.events[1]!.streamOrdering!);
    expect(ids(upTo9.events)).toEqual(['$p5', '$p6', '$p7', '$p8', '$p9']);
    expect(await store.currentStreamPosition()).toBeGreaterThanOrEqual(sync.position);
  });

  it('maps a client transaction id to the first event it made', async () => {
    const a = alice.serverName;
    expect(await store.eventForTransaction(a, 'DEV', 'txn1')).toBeNull();
    const both = await Promise.all([
      store.recordTransaction(a, 'DEV', 'txn1', '$first'),
      store.recordTransaction(a, 'DEV', 'txn1', '$second'),
    ]);
    expect(both[0]).toBe(both[1]);
    expect(await store.recordTransaction(a, 'DEV', 'txn1', '$third')).toBe(both[0]);
    expect(await store.eventForTransaction(a, 'DEV', 'txn1')).toBe(both[0]);
    // Another device's txn1 is its own.
    expect(await store.recordTransaction(a, 'OTHER', 'txn1', '$other')).toBe('$other');
    expect(await table(storage, 'room_txn').count({ serverName: a })).toBe(2);
  });

  it('finds the accepted redactions naming events, v11 in content and v10 at the top level', async () => {
    const room = newRoom();
    await add('$rc', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    await add('$rm1', { room, prev: ['$rc'], depth: 2 }, '$rc');
    await add('$rm2', { room, prev: ['$rm1'], depth: 3 }, '$rm1');
    await add(
      '$rr11',
      { room, type: 'm.room.redaction', prev: ['$rm2'], depth: 4, content: { redacts: '$rm1' } },
      '$rm2',
    );
    await store.persistEvent({
      eventId: '$rr10',
      roomVersion: '11',
      pdu: { ...pdu({ room, type: 'm.room.redaction', prev: ['$rr11'], depth: 5, content: {} }), redacts: '$rm2' },
      stateBefore: { afterEvent: '$rr11' },
    });
    await store.persistEvent({
      eventId: '$rrejected',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.redaction', prev: ['$rr10'], depth: 6, content: { redacts: '$rm2' } }),
      rejected: { code: 'insufficient_power', message: 'no' },
    });
    expect(ids(await store.redactionsOf(room, ['$rm1', '$rm2', '$rc'], 10))).toEqual(['$rr11', '$rr10']);
    expect(ids(await store.redactionsOf(room, ['$rm2'], 10))).toEqual(['$rr10']);
    expect(ids(await store.redactionsOf(room, ['$rm1', '$rm2'], 1))).toEqual(['$rr11']);
    expect(await store.redactionsOf(newRoom(), ['$rm1'], 10)).toEqual([]);
    expect(await store.redactionsOf(room, [], 10)).toEqual([]);
  });

  it('keeps the current state with a change log per stream position and memberships by server', async () => {
    const room = newRoom();
    const member = (user: string) => stateKeyOf('m.room.member', user);
    await add('$c', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    const join = { membership: 'join' };
    await add('$j1', { room, type: 'm.room.member', stateKey: '@a:srv1', prev: ['$c'], depth: 2, content: join }, '$c');
    const p2 = await add(
      '$j2',
      { room, type: 'm.room.member', stateKey: '@b:srv2', prev: ['$j1'], depth: 3, content: join },
      '$j1',
    );
    const first = await store.stateAfter('$j2');
    await store.setCurrentState(room, first, p2.streamOrdering!);
    expect(await store.currentState(room)).toEqual(first);
    expect(await store.roomsOfServer('srv1', { limit: 10 })).toEqual([
      { roomId: room, userId: '@a:srv1', membership: 'join', eventId: '$j1', streamOrdering: p2.streamOrdering },
    ]);

    const p3 = await add(
      '$l1',
      { room, type: 'm.room.member', stateKey: '@a:srv1', prev: ['$j2'], depth: 4, content: { membership: 'leave' } },
      '$j2',
    );
    const second = await store.stateAfter('$l1');
    await store.setCurrentState(room, second, p3.streamOrdering!);
    expect(await store.currentStateChangesSince(room, p2.streamOrdering!, 10)).toEqual([
      { streamOrdering: p3.streamOrdering, key: member('@a:srv1'), eventId: '$l1' },
    ]);
    expect(await store.currentStateChangesSince(room, 0, 10)).toHaveLength(4);
    expect(await store.roomsOfServer('srv1', { memberships: ['join'], limit: 10 })).toEqual([]);
    expect(await store.roomsOfServer('srv1', { memberships: ['leave'], limit: 10 })).toMatchObject([
      { roomId: room, membership: 'leave', eventId: '$l1' },
    ]);
    expect(await store.roomsOfServer('srv2', { limit: 10, after: room })).toEqual([]);
    // Setting the same state again logs nothing.
    await store.setCurrentState(room, second, p3.streamOrdering! + 1);
    expect(await store.currentStateChangesSince(room, p3.streamOrdering!, 10)).toEqual([]);
  });

  it('sets the current state given with an event in its transaction, at its stream ordering; names the extremities it leaves', async () => {
    const room = newRoom();
    const join = { membership: 'join' };
    await add('$sc', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    const j = await add(
      '$sj',
      { room, type: 'm.room.member', stateKey: '@a:one', prev: ['$sc'], depth: 2, content: join },
      '$sc',
    );
    await store.setCurrentState(room, await store.stateAfter('$sj'), j.streamOrdering!);
    // Two branches off $sj; a third event that names neither leaves both as extremities.
    await add('$sx', { room, type: 'm.room.message', prev: ['$sj'], depth: 3 }, '$sj');
    const branch = await store.forwardExtremitiesAfter(room, { eventId: '$sy', depth: 3 }, ['$sj'], 10);
    expect(branch.before).toEqual(['$sx']);
    expect(branch.after.map((e) => e.eventId)).toEqual(['$sx', '$sy']);
    const chain = await store.forwardExtremitiesAfter(room, { eventId: '$sz', depth: 4 }, ['$sx'], 10);
    expect(chain.after.map((e) => e.eventId)).toEqual(['$sz']);
    // The current state comes with the event: memberships and the change log at its position.
    const bob = stateKeyOf('m.room.member', '@b:two');
    const withBob = new Map([...(await store.stateAfter('$sx')), [bob, '$sb']]);
    const b = await store.persistEvent({
      eventId: '$sb',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.member', stateKey: '@b:two', prev: ['$sx'], depth: 4, content: join }),
      stateBefore: { afterEvent: '$sx' },
      currentState: withBob,
    });
    expect(await store.currentState(room)).toEqual(withBob);
    expect(await store.currentStateChangesSince(room, j.streamOrdering!, 10)).toEqual([
      { streamOrdering: b.streamOrdering, key: bob, eventId: '$sb' },
    ]);
    expect(await store.roomsOfServer('two', { limit: 10 })).toMatchObject([
      { roomId: room, userId: '@b:two', membership: 'join', eventId: '$sb', streamOrdering: b.streamOrdering },
    ]);
    // An event whose child is held already does not become an extremity.
    await add('$sd', { room, type: 'm.room.message', prev: ['$sb', '$sgap'], depth: 6 }, '$sb');
    const late = await store.forwardExtremitiesAfter(room, { eventId: '$sgap', depth: 5 }, ['$sb'], 10);
    expect(late.after.map((e) => e.eventId)).toEqual(['$sd']);
    // A change given as a delta is written without reading the held state: only the key it names changes.
    const topic = stateKeyOf('m.room.topic', '');
    const t = await store.persistEvent({
      eventId: '$st',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.topic', stateKey: '', prev: ['$sd'], depth: 7 }),
      stateBefore: { afterEvent: '$sd' },
      currentState: new Map(),
      currentStateDelta: new Map([[topic, '$st']]),
    });
    expect(await store.currentState(room)).toEqual(new Map([...withBob, [topic, '$st']]));
    expect(await store.currentStateChangesSince(room, b.streamOrdering!, 10)).toEqual([
      { streamOrdering: t.streamOrdering, key: topic, eventId: '$st' },
    ]);
    // Held already: nothing changes, the state given is not applied.
    const again = await store.persistEvent({
      eventId: '$sb',
      roomVersion: '11',
      pdu: pdu({ room, type: 'm.room.member', stateKey: '@b:two', prev: ['$sx'], depth: 4, content: join }),
      stateBefore: { afterEvent: '$sx' },
      currentState: new Map(),
    });
    expect(again).toEqual({ inserted: false, streamOrdering: b.streamOrdering });
    expect((await store.currentState(room)).get(bob)).toBe('$sb');
  });

  it("pages a server's rooms by room id without splitting a room's users across pages", async () => {
    const roomIds = ['!page-a:example', '!page-b:example'];
    for (const [n, room] of roomIds.entries()) {
      const join = { membership: 'join' };
      await add(`$pc${n}`, { room, type: 'm.room.create', stateKey: '', depth: 1 });
      await add(
        `$pj${n}a`,
        { room, type: 'm.room.member', stateKey: '@a:pager', prev: [`$pc${n}`], depth: 2, content: join },
        `$pc${n}`,
      );
      const last = await add(
        `$pj${n}b`,
        { room, type: 'm.room.member', stateKey: '@b:pager', prev: [`$pj${n}a`], depth: 3, content: join },
        `$pj${n}a`,
      );
      await store.setCurrentState(room, await store.stateAfter(`$pj${n}b`), last.streamOrdering!);
    }
    const first = await store.roomsOfServer('pager', { limit: 1 });
    expect(first.map((r) => [r.roomId, r.userId])).toEqual([
      ['!page-a:example', '@a:pager'],
      ['!page-a:example', '@b:pager'],
    ]);
    const second = await store.roomsOfServer('pager', { limit: 1, after: first.at(-1)!.roomId });
    expect(second.map((r) => r.roomId)).toEqual(['!page-b:example', '!page-b:example']);
    expect(await store.roomsOfServer('pager', { limit: 1, after: '!page-b:example' })).toEqual([]);
  });

  it('keeps the right extremities when a fork, and a parent with its child, are persisted at once', async () => {
    const room = newRoom();
    await add('$base', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    const [left, right] = await Promise.all([
      add('$left', { room, prev: ['$base'], depth: 2 }, '$base'),
      add('$right', { room, prev: ['$base'], depth: 2 }, '$base'),
    ]);
    expect(left.streamOrdering).not.toBe(right.streamOrdering);
    expect(await extremities(room)).toEqual(['$left', '$right']);
    // A parent and its child together, several times: whichever commits first, only the child is an extremity.
    let tip = '$left';
    for (let round = 0; round < 8; round++) {
      const parent = `$par${round}`;
      const child = `$chi${round}`;
      await Promise.all([
        add(parent, { room, prev: [tip], depth: 3 + 2 * round }, tip),
        add(child, { room, prev: [parent], depth: 4 + 2 * round }, tip),
      ]);
      tip = child;
      expect(await extremities(room)).toEqual([tip, '$right'].sort());
    }
    expect(await store.missingPrevEvents(room)).toEqual([]);
  });

  it('leaves nothing half-written when a persist fails midway', async () => {
    const room = newRoom();
    await add('$k1', { room, type: 'm.room.create', stateKey: '', depth: 1 });
    const counts = async () => Promise.all(ROOM_TABLES.map((name) => table(storage, name).count()));
    const before = await counts();
    const extremitiesBefore = await extremities(room);
    // The event row, its edges and a state group are written before the over-long state key fails the insert
    // of the group's entries: the whole transaction rolls back.
    const tooLong = new Map<StateTuple, string>([[stateKeyOf('m.room.member', 'x'.repeat(300)), '$k1']]);
    await expect(
      store.persistEvent({
        eventId: '$k2',
        roomVersion: '11',
        pdu: pdu({ room, prev: ['$k1', '$gone'], depth: 2 }),
        stateBefore: { afterEvent: '$k1', delta: tooLong },
      }),
    ).rejects.toThrow();
    // And a state base that is not held fails after the event row was inserted.
    await expect(
      store.persistEvent({
        eventId: '$k3',
        roomVersion: '11',
        pdu: pdu({ room, prev: ['$k1'], depth: 2 }),
        stateBefore: { afterEvent: '$never' },
      }),
    ).rejects.toThrow(/\$never is not held/);
    // A caller's transaction that persists two events and a transaction id, then dies: none of it stays.
    const transactions = new SqlTransactions(storage.dataSource);
    await expect(
      transactions.run(async (tx) => {
        await store.persistEvent(
          {
            eventId: '$k4',
            roomVersion: '11',
            pdu: pdu({ room, prev: ['$k1'], depth: 2 }),
            stateBefore: { afterEvent: '$k1' },
          },
          tx,
        );
        const second = await store.persistEvent(
          {
            eventId: '$k5',
            roomVersion: '11',
            pdu: pdu({ room, prev: ['$k4'], depth: 3 }),
            stateBefore: { afterEvent: '$k4' },
          },
          tx,
        );
        expect(await store.recordTransaction(alice.serverName, 'DEV', 'killed-txn', '$k5', tx)).toBe('$k5');
        // Both were written (the second builds on the first's state) before the callback dies.
        expect(second).toMatchObject({ inserted: true, streamOrdering: expect.any(Number) as number });
        throw new Error('killed');
      }),
    ).rejects.toThrow('killed');
    expect(await counts()).toEqual(before);
    expect(await extremities(room)).toEqual(extremitiesBefore);
    expect(await store.hasEvents(['$k2', '$k3', '$k4', '$k5'])).toEqual(new Set());
    expect(await store.eventForTransaction(alice.serverName, 'DEV', 'killed-txn')).toBeNull();
    // The store still works: the same event persists cleanly afterwards.
    expect((await add('$k2', { room, prev: ['$k1'], depth: 2 }, '$k1')).inserted).toBe(true);
  });
});
