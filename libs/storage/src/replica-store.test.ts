import { stateOf } from '@polyhome/sync';
import { MemoryReplicaStore, makeAccount } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openStorage } from './data-source.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { replicaStoreSuite, type StoreUnderTest } from './testing/replica-store-suite.js';

replicaStoreSuite('memory (reference)', async () => {
  const store = new MemoryReplicaStore();
  return {
    store,
    host: async (document) => store.host(document),
    state: async (account) => stateOf(store.replica(account)),
    teardown: async () => undefined,
  };
});

async function sqlStore(db: TestDatabase): Promise<StoreUnderTest> {
  const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  const store = new SqlReplicaStore(storage.dataSource);
  let closed = false;
  const close = async () => {
    if (!closed) await storage.close();
    closed = true;
  };
  return {
    store,
    host: (document) => store.hostAccount(document, { custody: 'self' }),
    state: (account) => store.state(account),
    reopen: async () => {
      await close();
      return sqlStore(db);
    },
    teardown: async () => {
      await close();
      await db.dispose();
    },
  };
}

for (const backend of STORAGE_BACKENDS) {
  replicaStoreSuite(`sql on ${backend}`, async () => sqlStore(await createTestDatabase(backend)));
}

describe.each(STORAGE_BACKENDS)('delivery state on %s', (backend) => {
  it('merges concurrent acknowledgements of one peer to the highest seq per origin', async () => {
    const db = await createTestDatabase(backend);
    const sut = await sqlStore(db);
    try {
      const account = await sut.host(makeAccount({ seed: 'acks', homes: 2 }).document);
      const store = sut.store as SqlReplicaStore;
      const vectors = Array.from({ length: 12 }, (_, i) => ({ a: 40 - (i % 3), b: i }));
      await Promise.all(vectors.map((vv) => store.recordAck(account, 'peer', vv)));
      const [row] = await store.deliveryState(account);
      expect(row?.ackedVv).toEqual({ a: 40, b: 11 });
    } finally {
      await sut.teardown();
    }
  });
});
