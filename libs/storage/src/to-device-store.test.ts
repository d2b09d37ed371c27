// To-device messages on PostgreSQL and PGlite: positions handed out in commit order and never reused after
// acknowledged messages are deleted, deduplication keys, the per-sender cap refusing a whole accept (no key marked),
// and the outbox in order per destination.
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
        build: () => ({ inbox: [], outbox: [{ destination, recipient: ALICE, origin: BOB, edu: messageId }] }),
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
});
