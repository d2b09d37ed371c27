// SQL statements a server home sends for one op a connected home pushes (issue 14: at most 8 per op in all), on real
// PostgreSQL and PGlite: the sync layer's share, counted by the storage drivers (sqlStatementsSent). A client home on
// an in-memory store dials a server home on SQL storage and pushes one device.put; the count covers the whole session
// (its opening, the hellos, the batch, the ack), then a second op on the same session. Nothing polls the database
// while counting: the test waits on events.
import { startNode, type TestNode } from '@polyhome/p2p/testing';
import { openStorage, SqlReplicaStore, sqlStatementsSent, type Storage, type StorageBackend } from '@polyhome/storage';
import { createTestDatabase, type TestDatabase } from '@polyhome/storage/testing';
import { makeLocalOp, type Op } from '@polyhome/sync';
import { deviceBody, makeAccount, memberBody, MemoryReplicaStore, type FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The sync layer's statements for the first op of a session: opening (1 read) and the batch's transaction (5). */
const FIRST_OP_STATEMENTS = 6;
/** For a further op on the open session: the batch's transaction alone. */
const NEXT_OP_STATEMENTS = 5;

const backends: StorageBackend[] = ['postgres', 'pglite'];

describe.each(backends)('SQL statements per op pushed by a connected home, on %s', (backend) => {
  let account: FixtureAccount;
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlReplicaStore;
  let server: TestNode;
  let client: TestNode;
  const memory = new MemoryReplicaStore();
  /** Acks the server would record (a Home records those the store did not record with the batch). */
  const ackWrites: Array<Promise<void>> = [];

  beforeAll(async () => {
    account = makeAccount({ seed: `statements-${backend}-${process.pid}`, homes: 2 });
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    store = new SqlReplicaStore(storage.dataSource);
    await store.hostAccount(account.document, { custody: 'self' });
    server = await startNode({ nodeKey: account.homes[0]!.secretKey });
    server.sync.on('acked', ({ account: name, peerId, vv, recorded }) => {
      if (recorded !== true) ackWrites.push(store.recordAck(name, peerId, vv));
    });
    await server.sync.host(account.serverName, store);
    client = await startNode({ nodeKey: account.homes[1]!.secretKey });
    memory.host(account.document);
    await client.sync.host(account.serverName, memory);
  });

  afterAll(async () => {
    await client?.stop();
    await server?.stop();
    await Promise.all(ackWrites);
    await storage?.close();
    await db?.dispose();
  });

  /** Makes the client's next op, pushes it, and resolves once the server applied it and the client has its ack. */
  async function push(deviceId: string, connect: boolean): Promise<{ op: Op; statements: number }> {
    const self = account.homes[1]!;
    const op = makeLocalOp(
      memory.replica(account.serverName),
      self.secretKey,
      { op: 'device.put', key: deviceId, body: { ...deviceBody(account, deviceId) } },
      Date.now(),
    );
    expect((await memory.applyOps(account.serverName, [op], self.peerId)).accepted).toHaveLength(1);
    const applied = new Promise<void>((resolve) => {
      const off = server.sync.on('applied', ({ ops }) => {
        if (!ops.some((o) => o.origin === op.origin && o.seq === op.seq)) return;
        off();
        resolve();
      });
    });
    const acked = new Promise<void>((resolve) => {
      const off = client.sync.on('acked', ({ vv }) => {
        if ((vv[op.origin] ?? 0) < op.seq) return;
        off();
        resolve();
      });
    });
    const before = sqlStatementsSent();
    if (connect) await client.host.dial(server.host.getMultiaddrs()[0]!);
    else client.sync.publish(account.serverName, [op]);
    await Promise.all([applied, acked]);
    await Promise.all(ackWrites);
    return { op, statements: sqlStatementsSent() - before };
  }

  it('sends at most 6 statements for the first op of a session and 5 for the next, and writes what they say', async () => {
    const first = await push('DEVICEA', true);
    const next = await push('DEVICEB', false);
    console.info(`${backend}: ${first.statements} statements for the first op, ${next.statements} for the next`);
    expect(first.statements).toBeLessThanOrEqual(FIRST_OP_STATEMENTS);
    expect(next.statements).toBeLessThanOrEqual(NEXT_OP_STATEMENTS);
    // What was written is what a fresh read finds: the ops, the heads and digests the session now holds, the state,
    // and the client recorded as holding both ops (with the batch, no separate write).
    const local = await store.local(account.serverName);
    expect(local?.vv).toEqual({ [first.op.origin]: 2 });
    expect(local?.digests).toEqual(await memory.logDigests(account.serverName));
    expect(Object.keys((await store.state(account.serverName)).devices).sort()).toEqual(['DEVICEA', 'DEVICEB']);
    const [delivery] = await store.deliveryState(account.serverName);
    expect(delivery?.peerId).toBe(account.homes[1]!.peerId);
    expect(delivery?.ackedVv).toEqual({ [first.op.origin]: 2 });
  });

  it('lists the accounts in a room joined or invited to, and no other (the start-up takes in their rooms)', async () => {
    expect(await store.accountsInRooms({ limit: 10 })).toEqual([]);
    const self = account.homes[1]!;
    const member = (roomId: string, membership: 'join' | 'leave') =>
      makeLocalOp(
        memory.replica(account.serverName),
        self.secretKey,
        { op: 'member.set', key: roomId, body: { ...memberBody(roomId, membership) } },
        Date.now(),
      );
    const left = member('!left:example.org', 'leave');
    await memory.applyOps(account.serverName, [left], self.peerId);
    expect((await store.applyOps(account.serverName, [left], self.peerId)).accepted).toHaveLength(1);
    expect(await store.accountsInRooms({ limit: 10 })).toEqual([]);
    const joined = member('!joined:example.org', 'join');
    expect((await store.applyOps(account.serverName, [joined], self.peerId)).accepted).toHaveLength(1);
    expect(await store.accountsInRooms({ limit: 10 })).toEqual([account.serverName]);
    expect(await store.accountsInRooms({ after: account.serverName, limit: 10 })).toEqual([]);
  });
});
