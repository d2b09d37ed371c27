import { randomBytes } from 'node:crypto';
import { MIGRATIONS } from '@polyhome/migrations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, schemaDrift, type Storage } from './data-source.js';
import { AccountDocumentEntity, AccountEntity, OpEntity } from './entities/index.js';
import { StorageError } from './errors.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';

const serverName = (fill: string) => fill.repeat(64).slice(0, 64);

function account(name: string): Partial<AccountEntity> {
  return { serverName: name, userId: `@alice:${name}`, custody: 'self', sealedRootKey: null };
}

describe.each(STORAGE_BACKENDS)('storage on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  });

  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('runs on the backend it was asked for and applies the migrations once', async () => {
    expect(storage.backend).toBe(backend);
    expect(storage.appliedMigrations).toEqual(MIGRATIONS.map((m) => m.name));
    expect(storage.appliedMigrations.length).toBeGreaterThanOrEqual(2);
    await storage.ping();
  });

  it('has no drift between entities and migrations', async () => {
    expect(await schemaDrift(storage.dataSource)).toEqual([]);
  });

  it('round-trips bigint as string, bytea as Buffer and jsonb as objects, like pg does', async () => {
    const name = serverName('a');
    await storage.dataSource.getRepository(AccountEntity).insert(account(name));
    const hash = randomBytes(32);
    const big = '9007199254740993'; // 2^53 + 1: a number would lose it
    await storage.dataSource.getRepository(OpEntity).insert({
      account: name,
      origin: '12D3KooWorigin',
      seq: '1',
      lamport: big,
      docSeq: '1',
      ts: '1764000000000',
      kind: 'device.put',
      key: 'DEVICE',
      content: { nested: { list: [1, 'two', null] }, emoji: '\u{1F600}' },
      hash,
    });
    const row = await storage.dataSource
      .getRepository(OpEntity)
      .findOneByOrFail({ account: name, origin: '12D3KooWorigin', seq: '1' });
    expect(row.lamport).toBe(big);
    expect(Buffer.isBuffer(row.hash)).toBe(true);
    expect(row.hash.equals(hash)).toBe(true);
    expect(row.content).toEqual({ nested: { list: [1, 'two', null] }, emoji: '\u{1F600}' });
    expect(row.receivedAt).toBeInstanceOf(Date);
  });

  it('enforces the primary key of the op log and cascades account deletion', async () => {
    const name = serverName('b');
    await storage.dataSource.getRepository(AccountEntity).insert(account(name));
    const op = {
      account: name,
      origin: 'p',
      seq: '1',
      lamport: '1',
      docSeq: '1',
      ts: '0',
      kind: 'member.set',
      key: '!room:x',
      content: {},
      hash: Buffer.alloc(32),
    };
    await storage.dataSource.getRepository(OpEntity).insert(op);
    await expect(storage.dataSource.getRepository(OpEntity).insert(op)).rejects.toMatchObject({
      driverError: expect.objectContaining({ code: '23505' }),
    });
    await storage.dataSource.getRepository(AccountDocumentEntity).insert({
      serverName: name,
      seq: '1',
      document: { type: 'polyhome.account' },
      contentHash: Buffer.alloc(32),
      receivedFrom: null,
    });
    await storage.dataSource.getRepository(AccountEntity).delete({ serverName: name });
    expect(await storage.dataSource.getRepository(OpEntity).countBy({ account: name })).toBe(0);
    expect(await storage.dataSource.getRepository(AccountDocumentEntity).countBy({ serverName: name })).toBe(0);
  });

  it('rolls a failed transaction back completely', async () => {
    const name = serverName('c');
    await expect(
      storage.dataSource.transaction(async (manager) => {
        await manager.getRepository(AccountEntity).insert(account(name));
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await storage.dataSource.getRepository(AccountEntity).countBy({ serverName: name })).toBe(0);
  });

  it('isolates concurrent transactions: a rollback in one never leaks, uncommitted rows are not seen', async () => {
    const doomed = serverName('d');
    const kept = serverName('e');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seenByOther: number[] = [];

    const failing = storage.dataSource.transaction(async (manager) => {
      await manager.getRepository(AccountEntity).insert(account(doomed));
      await gate;
      throw new Error('roll back');
    });
    const other = storage.dataSource.transaction(async (manager) => {
      seenByOther.push(await manager.getRepository(AccountEntity).countBy({ serverName: doomed }));
      await manager.getRepository(AccountEntity).insert(account(kept));
    });
    setTimeout(release, 50);
    const results = await Promise.allSettled([failing, other]);
    expect(results[0].status).toBe('rejected');
    expect(results[1].status).toBe('fulfilled');
    expect(seenByOther).toEqual([0]);
    expect(await storage.dataSource.getRepository(AccountEntity).countBy({ serverName: doomed })).toBe(0);
    expect(await storage.dataSource.getRepository(AccountEntity).countBy({ serverName: kept })).toBe(1);
  });

  it('reopens the same database without applying the migrations again, keeping the data', async () => {
    await storage.close();
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    expect(storage.appliedMigrations).toEqual([]);
    expect(await storage.dataSource.getRepository(AccountEntity).countBy({ serverName: serverName('a') })).toBe(1);
    expect(await schemaDrift(storage.dataSource)).toEqual([]);
  });
});

describe('storage shared by several processes', () => {
  it('migrates an empty PostgreSQL database once when several servers open it at the same moment', async () => {
    const db = await createTestDatabase('postgres');
    const opened: Storage[] = [];
    try {
      // Separate DataSources are separate sessions, as separate server processes would be.
      const results = await Promise.allSettled(
        [0, 1, 2].map(() => openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, poolSize: 2 })),
      );
      for (const r of results) if (r.status === 'fulfilled') opened.push(r.value);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
      const applied = opened.map((s) => s.appliedMigrations.length);
      expect(applied.filter((n) => n > 0)).toEqual([MIGRATIONS.length]);
      expect(await schemaDrift(opened[0]!.dataSource)).toEqual([]);
    } finally {
      for (const s of opened) await s.close();
      await db.dispose();
    }
  });
});

describe('storage errors', () => {
  it('refuses a second opener of one embedded data directory', async () => {
    const db = await createTestDatabase('pglite');
    const first = await openStorage({ dataDir: db.dataDir });
    try {
      await expect(openStorage({ dataDir: db.dataDir })).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED' });
    } finally {
      await first.close();
      await db.dispose();
    }
  });

  it('says PostgreSQL is unreachable, without the password, when DATABASE_URL points nowhere', async () => {
    const err = await openStorage({
      databaseUrl: 'postgres://postgres:secret@127.0.0.1:1/test',
      dataDir: '/nonexistent',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('DATABASE_UNREACHABLE');
    expect((err as StorageError).message).not.toContain('secret');
    expect((err as StorageError).message).toContain('127.0.0.1:1');
  });
});
