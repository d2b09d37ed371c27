// An upgrade on both backends: a database made by an older release (its schema: the migrations up to before
// AdminAudit, the admin API's first change of the account table), with an account in it, is opened by this
// release. The newer migrations apply once, in order; the account and its document are still there and read
// by this release's repository; the account states added since work; the schema matches the entities.
import { MIGRATIONS } from '@polyhome/migrations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, schemaDrift } from './data-source.js';
import { SqlAccountRepository } from './repositories/account.repository.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';

const SERVER_NAME = 'a'.repeat(64);
const USER_ID = `@upgraded:${SERVER_NAME}`;
const OLDER = MIGRATIONS.slice(
  0,
  MIGRATIONS.findIndex((m) => m.name.startsWith('AdminAudit')),
);

describe.each(STORAGE_BACKENDS)('an upgrade from an older release’s database on %s', (backend) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
  });

  afterAll(async () => {
    await db?.dispose();
  });

  it('applies the newer migrations once and keeps the data', async () => {
    expect(OLDER.length).toBeGreaterThan(5);
    expect(OLDER.length).toBeLessThan(MIGRATIONS.length);
    const older = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, migrations: OLDER });
    try {
      expect(older.appliedMigrations).toEqual(OLDER.map((m) => m.name));
      // What the older release wrote: an account and its document (the columns of that schema).
      await older.dataSource.query(
        `INSERT INTO account (server_name, user_id, custody, doc_seq) VALUES ($1, $2, 'self', 1)`,
        [SERVER_NAME, USER_ID],
      );
      await older.dataSource.query(
        `INSERT INTO account_document (server_name, seq, document, content_hash) VALUES ($1, 1, $2, $3)`,
        [SERVER_NAME, JSON.stringify({ user_id: USER_ID, seq: 1 }), Buffer.alloc(32, 7)],
      );
      // The older schema has no `taken_down` state yet.
      await expect(
        older.dataSource.query(`UPDATE account SET status = 'taken_down' WHERE server_name = $1`, [SERVER_NAME]),
      ).rejects.toThrow();
    } finally {
      await older.close();
    }

    const upgraded = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    try {
      expect(upgraded.appliedMigrations).toEqual(MIGRATIONS.slice(OLDER.length).map((m) => m.name));
      expect(await schemaDrift(upgraded.dataSource)).toEqual([]);
      const accounts = new SqlAccountRepository(upgraded.dataSource);
      expect(await accounts.findByServerName(SERVER_NAME)).toMatchObject({
        serverName: SERVER_NAME,
        userId: USER_ID,
        custody: 'self',
        status: 'active',
      });
      const [document] = (await upgraded.dataSource.query(
        `SELECT document FROM account_document WHERE server_name = $1`,
        [SERVER_NAME],
      )) as Array<{ document: { user_id: string } }>;
      expect(document?.document.user_id).toBe(USER_ID);
      // A state added since (by a migration of this release) is usable on the upgraded data.
      await upgraded.dataSource.query(`UPDATE account SET status = 'migrated' WHERE server_name = $1`, [SERVER_NAME]);
      expect(await accounts.notServed()).toEqual([SERVER_NAME]);
    } finally {
      await upgraded.close();
    }

    // Opened once more: nothing left to apply.
    const again = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    try {
      expect(again.appliedMigrations).toEqual([]);
    } finally {
      await again.close();
    }
  }, 120_000);
});
