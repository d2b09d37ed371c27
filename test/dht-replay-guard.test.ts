// The DHT replay guard backed by the database (issue 13, item 7): a node whose SeqGuardStore is the SQL store
// looks an account up, restarts (libp2p node and database closed, DHT store and caches gone) and still refuses
// a replayed older document, on PGlite and on PostgreSQL.
import { freePort, putDhtRecord, startNode, waitForDhtPeers, type TestNode } from '@polyhome/p2p/testing';
import { openStorage, SqlSeqGuardStore, type Storage } from '@polyhome/storage';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from '@polyhome/storage/testing';
import { makeAccount, makeHome, withoutHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe.each(STORAGE_BACKENDS)('DHT replay guard on a %s store across a restart', (backend) => {
  const account = makeAccount({ seed: `guard-sql-${backend}`, homes: 2 });
  const old = account.document;
  const current = withoutHome(account, old, account.homes[1]!.peerId, 0);
  const nodeKey = makeHome(`guard-sql-${backend}:node`).secretKey;
  const running: TestNode[] = [];
  let db: TestDatabase;
  let storage: Storage | undefined;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
  });
  afterAll(async () => {
    await Promise.all(running.map(async (n) => n.stop()));
    await storage?.close();
    await db.dispose();
  });

  const startGuarded = async (port: number, bootstrap: string[]): Promise<TestNode> => {
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    const store = await SqlSeqGuardStore.open(storage.dataSource);
    const node = await startNode({ nodeKey, port, bootstrap, recordGuard: { store } });
    running.push(node);
    return node;
  };

  it('refuses the replay after the restart, from what the database remembered', async () => {
    const port = await freePort();
    const home = await startNode({ nodeKey: account.homes[0]!.secretKey });
    running.push(home);
    let node = await startGuarded(port, [home.addr]);
    await waitForDhtPeers(home, [node.host.peerId]);
    await home.discovery.publishDocument(old);
    await home.discovery.publishDocument(current);
    expect((await node.discovery.fetchDocument(account.serverName))?.seq).toBe(current.seq);

    running.splice(running.indexOf(node), 1);
    await node.stop();
    await storage!.close();
    running.splice(running.indexOf(home), 1);
    await home.stop();
    node = await startGuarded(port, []);
    expect(node.host.services.recordGuard.storedSeq(account.serverName)).toBeUndefined();
    expect(node.host.services.recordGuard.cachedSeq(account.serverName)).toBeUndefined();

    const attacker = await startNode({
      nodeKey: makeHome(`guard-sql-${backend}:attacker`).secretKey,
      bootstrap: [node.addr],
    });
    running.push(attacker);
    await waitForDhtPeers(attacker, [node.host.peerId]);
    expect(await putDhtRecord(attacker, old)).toEqual({ stored: 0, refused: 1 });
    expect(node.host.services.recordGuard.storedSeq(account.serverName)).toBeUndefined();
    expect(await putDhtRecord(attacker, current)).toEqual({ stored: 1, refused: 0 });
    expect(node.host.services.recordGuard.storedSeq(account.serverName)).toBe(current.seq);
  }, 120_000);
});
