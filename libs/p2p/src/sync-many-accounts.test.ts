// Two homes that share many accounts connect: each account's session opens over the one connection, the
// connection is never aborted for opening too many streams at once (yamux's MaxEarlyStreamsError), and every
// account converges. Real libp2p nodes over TCP on 127.0.0.1.
import type { Connection } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, createAccountDocument } from '@polyhome/identity';
import { makeLocalOp } from '@polyhome/sync';
import { deviceBody, makeAccount, makeHome, MemoryReplicaStore } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

/**
 * Accounts the two homes share: ten times yamux's default maxEarlyStreams (10), more than MUXER_MAX_EARLY_STREAMS
 * (so only the bounded opening keeps the connection) and more than the former sync stream cap of 64.
 */
const ACCOUNTS = 100;

/** Every connection close a node sees, with the error that ended it (if any). */
function watchCloses(node: TestNode, closes: string[]): void {
  const watch = (connection: Connection): void => {
    connection.addEventListener('close', (event) => {
      const error = (event as unknown as { error?: Error }).error;
      closes.push(
        `${node.peerId.slice(-6)} ${connection.direction}: ${error?.name ?? 'closed'} ${error?.message ?? ''}`,
      );
    });
  };
  node.host.addEventListener('connection:open', (event) => watch(event.detail));
}

describe('sessions of many accounts with one peer', () => {
  it(`${ACCOUNTS} shared accounts all open and converge over one connection, which is never aborted`, async () => {
    const x = makeHome('streams:x', 'server');
    const y = makeHome('streams:y', 'server');
    const storeX = new MemoryReplicaStore();
    const storeY = new MemoryReplicaStore();
    const accounts: string[] = [];
    for (let i = 0; i < ACCOUNTS; i++) {
      const a = makeAccount({ seed: `streams:${i}`, homes: 1 });
      const doc = addHome(
        createAccountDocument({ localpart: 'alice', rootKey: a.rootKey, home: x.home }),
        y.home,
        a.rootKey,
      );
      storeX.host(doc);
      storeY.host(doc);
      accounts.push(a.serverName);
      // Each home holds one op of its own per account, which the other lacks.
      for (const [store, home] of [
        [storeX, x],
        [storeY, y],
      ] as const) {
        const op = makeLocalOp(
          store.replica(a.serverName),
          home.secretKey,
          {
            op: 'device.put',
            key: `D${home.peerId.slice(-4)}`,
            body: { ...deviceBody(a, `D${home.peerId.slice(-4)}`) },
          },
          1_764_000_000_000,
        );
        expect((await store.applyOps(a.serverName, [op], home.peerId)).accepted).toHaveLength(1);
      }
    }

    const nodeX = await startNode({ nodeKey: x.secretKey, store: storeX });
    nodes.push(nodeX);
    const nodeY = await startNode({ nodeKey: y.secretKey, store: storeY });
    nodes.push(nodeY);
    const closes: string[] = [];
    watchCloses(nodeX, closes);
    watchCloses(nodeY, closes);
    const list = accounts.map((account) => ({ account, homes: [x.peerId, y.peerId] }));
    nodeX.sync.hostMany(list, storeX);
    nodeY.sync.hostMany(list, storeY);

    await nodeY.host.dial(multiaddr(nodeX.addr));
    const converged = async (): Promise<number> => {
      let count = 0;
      for (const account of accounts) {
        const [vx, vy] = [await storeX.versionVector(account), await storeY.versionVector(account)];
        if (vx[y.peerId] === 1 && vy[x.peerId] === 1) count++;
      }
      return count;
    };
    // A connection aborted on the way fails at once, with why, instead of waiting out the deadline.
    await waitFor(
      async () => {
        if (closes.length > 0) throw new Error(`connection closed while syncing: ${closes.join('; ')}`);
        return (await converged()) === ACCOUNTS;
      },
      `all ${ACCOUNTS} accounts converged`,
      120_000,
    );
    expect(closes).toEqual([]);
    expect(nodeX.host.getConnections(nodeY.host.peerId)).toHaveLength(1);
    // One session per account with the peer, on each end (the one opened by the lower PeerId).
    await waitFor(
      () => nodeX.sync.sessions().length === ACCOUNTS && nodeY.sync.sessions().length === ACCOUNTS,
      'one session per account on each end',
      60_000,
    );
  });
});
