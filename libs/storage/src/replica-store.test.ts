import { LAZY_NAMESPACES, OP_KIND_LIST, equivocators, fieldOf, pendingCount, putState, stateOf } from '@polyhome/sync';
import { MemoryReplicaStore, makeAccount, writers } from '@polyhome/sync/testing';
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
    // The whole state as the memory store holds it: what `state` reads, plus the lazy namespaces read apart.
    state: async (account) => {
      const state = await store.state(account);
      for (const namespace of LAZY_NAMESPACES) {
        for (const row of await store.stateRows(account, namespace)) {
          if (row.value !== null) putState(state, fieldOf(namespace)!, row.key, row.value);
        }
      }
      return state;
    },
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

describe.each(STORAGE_BACKENDS)('stored rows of every op kind on %s', (backend) => {
  it('writes the op kinds and state rows the store wrote before the op-kind registry', async () => {
    const db = await createTestDatabase(backend);
    const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    try {
      const store = new SqlReplicaStore(storage.dataSource);
      const fixture = makeAccount({ seed: 'rows', homes: 2 });
      const account = await store.hostAccount(fixture.document, { custody: 'self' });
      const [w] = writers(fixture);
      const ops = OP_KIND_LIST.map((kind) => w!.sample(kind));
      expect((await store.applyOps(account, ops, fixture.homes[1]!.peerId)).accepted).toHaveLength(ops.length);
      // Literal on purpose: these rows are the stored format (no migration), whatever the registry derives.
      const opRows = await storage.dataSource.query<Array<{ kind: string; key: string }>>(
        'SELECT kind, key FROM op WHERE account = $1 ORDER BY seq',
        [account],
      );
      expect(opRows).toEqual([
        { kind: 'device.put', key: 'SAMPLE' },
        { kind: 'device.delete', key: 'SAMPLE' },
        { kind: 'member.set', key: '!sample:x' },
        { kind: 'cross_signing.put', key: 'self_signing' },
        { kind: 'account_data.put', key: 'm.direct' },
        { kind: 'room_account_data.put', key: '["!sample:x","m.tag"]' },
        { kind: 'profile.set', key: 'displayname' },
        { kind: 'push_rule.put', key: '["override","sample"]' },
        { kind: 'push_rule.delete', key: '["override","sample"]' },
        { kind: 'password.set', key: 'verifier' },
        { kind: 'room_keys.version.put', key: '1-0a1b2c3d' },
        { kind: 'room_keys.version.delete', key: '1-0a1b2c3d' },
        { kind: 'room_keys.key.put', key: '["1-0a1b2c3d","!sample:x","sample-session"]' },
        { kind: 'room_keys.key.delete', key: '["1-0a1b2c3d","!sample:x","sample-session"]' },
      ]);
      const stateRows = await storage.dataSource.query<Array<Record<string, unknown>>>(
        `SELECT namespace, key, seq::int AS seq, deleted, value FROM account_state WHERE account = $1 ORDER BY namespace`,
        [account],
      );
      expect(stateRows).toEqual([
        { namespace: 'account_data', key: 'm.direct', seq: 5, deleted: false, value: ops[4]!.body },
        { namespace: 'cross_signing', key: 'self_signing', seq: 4, deleted: false, value: ops[3]!.body },
        { namespace: 'device', key: 'SAMPLE', seq: 2, deleted: true, value: null },
        { namespace: 'member', key: '!sample:x', seq: 3, deleted: false, value: ops[2]!.body },
        { namespace: 'password', key: 'verifier', seq: 10, deleted: false, value: ops[9]!.body },
        { namespace: 'profile', key: 'displayname', seq: 7, deleted: false, value: ops[6]!.body },
        { namespace: 'push_rule', key: '["override","sample"]', seq: 9, deleted: true, value: null },
        { namespace: 'room_account_data', key: '["!sample:x","m.tag"]', seq: 6, deleted: false, value: ops[5]!.body },
        {
          namespace: 'room_keys_key',
          key: '["1-0a1b2c3d","!sample:x","sample-session"]',
          seq: 14,
          deleted: true,
          value: null,
        },
        { namespace: 'room_keys_version', key: '1-0a1b2c3d', seq: 12, deleted: true, value: null },
      ]);
    } finally {
      await storage.close();
      await db.dispose();
    }
  });
});
