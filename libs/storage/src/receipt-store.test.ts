// Receipts on PostgreSQL and PGlite: one row per (room, type, user, thread), moved forward only, read back in
// stream order per room; unread counts from the room timeline after the user's read position.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { SqlReceiptStore, type ReceiptRow } from './receipt-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { table } from './testing/tables.js';

const ROOM = '!porch:receipts.example';
const OTHER = '!shed:receipts.example';
const ALICE = '@alice:receipts.example';
const BOB = '@bob:receipts.example';

function receipt(over: Partial<ReceiptRow>): ReceiptRow {
  return {
    roomId: ROOM,
    receiptType: 'm.read',
    userId: BOB,
    threadId: null,
    eventId: '$e1',
    eventStream: 1,
    ts: 1000,
    ...over,
  };
}

describe.each(STORAGE_BACKENDS)('SqlReceiptStore on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlReceiptStore;

  /** A timeline event of `room` at stream ordering `stream` (only the columns the counts read matter). */
  async function event(room: string, stream: number, sender: string, type: string, content: object = {}) {
    await storage.dataSource.query(
      `INSERT INTO room_event (event_id, room_id, pdu, type, sender, depth, origin_server_ts, outlier, stream_ordering)
       VALUES ($1, $2, $3, $4, $5, $6, 0, false, $6)`,
      [`$s${stream}`, room, JSON.stringify({ type, sender, content }), type, sender, stream],
    );
  }

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlReceiptStore(storage.dataSource);
    for (const room of [ROOM, OTHER]) {
      await storage.dataSource.query('INSERT INTO room (room_id, room_version) VALUES ($1, $2)', [room, '11']);
    }
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('keeps the newest receipt per room, type, user and thread, moving forward only, in stream order', async () => {
    expect(await store.receiptPosition()).toBe(0);
    const first = await store.putReceipt(receipt({ eventId: '$e2', eventStream: 2 }));
    expect(first).toBe(1);
    // An older event does not move it back; the same event again changes nothing.
    expect(await store.putReceipt(receipt({ eventId: '$e1', eventStream: 1 }))).toBeNull();
    expect(await store.putReceipt(receipt({ eventId: '$e2', eventStream: 2 }))).toBeNull();
    // A newer one moves it to the next position; other types, threads and users are rows of their own.
    expect(await store.putReceipt(receipt({ eventId: '$e3', eventStream: 3, ts: 2000 }))).toBe(2);
    expect(await store.putReceipt(receipt({ receiptType: 'm.read.private', eventId: '$e1' }))).toBe(3);
    expect(await store.putReceipt(receipt({ threadId: 'main', eventId: '$e1' }))).toBe(4);
    expect(await store.putReceipt(receipt({ userId: ALICE, roomId: OTHER, eventId: '$x', eventStream: null }))).toBe(5);
    expect(await table(storage, 'room_receipt').count({ roomId: ROOM })).toBe(3);
    expect(await store.receiptPosition()).toBe(5);

    const all = await store.receiptsSince([ROOM], 0, 5, 100);
    expect(all.map((r) => [r.streamId, r.receiptType, r.threadId, r.eventId])).toEqual([
      [2, 'm.read', null, '$e3'],
      [3, 'm.read.private', null, '$e1'],
      [4, 'm.read', 'main', '$e1'],
    ]);
    expect(all[0]).toMatchObject({ userId: BOB, ts: 2000, eventStream: 3 });
    // Since a position, up to another, the newest `limit`, only the rooms asked for.
    expect((await store.receiptsSince([ROOM], 2, 3, 100)).map((r) => r.streamId)).toEqual([3]);
    expect((await store.receiptsSince([ROOM, OTHER], 0, 5, 2)).map((r) => r.streamId)).toEqual([4, 5]);
    expect(await store.receiptsSince([], 0, 5, 100)).toEqual([]);
    // A receipt for an event not held here (null stream) may be replaced by any later one.
    expect(await store.putReceipt(receipt({ userId: ALICE, roomId: OTHER, eventId: '$y', eventStream: null }))).toBe(6);
  });

  it('serialises concurrent puts: every position is handed out once', async () => {
    const puts = Array.from({ length: 20 }, (_, i) =>
      store.putReceipt(receipt({ roomId: OTHER, userId: `@u${i}:receipts.example`, eventId: '$z', eventStream: 9 })),
    );
    const positions = (await Promise.all(puts)) as number[];
    expect(new Set(positions).size).toBe(20);
    expect(Math.max(...positions)).toBe(await store.receiptPosition());
  });

  it("counts others' messages after the user's read position, edits and its own left out", async () => {
    const carol = '@carol:receipts.example';
    await storage.dataSource.query(
      `INSERT INTO room_membership (room_id, user_id, server_name, membership, event_id, stream_ordering)
       VALUES ($1, $2, 'receipts.example', 'join', '$join', 10), ($3, $2, 'receipts.example', 'join', '$join2', 10)`,
      [ROOM, carol, OTHER],
    );
    await event(ROOM, 9, ALICE, 'm.room.message'); // before carol joined
    await event(ROOM, 11, ALICE, 'm.room.message');
    await event(ROOM, 12, carol, 'm.room.message'); // her own
    await event(ROOM, 13, ALICE, 'm.room.encrypted');
    await event(ROOM, 14, ALICE, 'm.room.message', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$s11' } });
    await event(ROOM, 15, ALICE, 'm.room.topic');
    await event(ROOM, 16, BOB, 'm.room.message');
    await event(OTHER, 17, ALICE, 'm.room.message');
    const types = ['m.room.message', 'm.room.encrypted'];
    const counts = () => store.notificationCounts(carol, [ROOM, OTHER, '!none:x'], types, 100);
    expect(await counts()).toEqual(
      new Map([
        [ROOM, 3],
        [OTHER, 1],
      ]),
    );
    // A receipt (public or private, unthreaded or main) moves the read position; other threads do not.
    await store.putReceipt(receipt({ userId: carol, threadId: 'other', eventId: '$s16', eventStream: 16 }));
    expect((await counts()).get(ROOM)).toBe(3);
    await store.putReceipt(receipt({ userId: carol, receiptType: 'm.read.private', eventId: '$s13', eventStream: 13 }));
    expect((await counts()).get(ROOM)).toBe(1);
    await store.putReceipt(receipt({ userId: carol, threadId: 'main', eventId: '$s16', eventStream: 16 }));
    expect((await counts()).get(ROOM)).toBeUndefined();
    // Capped.
    expect((await store.notificationCounts(carol, [OTHER], types, 1)).get(OTHER)).toBe(1);
    expect(await store.notificationCounts(carol, [], types, 100)).toEqual(new Map());
  });
});
