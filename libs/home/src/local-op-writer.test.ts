// LocalOpWriter on both engines: concurrent batches of one home never share a seq; a refused batch applies nothing.
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, SqlReplicaStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import { LocalChangeRefusedError, LocalOpWriter } from './local-op-writer.js';

describe.each(STORAGE_BACKENDS)('LocalOpWriter on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlReplicaStore;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlReplicaStore(storage.dataSource);
  }, 60_000);
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('signs concurrent batches of one account one after another, each with its own seqs', async () => {
    const account = makeAccount({ seed: `local-ops:${backend}`, homes: 1 });
    await store.hostAccount(account.document, { custody: 'self' });
    const home = account.homes[0]!;
    const writer = new LocalOpWriter(store, home.home.peer_id, home.secretKey);
    const batches = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        writer.write(account.serverName, [
          { op: 'member.set', key: `!r${i}:x`, body: { room_id: `!r${i}:x`, membership: 'join' } },
          { op: 'member.set', key: `!s${i}:x`, body: { room_id: `!s${i}:x`, membership: 'join' } },
        ]),
      ),
    );
    const seqs = batches.flat().map((op) => op.seq);
    expect(new Set(seqs).size).toBe(24);
    expect((await store.versionVector(account.serverName))[home.home.peer_id]).toBe(24);
    expect(Object.keys((await store.state(account.serverName)).memberships)).toHaveLength(24);
  });

  it('refuses a batch with an invalid change as a whole', async () => {
    const account = makeAccount({ seed: `local-ops:refused:${backend}`, homes: 1 });
    await store.hostAccount(account.document, { custody: 'self' });
    const home = account.homes[0]!;
    const writer = new LocalOpWriter(store, home.home.peer_id, home.secretKey);
    await expect(
      writer.write(account.serverName, [
        { op: 'member.set', key: '!ok:x', body: { room_id: '!ok:x', membership: 'join' } },
        { op: 'member.set', key: '!bad:x', body: { room_id: '!other:x', membership: 'join' } },
      ]),
    ).rejects.toBeInstanceOf(LocalChangeRefusedError);
    expect(await store.versionVector(account.serverName)).toEqual({});
    // The queue goes on after a refusal.
    const ops = await writer.write(account.serverName, [
      { op: 'member.set', key: '!ok:x', body: { room_id: '!ok:x', membership: 'join' } },
    ]);
    expect(ops[0]!.seq).toBe(1);
  });
});
