// The /sync change feed on PostgreSQL and PGlite: changes reported by many accounts at once are written in one
// transaction per flush (group commit), each caller answered and each account's long-polls woken once its
// changes are in the stream; an account the store refuses does not cost the others theirs; shutdown drains it.
import { EventEmitter } from 'node:events';
import { ChangeFeedService, type MatrixHomePort, type MatrixStore } from '@polyhome/matrix';
import { openStorage, sqlStatementsSent, SqlMatrixStore, SqlReplicaStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ACCOUNTS = 40;

describe.each(STORAGE_BACKENDS)('change feed on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlMatrixStore;
  let feed: ChangeFeedService;
  const changed = new EventEmitter();
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => makeAccount({ seed: `change-feed:${i}`, homes: 1 }));
  const names = accounts.map((account) => account.serverName);

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const replica = new SqlReplicaStore(storage.dataSource);
    await replica.hostAccounts(
      accounts.map((account) => account.document),
      { custody: 'self' },
    );
    store = new SqlMatrixStore(storage.dataSource);
    // Only what the feed uses of the port: its change events and the state of deleted devices.
    const port = {
      onChanged: (listener: (serverName: string, keys: string[]) => void) =>
        changed.on('changed', (serverName: string, keys: string[]) => listener(serverName, keys)),
      state: (serverName: string) => replica.state(serverName),
      stateRows: (serverName: string, namespace: string, prefix?: string) =>
        replica.stateRows(serverName, namespace, prefix),
    } as unknown as MatrixHomePort;
    feed = new ChangeFeedService(port, store as unknown as MatrixStore);
    feed.onModuleInit();
  });

  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('writes a burst of changes from many accounts in two transactions and answers every caller', async () => {
    const before = await store.position();
    const sent = sqlStatementsSent();
    // The first account's flush starts at once; the others wait for it and are written together in the next.
    await Promise.all(names.map((name, i) => feed.record(name, [`member:!burst${i}`, `room:!burst${i}`])));
    // BEGIN, the stream's lock (PostgreSQL only: PGlite's one session needs none), the append, COMMIT.
    expect(sqlStatementsSent() - sent).toBe(2 * (backend === 'pglite' ? 3 : 4));
    for (const [i, name] of names.entries()) {
      expect(await store.changesSince(name, before)).toMatchObject({
        keys: [`member:!burst${i}`, `room:!burst${i}`],
        expired: false,
      });
    }
  });

  it('wakes an account’s long-poll once its change can be read, and only that account’s', async () => {
    const before = await store.position();
    const mine = feed.waitForChange(names[0]!, 30_000);
    const other = feed.waitForChange(names[1]!, 30_000);
    let otherWoken = false;
    void other.promise.then(() => (otherWoken = true));
    changed.emit('changed', names[0], ['device:NEW']);
    await mine.promise;
    expect((await store.changesSince(names[0]!, before)).keys).toEqual(['device:NEW']);
    expect(otherWoken).toBe(false);
    other.cancel();
  });

  it('says a change is readable only when a read sent then sees it (on PGlite before the commit), and wakes then', async () => {
    const before = await store.position();
    const reads: Array<ReturnType<SqlMatrixStore['changesSince']>> = [];
    const position = await store.recordChangesOf(new Map([[names[3]!, ['device:EARLY']]]), () =>
      reads.push(store.changesSince(names[3]!, before)),
    );
    expect(reads).toHaveLength(1);
    expect(await reads[0]).toEqual({ position, keys: ['device:EARLY'], expired: false });
    // Through the feed: a long-poll reading as soon as it is woken gets the change and the position it was written at.
    const wait = feed.waitForChange(names[3]!, 30_000);
    const read = wait.promise.then(() => store.changesSince(names[3]!, position));
    await feed.record(names[3]!, ['device:LATER']);
    expect(await read).toEqual({ position: await store.position(), keys: ['device:LATER'], expired: false });
  });

  it('leaves out key backup, which /sync does not stream', async () => {
    const before = await store.position();
    changed.emit('changed', names[2], ['room_keys_key:1/!room/session', 'member:!seen']);
    await feed.drain();
    expect((await store.changesSince(names[2]!, before)).keys).toEqual(['member:!seen']);
  });

  it('writes the other accounts of a flush when the store refuses one', async () => {
    const before = await store.position();
    const stranger = makeAccount({ seed: 'change-feed:stranger', homes: 1 }).serverName;
    // Held back behind a first flush, so the three are written together (and then, after the refusal, alone).
    const first = feed.record(names[3]!, ['member:!first']);
    const batch = [
      feed.record(names[4]!, ['member:!kept4']),
      feed.record(stranger, ['member:!refused']),
      feed.record(names[5]!, ['member:!kept5']),
    ];
    await Promise.all([first, ...batch]);
    expect((await store.changesSince(names[4]!, before)).keys).toEqual(['member:!kept4']);
    expect((await store.changesSince(names[5]!, before)).keys).toEqual(['member:!kept5']);
  });

  it('drains: every change reported before it is written when it resolves', async () => {
    const before = await store.position();
    for (const [i, name] of names.entries()) changed.emit('changed', name, [`member:!drain${i}`]);
    await feed.drain();
    for (const [i, name] of names.entries())
      expect((await store.changesSince(name, before)).keys).toEqual([`member:!drain${i}`]);
  });
});
