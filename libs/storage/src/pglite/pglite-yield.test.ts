// The embedded database lets the event loop turn during long chains of awaited queries (issue 14), on real
// PGlite: timers and I/O interleave with the chain, and a transaction still has the session to itself.
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from '../data-source.js';
import { createTestDatabase, type TestDatabase } from '../testing/backends.js';

/** Far more queries than a yield needs: the chains below stop as soon as what they wait for has happened. */
const MAX_QUERIES = 5_000;

describe('PGlite session yields to the event loop', () => {
  let db: TestDatabase;
  let storage: Storage;

  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    storage = await openStorage({ dataDir: db.dataDir });
    await storage.dataSource.query('CREATE TABLE yielded (n integer PRIMARY KEY)');
  });

  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('runs a timer and a setImmediate callback queued before a chain of awaited queries while the chain runs', async () => {
    let done = 0;
    let timerAt: number | undefined;
    let immediateAt: number | undefined;
    setTimeout(() => (timerAt = done), 0);
    setImmediate(() => (immediateAt = done));
    while (done < MAX_QUERIES && (timerAt === undefined || immediateAt === undefined)) {
      await storage.dataSource.query('SELECT $1::int AS n', [done]);
      done += 1;
    }
    // Without yielding both would still be undefined here: they run only once the chain has ended.
    expect(immediateAt).toBeGreaterThan(0);
    expect(timerAt).toBeGreaterThan(0);
    expect(done).toBeLessThan(MAX_QUERIES);
  });

  it('keeps the session for a transaction while it yields: a query from outside waits for the rollback', async () => {
    let yieldedInside = false;
    let outside: Promise<number> | undefined;
    let callbackOver = false;
    let outsideResolvedBeforeEnd = false;
    const failure = await storage.dataSource
      .transaction(async (tx) => {
        await tx.query('INSERT INTO yielded (n) VALUES (1)');
        setImmediate(() => {
          yieldedInside = !callbackOver;
          // Outside the transaction: it must not see the uncommitted row, so it must wait for the session.
          outside = storage.dataSource
            .query('SELECT count(*)::int AS c FROM yielded')
            .then((rows: Array<{ c: number }>) => {
              outsideResolvedBeforeEnd = !callbackOver;
              return rows[0]?.c ?? -1;
            });
        });
        for (let i = 0; i < MAX_QUERIES && outside === undefined; i++) {
          await tx.query('SELECT count(*)::int AS c FROM yielded');
        }
        // A few more queries after the outside one was asked for, while it waits.
        for (let i = 0; i < 20; i++) await tx.query('SELECT count(*)::int AS c FROM yielded');
        callbackOver = true;
        throw new Error('roll back');
      })
      .catch((err: unknown) => err as Error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe('roll back');
    expect(yieldedInside).toBe(true);
    expect(outside).toBeDefined();
    expect(await outside).toBe(0);
    expect(outsideResolvedBeforeEnd).toBe(false);
  });

  it('refuses a negative slice before it opens anything', async () => {
    const place = await createTestDatabase('pglite');
    try {
      await expect(openStorage({ dataDir: place.dataDir, embeddedYieldAfterMs: -1 })).rejects.toThrow(
        /embeddedYieldAfterMs must be a number >= 0/,
      );
      expect(await readdir(place.dataDir)).toEqual([]);
    } finally {
      await place.dispose();
    }
  });
});
