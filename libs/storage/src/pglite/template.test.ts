// A new embedded database is a copy of the migrated template (issue 19, item 2), on real PGlite.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { MIGRATIONS } from '@polyhome/migrations';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage, prepareDatabaseTemplate, schemaDrift, type Storage } from '../data-source.js';
import { AccountEntity } from '../entities/index.js';
import { createTestDatabase, type TestDatabase } from '../testing/backends.js';
import { templateKey, templateRoot } from './template.js';

describe('embedded database template', () => {
  const places: TestDatabase[] = [];
  const place = async (): Promise<TestDatabase> => {
    const db = await createTestDatabase('pglite');
    places.push(db);
    return db;
  };
  afterAll(async () => {
    for (const db of places) await db.dispose();
  });

  async function open(dataDir: string, template?: boolean): Promise<{ storage: Storage; progress: string[] }> {
    const progress: string[] = [];
    const storage = await openStorage({
      dataDir,
      onProgress: (m) => progress.push(m),
      ...(template === undefined ? {} : { template }),
    });
    return { storage, progress };
  }

  it('is kept under the key of the current migrations, next to the build', async () => {
    const made = await prepareDatabaseTemplate();
    expect(made).toBe(path.join(templateRoot(), await templateKey()));
    expect((await stat(path.join(made, 'PG_VERSION'))).isFile()).toBe(true);
    // A second call finds it and makes nothing.
    const progress: string[] = [];
    expect(await prepareDatabaseTemplate((m) => progress.push(m))).toBe(made);
    expect(progress).toEqual([]);
  });

  it('seeds a new database without initdb: every migration in, no drift, owner-only files', async () => {
    await prepareDatabaseTemplate();
    const db = await place();
    const { storage, progress } = await open(db.dataDir);
    try {
      expect(progress.some((m) => m.startsWith('Creating the embedded database'))).toBe(true);
      expect(progress.some((m) => m.includes('initdb'))).toBe(false);
      expect(progress.some((m) => m.startsWith('Applying database migrations'))).toBe(false);
      expect(storage.appliedMigrations).toEqual(MIGRATIONS.map((m) => m.name));
      expect(await schemaDrift(storage.dataSource)).toEqual([]);
    } finally {
      await storage.close();
    }
    const dbDir = path.join(db.dataDir, 'db');
    expect((await stat(dbDir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dbDir, 'PG_VERSION'))).mode & 0o777).toBe(0o600);
  });

  it('gives each database its own copy: a row written in one is not in the next', async () => {
    const first = await place();
    const a = await open(first.dataDir);
    try {
      await a.storage.dataSource.getRepository(AccountEntity).insert({
        serverName: 'a'.repeat(64),
        userId: `@alice:${'a'.repeat(64)}`,
        custody: 'self',
        sealedRootKey: null,
      });
    } finally {
      await a.storage.close();
    }
    const second = await place();
    const b = await open(second.dataDir);
    try {
      expect(await b.storage.dataSource.getRepository(AccountEntity).count()).toBe(0);
    } finally {
      await b.storage.close();
    }
    const reopened = await open(first.dataDir);
    try {
      expect(reopened.storage.appliedMigrations).toEqual([]);
      expect(await reopened.storage.dataSource.getRepository(AccountEntity).count()).toBe(1);
    } finally {
      await reopened.storage.close();
    }
  });

  it('template: false creates the database in place with initdb and every migration', async () => {
    const db = await place();
    const { storage, progress } = await open(db.dataDir, false);
    try {
      expect(progress.some((m) => m.includes('initdb'))).toBe(true);
      expect(progress.some((m) => m.startsWith('Applying database migrations'))).toBe(true);
      expect(storage.appliedMigrations).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await storage.close();
    }
  });
});
