// hostMany: accounts served without a store read each, from their homes' PeerIds; sessions open with those
// homes only, and forgetting an account forgets its homes too. Real libp2p nodes on 127.0.0.1.
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, createAccountDocument } from '@polyhome/identity';
import { makeLocalOp } from '@polyhome/sync';
import { deviceBody, makeAccount, makeHome, MemoryReplicaStore } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { AccountNotHostedError } from './errors.js';
import { startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

describe('SyncService.hostMany', () => {
  it('serves many accounts from one store; each syncs with the homes it lists, and unhost forgets them', async () => {
    const x = makeHome('many:x', 'server');
    const y = makeHome('many:y');
    const z = makeHome('many:z');
    const a = makeAccount({ seed: 'many:a', homes: 1 });
    const b = makeAccount({ seed: 'many:b', homes: 1 });
    // Account a lives on x and y; account b on x and z.
    const docA = addHome(
      createAccountDocument({ localpart: 'alice', rootKey: a.rootKey, home: x.home }),
      y.home,
      a.rootKey,
    );
    const docB = addHome(
      createAccountDocument({ localpart: 'alice', rootKey: b.rootKey, home: x.home }),
      z.home,
      b.rootKey,
    );

    const storeX = new MemoryReplicaStore();
    storeX.host(docA);
    storeX.host(docB);
    const nodeX = await startNode({ nodeKey: x.secretKey, store: storeX });
    nodes.push(nodeX);
    nodeX.sync.hostMany(
      [
        { account: a.serverName, homes: [x.peerId, y.peerId] },
        { account: b.serverName, homes: [x.peerId, z.peerId] },
      ],
      storeX,
    );
    expect(nodeX.sync.hosted().sort()).toEqual([a.serverName, b.serverName].sort());
    expect(() => nodeX.sync.hostMany([{ account: 'not-a-server-name', homes: [] }], storeX)).toThrow(
      AccountNotHostedError,
    );

    const storeY = new MemoryReplicaStore();
    storeY.host(docA);
    const nodeY = await startNode({ nodeKey: y.secretKey, store: storeY });
    nodes.push(nodeY);
    await nodeY.sync.host(a.serverName, storeY);
    const op = makeLocalOp(
      storeY.replica(a.serverName),
      y.secretKey,
      { op: 'device.put', key: 'PHONE', body: { ...deviceBody(a, 'PHONE') } },
      1_764_000_000_000,
    );
    expect((await storeY.applyOps(a.serverName, [op], y.peerId)).accepted).toHaveLength(1);

    await nodeY.host.dial(multiaddr(nodeX.addr));
    await waitFor(async () => (await storeX.versionVector(a.serverName))[y.peerId] === 1, 'op of y reaches x');
    // Only the account y is a home of has a session with y.
    expect(nodeX.sync.sessions().map((s) => [s.account, s.peerId])).toEqual([[a.serverName, y.peerId]]);

    const storeZ = new MemoryReplicaStore();
    storeZ.host(docB);
    const nodeZ = await startNode({ nodeKey: z.secretKey, store: storeZ });
    nodes.push(nodeZ);
    await nodeZ.sync.host(b.serverName, storeZ);
    await nodeZ.host.dial(multiaddr(nodeX.addr));
    await waitFor(
      () => nodeX.sync.sessions(b.serverName).some((s) => s.peerId === z.peerId),
      'session of account b with z',
    );

    // Once x stops hosting a, y is refused when it asks again: the account was dropped with its homes.
    await nodeX.sync.unhost(a.serverName);
    expect(nodeX.sync.hosted()).toEqual([b.serverName]);
    const refused: string[] = [];
    nodeY.sync.on('rejected', (e) => refused.push(e.code));
    await nodeY.host.hangUp(nodeX.host.peerId);
    await nodeY.host.dial(multiaddr(nodeX.addr));
    await waitFor(() => refused.includes('NOT_A_HOME'), 'y refused for account a');
    expect(nodeX.sync.sessions(a.serverName)).toEqual([]);
  });
});
