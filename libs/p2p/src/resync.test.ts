// SyncService.resync between real libp2p nodes on 127.0.0.1, anti-entropy off: two homes with an open session
// each hold ops the other lacks, put into their stores with no publish (so the session does not know), and a
// slot of a third home holds a different version on each (an equivocation only digests tell). The resync's
// fresh session exchanges all of it; the counts say what went each way.
import { multiaddr } from '@multiformats/multiaddr';
import { opHash } from '@polyhome/sync';
import { makeAccount, MemoryReplicaStore, OpWriter } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { HomeUnreachableError, ResyncRefusedError } from './errors.js';
import type { ResyncProgress } from './index.js';
import { startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

const account = makeAccount({ seed: 'resync', homes: 3 });
const [homeA, homeB, rogue] = account.homes as [
  (typeof account.homes)[0],
  (typeof account.homes)[0],
  (typeof account.homes)[0],
];

async function start(home: typeof homeA): Promise<TestNode> {
  const store = new MemoryReplicaStore();
  store.host(account.document);
  const node = await startNode({ nodeKey: home.secretKey, store, sync: { antiEntropyInterval: 0 } });
  nodes.push(node);
  await node.sync.host(account.serverName, node.store);
  return node;
}

describe('forced resync', () => {
  it('takes in and sends what each side lacks, digests included, and counts it', async () => {
    const a = await start(homeA);
    const b = await start(homeB);
    const writerA = new OpWriter(account, homeA);
    const writerB = new OpWriter(account, homeB);
    await a.host.dial(multiaddr(b.addr));
    // One op through the session, so that both hellos are behind it before the stores change quietly.
    const first = writerA.devicePut('A0');
    await a.store.applyOps(account.serverName, [first], homeA.peerId);
    a.sync.publish(account.serverName, [first]);
    await waitFor(async () => (await b.store.versionVector(account.serverName))[homeA.peerId] === 1, 'B to hold A0');
    // And B's acknowledgement back at A: B's pump after applying A0 has run, so it cannot carry the quiet ops below.
    await waitFor(async () => {
      const session = a.sync.sessions(account.serverName)[0];
      return session !== undefined && session.inFlight === 0 && session.peerVector[homeA.peerId] === 1;
    }, "A0's acknowledgement from B");
    const one = new OpWriter(account, rogue).devicePut('PHONE');
    const two = new OpWriter(account, rogue).devicePut('TABLET');
    const [low, high] = opHash(one) < opHash(two) ? [one, two] : [two, one];
    // Straight into the stores: no publish, so the open session sends none of it.
    await a.store.applyOps(
      account.serverName,
      [1, 2, 3, 4, 5].map((n) => writerA.devicePut(`A${n}`)),
      homeA.peerId,
    );
    await b.store.applyOps(
      account.serverName,
      [1, 2, 3].map((n) => writerB.devicePut(`B${n}`)),
      homeB.peerId,
    );
    await a.store.applyOps(account.serverName, [high], rogue.peerId);
    await b.store.applyOps(account.serverName, [low], rogue.peerId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await a.store.versionVector(account.serverName))[homeB.peerId]).toBeUndefined();

    const seen: ResyncProgress[] = [];
    const result = await a.sync.resync(account.serverName, homeB.peerId, {
      signal: AbortSignal.timeout(20_000),
      onProgress: (p) => seen.push(p),
      pollInterval: 20,
    });
    // B's three ops, and the lower-hash version of the slot, which replaces A's.
    expect(result).toMatchObject({ phase: 'converged', opsReceived: 4, missingHere: 0, missingThere: 0 });
    // Its five ops and the high version of the slot, then the rogue's log again once the digests differ.
    expect(result.opsSent).toBeGreaterThanOrEqual(6);
    expect(seen[0]?.phase).toBe('connecting');
    expect(await a.store.versionVector(account.serverName)).toEqual(await b.store.versionVector(account.serverName));
    expect(await a.store.logDigests(account.serverName)).toEqual(await b.store.logDigests(account.serverName));
    expect(a.sync.sessions(account.serverName)).toHaveLength(1);
  }, 30_000);

  it('refuses an account not hosted, this home and a peer that is no home; fails on a home that is down', async () => {
    const a = await start(homeA);
    const b = await start(homeB);
    await a.host.peerStore.merge(b.host.peerId, { multiaddrs: [multiaddr(b.addr)] });
    const other = makeAccount({ seed: 'resync-other', homes: 1 });
    await expect(a.sync.resync(other.serverName, homeB.peerId)).rejects.toBeInstanceOf(ResyncRefusedError);
    await expect(a.sync.resync(account.serverName, homeA.peerId)).rejects.toThrow(/cannot resync with itself/);
    await expect(a.sync.resync(account.serverName, other.homes[0]!.peerId)).rejects.toThrow(/not a current home/);
    await b.stop();
    const at = Date.now();
    await expect(
      a.sync.resync(account.serverName, homeB.peerId, { signal: AbortSignal.timeout(20_000) }),
    ).rejects.toBeInstanceOf(HomeUnreachableError);
    expect(Date.now() - at).toBeLessThan(20_000);
  }, 30_000);
});
