// The embedded database's one session serves ordinary work (clients' requests) before replication (sync
// sessions), on real PGlite, and still gives replication a turn in every few while ordinary work keeps coming.
import { asReplicationWork, outsideReplicationWork } from '@polyhome/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../data-source.js';
import { createTestDatabase, type TestDatabase } from '../testing/backends.js';
import { REPLICATION_TURN_EVERY } from './pglite-pg-driver.js';

describe('PGlite session lanes', () => {
  let db: TestDatabase;
  let storage: Storage;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    storage = await openStorage({ dataDir: db.dataDir });
  });

  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  /** Holds the session in a transaction until `letGo` is called; resolves once it holds it. */
  async function holdSession(): Promise<{ letGo: () => void; holder: Promise<void> }> {
    let letGo: () => void = () => undefined;
    let held: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const holder = storage.dataSource.transaction(async (manager) => {
      await manager.query('SELECT 1');
      held();
      await new Promise<void>((resolve) => (letGo = resolve));
    });
    await holding;
    return { letGo, holder };
  }

  /** The order in which queries queued while the session was held got it. */
  async function servedOrder(queue: Array<'ordinary' | 'replication'>): Promise<string[]> {
    const order: string[] = [];
    const { letGo, holder } = await holdSession();
    const queries = queue.map((lane, i) => {
      const ask = () => storage.dataSource.query('SELECT $1::int AS n', [i]).then(() => order.push(`${lane}${i}`));
      return lane === 'replication' ? asReplicationWork(ask) : ask();
    });
    letGo();
    await Promise.all([holder, ...queries]);
    return order;
  }

  it('serves ordinary work queued after replication first', async () => {
    const order = await servedOrder(['replication', 'replication', 'ordinary', 'ordinary']);
    expect(order).toEqual(['ordinary2', 'ordinary3', 'replication0', 'replication1']);
  });

  it('gives replication one turn after every few ordinary ones', async () => {
    const ordinary = 2 * REPLICATION_TURN_EVERY + 2;
    const order = await servedOrder(['replication', 'replication', ...Array<'ordinary'>(ordinary).fill('ordinary')]);
    expect(order.indexOf('replication0')).toBe(REPLICATION_TURN_EVERY);
    expect(order.indexOf('replication1')).toBe(2 * REPLICATION_TURN_EVERY + 1);
    expect(order).toHaveLength(ordinary + 2);
  });

  it('runs work marked ordinary inside replication in the ordinary lane', async () => {
    const order: string[] = [];
    const { letGo, holder } = await holdSession();
    const queries = asReplicationWork(() => [
      storage.dataSource.query('SELECT 1').then(() => order.push('replication')),
      outsideReplicationWork(() => storage.dataSource.query('SELECT 2').then(() => order.push('feed'))),
    ]);
    letGo();
    await Promise.all([holder, ...queries]);
    expect(order).toEqual(['feed', 'replication']);
  });
});
