// To-device messages on PostgreSQL and PGlite: positions handed out in commit order and never reused after
// acknowledged messages are deleted, deduplication keys, the per-sender cap refusing a whole accept (no key marked),
// the outbox in order per destination and capped per sender device, messages held for unknown devices (capped,
// routed at new positions), and the sweep of expired rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { SqlToDeviceStore, type ToDeviceInboxRow } from './to-device-store.js';

const ALICE = 'a'.repeat(64);
const BOB = 'b'.repeat(64);

function row(deviceId: string, content: object, sender = '@bob:x', senderDevice = 'BD'): ToDeviceInboxRow {
  return { serverName: ALICE, deviceId, sender, senderDevice, type: 'm.test', content: JSON.stringify(content) };
}

describe.each(STORAGE_BACKENDS)('SqlToDeviceStore on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlToDeviceStore;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlToDeviceStore(storage.dataSource);
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  const put = (messageId: string, rows: ToDeviceInboxRow[], max = 10) =>
    store.accept({
      origin: BOB,
      messageId,
      keys: rows.map((r) => ({ serverName: r.serverName, deviceId: r.deviceId })),
      maxPerSender: max,
      build: (fresh) => ({ inbox: rows.filter((r) => fresh(r)), outbox: [] }),
    });

  it('hands out positions in order, keeps each message once, and never reuses a position', async () => {
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => put(`m${i}`, [row('D1', { i })])));
    expect(outcomes.every((o) => o.status === 'stored')).toBe(true);
    expect(await put('m3', [row('D1', { i: 3 })])).toEqual({ status: 'duplicate' });
    const to = await store.position();
    expect(to).toBe(8);
    const all = await store.messages(ALICE, 'D1', undefined, to, 100);
    expect(all.map((m) => m.streamId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Acknowledged: deleted; the next messages take positions after them.
    expect(await store.messages(ALICE, 'D1', to, to, 100)).toEqual([]);
    await put('m8', [row('D1', { i: 8 })]);
    expect((await store.messages(ALICE, 'D1', undefined, await store.position(), 100)).map((m) => m.streamId)).toEqual([
      9,
    ]);
  });

  it('refuses a whole accept over the cap and marks nothing, so it can be taken later', async () => {
    await store.messages(ALICE, 'D1', await store.position(), await store.position(), 100);
    for (let i = 0; i < 3; i++) expect((await put(`c${i}`, [row('D2', { i })], 3)).status).toBe('stored');
    const over = await put('over', [row('D3', { ok: true }), row('D2', { over: true })], 3);
    expect(over).toEqual({ status: 'limited', serverName: ALICE, deviceId: 'D2', held: 3 });
    expect(await store.messages(ALICE, 'D3', undefined, await store.position(), 100)).toEqual([]);
    // Another sender device is counted on its own.
    expect((await put('other', [row('D2', {}, '@bob:x', 'BD2')], 3)).status).toBe('stored');
    await store.messages(ALICE, 'D2', await store.position(), await store.position(), 100);
    expect((await put('over', [row('D3', { ok: true }), row('D2', { over: true })], 3)).status).toBe('stored');
  });

  it('keeps the outbox in order per destination until removed', async () => {
    const owe = (messageId: string, destination: string) =>
      store.accept({
        origin: BOB,
        messageId,
        keys: [{ serverName: BOB, deviceId: '' }],
        maxPerSender: 10,
        build: () => ({
          inbox: [],
          outbox: [
            {
              destination,
              recipient: ALICE,
              origin: BOB,
              edu: messageId,
              sender: '@bob:x',
              senderDevice: 'O',
              messages: 1,
            },
          ],
        }),
      });
    await owe('o1', 'P1');
    await owe('o2', 'P2');
    await owe('o3', 'P1');
    expect(await store.outboxDestinations(10)).toEqual(['P1', 'P2']);
    const pending = await store.pendingOutbox('P1', 10);
    expect(pending.map((p) => p.edu)).toEqual(['o1', 'o3']);
    await store.removeOutbox(pending.map((p) => p.id));
    expect(await store.outboxDestinations(10)).toEqual(['P2']);
  });

  const outboxRow = (destination: string, messages: number, senderDevice = 'SD') => ({
    destination,
    recipient: ALICE,
    origin: BOB,
    edu: JSON.stringify({ destination, messages }),
    sender: '@bob:x',
    senderDevice,
    messages,
  });
  const owe = (messageId: string, rows: ReturnType<typeof outboxRow>[], inbox: ToDeviceInboxRow[] = []) =>
    store.accept({
      origin: BOB,
      messageId,
      keys: [{ serverName: BOB, deviceId: '' }],
      maxPerSender: 10,
      maxOutboxPerSender: 5,
      build: () => ({ inbox, outbox: rows }),
    });

  it('caps what one sender device has waiting in the outbox, all destinations together, refusing whole', async () => {
    expect((await owe('q1', [outboxRow('Q1', 2), outboxRow('Q2', 1)])).status).toBe('stored');
    // 3 held; 3 more would pass 5: refused, and nothing of it (not its inbox row, not its key) is kept.
    const over = await owe('q2', [outboxRow('Q3', 1), outboxRow('Q1', 2)], [row('Q', { over: true })]);
    expect(over).toEqual({ status: 'outbox_limited', sender: '@bob:x', senderDevice: 'SD', held: 3 });
    expect(await store.outboxDestinations(10)).toEqual(['P2', 'Q1', 'Q2']);
    expect(await store.messages(ALICE, 'Q', undefined, await store.position(), 100)).toEqual([]);
    // Another sender device is counted on its own; once a home took some, the same request fits.
    expect((await owe('q3', [outboxRow('Q3', 5, 'SD2')])).status).toBe('stored');
    await store.removeOutbox((await store.pendingOutbox('Q1', 10)).map((r) => r.id));
    expect((await owe('q2', [outboxRow('Q3', 1), outboxRow('Q1', 2)], [row('Q', { over: true })])).status).toBe(
      'stored',
    );
  });

  it('holds messages for unknown devices up to the cap, and routes them in order at new positions', async () => {
    const hold = (messageId: string, n: number) =>
      store.accept({
        origin: BOB,
        messageId,
        keys: [{ serverName: ALICE, deviceId: `NEW ${messageId}` }],
        maxPerSender: 3,
        build: () => ({
          inbox: [],
          outbox: [],
          held: Array.from({ length: n }, (_, i) => ({
            serverName: ALICE,
            deviceId: 'NEW',
            userId: '@alice:a',
            origin: BOB,
            sender: '@bob:x',
            senderDevice: 'BD',
            type: 'm.test',
            messageId,
            content: JSON.stringify({ messageId, i }),
          })),
        }),
      });
    expect(await hold('h1', 2)).toMatchObject({ status: 'stored', held: 2, dropped: 0 });
    expect(await hold('h2', 2)).toMatchObject({ status: 'stored', held: 1, dropped: 1 });
    expect(await store.heldDevices(10)).toEqual([{ serverName: ALICE, deviceId: 'NEW' }]);
    // Only a device with something held or waiting is worth routing when its account's devices change.
    expect(await store.devicesWithMessages(ALICE, ['NEW', 'NONE', 'NEW'])).toEqual(['NEW']);
    expect(await store.devicesWithMessages(BOB, ['NEW'])).toEqual([]);
    expect(await store.hasHeld(ALICE, 'NEW')).toBe(true);
    expect(await store.hasHeld(ALICE, 'OTHER')).toBe(false);
    // A /sync acknowledged everything up to now: released messages must come after it.
    const acknowledged = await store.position();
    const released = await store.releaseHeld(ALICE, 'NEW', (held) => ({
      inbox: held.map((h) => ({ ...h, content: h.content })),
      outbox: [],
    }));
    expect(released).toEqual({ inbox: 3, outbox: 0 });
    const got = await store.messages(ALICE, 'NEW', acknowledged, await store.position(), 100);
    expect(got.map((m) => JSON.parse(m.content) as unknown)).toEqual([
      { messageId: 'h1', i: 0 },
      { messageId: 'h1', i: 1 },
      { messageId: 'h2', i: 0 },
    ]);
    expect(got.every((m) => m.streamId > acknowledged)).toBe(true);
    expect(await store.heldDevices(10)).toEqual([]);
    // Nothing held now, but the inbox holds what was released.
    expect(await store.devicesWithMessages(ALICE, ['NEW'])).toEqual(['NEW']);
    expect(await store.hasHeld(ALICE, 'NEW')).toBe(false);
    // A message reaching the device's inbox before the release ran: what was held goes first, in order.
    await store.messages(ALICE, 'NEW', await store.position(), await store.position(), 100);
    expect(await hold('h3', 1)).toMatchObject({ status: 'stored', held: 1 });
    expect((await put('direct', [row('NEW', { messageId: 'direct' })])).status).toBe('stored');
    expect(await store.heldDevices(10)).toEqual([]);
    const ordered = await store.messages(ALICE, 'NEW', undefined, await store.position(), 100);
    expect(ordered.map((m) => (JSON.parse(m.content) as { messageId: string }).messageId)).toEqual(['h3', 'direct']);
  });

  it('sweeps inbox, outbox and held rows stored before the given times, and nothing after', async () => {
    expect((await put('sw1', [row('SW', { n: 1 })])).status).toBe('stored');
    const future = Date.now() + 60_000;
    const past = Date.now() - 60 * 60_000;
    expect(await store.sweep({ inbox: past, outbox: past, held: past })).toEqual({ inbox: 0, outbox: 0, held: 0 });
    expect((await store.messages(ALICE, 'SW', undefined, await store.position(), 100)).length).toBe(1);
    const inboxRows = (await store.inboxDevices(100)).length;
    const swept = await store.sweep({ inbox: future, outbox: future, held: future });
    expect(swept.inbox).toBeGreaterThanOrEqual(inboxRows);
    expect(swept.outbox).toBeGreaterThan(0);
    expect(await store.messages(ALICE, 'SW', undefined, await store.position(), 100)).toEqual([]);
    expect(await store.outboxDestinations(10)).toEqual([]);
    expect(await store.inboxDevices(10)).toEqual([]);
  });
});
