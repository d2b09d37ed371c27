// The DHT replay guard's SQL store, on PostgreSQL and PGlite: it keeps the highest seq, never lowers it (even
// written by two instances at once), and what it remembered is there after the database is closed and reopened.
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { DhtSeqGuardEntity } from './entities/index.js';
import { SqlSeqGuardStore } from './seq-guard-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';

describe.each(STORAGE_BACKENDS)('DHT replay guard store on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage | undefined;
  const [a, b, stranger] = ['seq-guard:a', 'seq-guard:b', 'seq-guard:stranger'].map(
    (seed) => makeAccount({ seed, homes: 1 }).serverName,
  ) as [string, string, string];

  beforeAll(async () => {
    db = await createTestDatabase(backend);
  });
  afterAll(async () => {
    await storage?.close();
    await db.dispose();
  });

  it('keeps the highest seq, also when two instances write at once, and survives a reopen', async () => {
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const one = await SqlSeqGuardStore.open(storage.dataSource);
    const two = await SqlSeqGuardStore.open(storage.dataSource);
    await one.remember(a, 3);
    await one.remember(a, 2);
    expect(await one.highestSeq(a)).toBe(3);
    await Promise.all([one.remember(b, 7), two.remember(b, 5), two.remember(b, 6)]);
    expect(await one.highestSeq(b)).toBe(7);
    // A lower seq written later by either instance never lowers the row.
    await two.remember(b, 6);
    const rows = await storage.dataSource.getRepository(DhtSeqGuardEntity).find({ order: { serverName: 'ASC' } });
    expect(Object.fromEntries(rows.map((r) => [r.serverName, r.seq]))).toEqual({ [a]: '3', [b]: '7' });
    expect(await one.highestSeq(stranger)).toBeUndefined();

    await storage.close();
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const reopened = await SqlSeqGuardStore.open(storage.dataSource);
    expect(await reopened.highestSeq(a)).toBe(3);
    expect(await reopened.highestSeq(b)).toBe(7);
    expect(await reopened.highestSeq(stranger)).toBeUndefined();
    await reopened.remember(a, 4);
    expect(await (await SqlSeqGuardStore.open(storage.dataSource)).highestSeq(a)).toBe(4);
  }, 120_000);
});
