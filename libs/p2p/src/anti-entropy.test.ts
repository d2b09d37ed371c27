// Anti-entropy between real libp2p nodes on 127.0.0.1: two homes hold different versions of one slot while
// nothing happens (the lower-hash version was put into one store directly, so no sync event announced it).
// Each end of the open session sends a new hello every antiEntropyInterval (jittered) and compares digests
// again, so they converge with no local change; with it turned off they would stay split until the session
// ends.
import { multiaddr } from '@multiformats/multiaddr';
import { opHash } from '@polyhome/sync';
import { makeAccount, MemoryReplicaStore, OpWriter } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

describe('anti-entropy on open sessions', () => {
  it('heals two quiet homes that hold different versions of a slot, within a few periods', async () => {
    const account = makeAccount({ seed: 'anti-entropy', homes: 3 });
    const [homeA, homeB, rogue] = account.homes;
    const start = async (home: typeof homeA): Promise<TestNode> => {
      const store = new MemoryReplicaStore();
      store.host(account.document);
      const node = await startNode({ nodeKey: home!.secretKey, store, sync: { antiEntropyInterval: 300 } });
      nodes.push(node);
      await node.sync.host(account.serverName, node.store);
      return node;
    };
    const a = await start(homeA);
    const b = await start(homeB);
    const one = new OpWriter(account, rogue!).devicePut('PHONE');
    const two = new OpWriter(account, rogue!).devicePut('TABLET');
    const [low, high] = opHash(one) < opHash(two) ? [one, two] : [two, one];
    // Both hold the higher-hash version, through the session.
    expect((await a.store.applyOps(account.serverName, [high], rogue!.peerId)).accepted).toHaveLength(1);
    await a.host.dial(multiaddr(b.addr));
    a.sync.publish(account.serverName);
    await waitFor(async () => (await b.store.versionVector(account.serverName))[rogue!.peerId] === 1, 'B to hold it');
    // The lower-hash version reaches B's store alone, with no event and no publish: only anti-entropy can tell A.
    const result = await b.store.applyOps(account.serverName, [low], rogue!.peerId);
    expect(result.equivocations).toHaveLength(1);
    const digests = async (n: TestNode): Promise<string | undefined> =>
      (await n.store.logDigests(account.serverName))[rogue!.peerId];
    expect(await digests(a)).not.toBe(await digests(b));
    await waitFor(async () => (await digests(a)) === (await digests(b)), 'A to take the lower-hash version', 10_000);
    expect(a.sync.sessions(account.serverName)).toHaveLength(1);
  }, 30_000);
});
