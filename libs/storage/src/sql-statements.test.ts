import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { sqlStatementsSent } from './sql-statements.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';

/** What `work` adds to the process-wide count (the tests of a file run one at a time, in a process of their own). */
async function counted(work: () => Promise<unknown>): Promise<number> {
  const before = sqlStatementsSent();
  await work();
  return sqlStatementsSent() - before;
}

describe.each(STORAGE_BACKENDS)('SQL statement count on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    await storage.dataSource.query('CREATE TABLE counted (n integer PRIMARY KEY)');
  });

  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('counts each query once, with and without parameters', async () => {
    const q = storage.dataSource;
    expect(await counted(() => q.query('SELECT 1'))).toBe(1);
    expect(
      await counted(async () => {
        for (let n = 1; n <= 5; n++) await q.query('INSERT INTO counted (n) VALUES ($1)', [n]);
      }),
    ).toBe(5);
    // The statements ran on the database: the rows are there.
    const rows = (await q.query('SELECT count(*)::int AS c FROM counted')) as Array<{ c: number }>;
    expect(rows[0]?.c).toBe(5);
  });

  it('counts a transaction with its START TRANSACTION and COMMIT, and a rolled-back one with its ROLLBACK', async () => {
    const q = storage.dataSource;
    expect(
      await counted(() =>
        q.transaction(async (tx) => {
          await tx.query('INSERT INTO counted (n) VALUES ($1)', [10]);
          await tx.query('SELECT n FROM counted WHERE n = $1', [10]);
        }),
      ),
    ).toBe(4);
    let error: unknown;
    const failed = await counted(() =>
      q
        .transaction(async (tx) => {
          await tx.query('INSERT INTO counted (n) VALUES ($1)', [20]);
          // A duplicate key: the database refuses it, but it was sent.
          await tx.query('INSERT INTO counted (n) VALUES ($1)', [10]);
        })
        .catch((err: unknown) => (error = err)),
    );
    expect(String(error)).toMatch(/duplicate key/);
    expect(failed).toBe(4);
    const rows = (await q.query('SELECT n FROM counted WHERE n IN (10, 20) ORDER BY n')) as Array<{ n: number }>;
    expect(rows.map((r) => r.n)).toEqual([10]);
  });

  it('counts what a TypeORM query builder sends', async () => {
    const q = storage.dataSource;
    const n = await counted(() =>
      q.createQueryBuilder().select('c.n', 'n').from('counted', 'c').where('c.n > :min', { min: 0 }).getRawMany(),
    );
    expect(n).toBe(1);
  });
});
