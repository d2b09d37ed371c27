import { equivocators, pendingCount, stateOf } from '@polyhome/sync';
import { MemoryReplicaStore, makeAccount } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openStorage } from './data-source.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { replicaStoreSuite, type StoreOptions, type StoreUnderTest } from './testing/replica-store-suite.js';

replicaStoreSuite('memory (reference)', async (options) => {
  const store = new MemoryReplicaStore(options);
  return {
    store,
    host: async (document) => store.host(document),
    state: async (account) => stateOf(store.replica(account)),
    pendingCount: async (account) => pendingCount(store.replica(account)),
    equivocators: async (account) => equivocators(store.replica(account)),
    teardown: async () => undefined,
  };
});

async function sqlStore(db: TestDatabase, options: StoreOptions = {}): Promise<StoreUnderTest> {
  const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  const store = new SqlReplicaStore(storage.dataSource, options);
  let closed = false;
  const close = async () => {
    if (!closed) await storage.close();
    closed = true;
  };
  return {
    store,
    host: (document) => store.hostAccount(document, { custody: 'self' }),
    state: (account) => store.state(account),
    pendingCount: async (account) => store.pendingCount(account),
    equivocators: (account) => store.equivocators(account),
    reopen: async () => {
      await close();
      return sqlStore(db, options);
    },
    teardown: async () => {
      await close();
      await db.dispose();
    },
  };
}

for (const backend of STORAGE_BACKENDS) {
  replicaStoreSuite(`sql on ${backend}`, async (options) => sqlStore(await createTestDatabase(backend), options), {
    convergenceRuns: 5,
  });
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
