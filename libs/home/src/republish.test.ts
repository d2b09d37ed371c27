// Republishing on real libp2p over loopback and a real PGlite store (issue 14: a walk of every account at boot
// made 23,565 dials, 23,558 refused, to stopped peers): with no DHT peer nothing is put; the accounts of a
// period are republished in their own slots, spread over it; a stopped peer is dropped after its dial failed
// and is not dialled again by the next republish.
import type { ConnectionGater, PeerId } from '@libp2p/interface';
import { createAccountDocument, keyPairFromSeed, type AccountDocument } from '@polyhome/identity';
import { dhtPeerCount } from '@polyhome/p2p';
import { startNode, waitFor, type TestNode } from '@polyhome/p2p/testing';
import { createInProcessQueue } from '@polyhome/queue';
import { openStorage, SqlReplicaStore } from '@polyhome/storage';
import { createTestDatabase } from '@polyhome/storage/testing';
import { FIXTURE_TS, makeHome, seedFrom, type FixtureHome } from '@polyhome/sync/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { HomeEventMap } from './events.js';
import { Home, republishSlot, type HomeInit } from './home.js';

/** Accounts hosted on the home under test, all naming it as their home. */
const ACCOUNTS = 16;

function documents(home: FixtureHome, label: string): AccountDocument[] {
  return Array.from({ length: ACCOUNTS }, (_, i) =>
    createAccountDocument(
      { localpart: 'user', rootKey: keyPairFromSeed(seedFrom(`${label}:root:${i}`)).secretKey, home: home.home },
      { ts: FIXTURE_TS },
    ),
  );
}

async function runHome(
  fixture: FixtureHome,
  docs: AccountDocument[],
  init: Partial<HomeInit>,
): Promise<{ home: Home; close(): Promise<void> }> {
  const db = await createTestDatabase('pglite');
  const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
  const store = new SqlReplicaStore(storage.dataSource);
  for (const document of docs) await store.hostAccount(document, { custody: 'self' });
  const queue = createInProcessQueue();
  const home = await Home.create(
    { nodeKey: fixture.secretKey, store, queue },
    { listen: ['/ip4/127.0.0.1/tcp/0'], announceEveryMs: 60 * 60 * 1000, ...init },
  );
  await home.start();
  return {
    home,
    close: async () => {
      await queue.close();
      await home.stop();
      await storage.close();
      await db.dispose();
    },
  };
}

/** Counts the puts and provides the home's DHT is asked for (the real calls go through). */
function countDhtWrites(home: Home): { count: number } {
  const dht = home.host.services.dht;
  const counter = { count: 0 };
  const put = dht.put.bind(dht);
  const provide = dht.provide.bind(dht);
  dht.put = (...args) => {
    counter.count++;
    return put(...args);
  };
  dht.provide = (...args) => {
    counter.count++;
    return provide(...args);
  };
  return counter;
}

/** Whether the peer is in the home's kad-dht routing table (its implementation's `find`). */
async function inRoutingTable(home: Home, peer: PeerId): Promise<boolean> {
  const table = (home.host.services.dht as unknown as { routingTable: { find(p: PeerId): Promise<unknown> } })
    .routingTable;
  return (await table.find(peer)) !== undefined;
}

describe('republishing the hosted accounts', () => {
  const running: Array<{ close(): Promise<void> }> = [];
  const nodes: TestNode[] = [];
  afterAll(async () => {
    await Promise.all([...running.map(async (r) => r.close()), ...nodes.map(async (n) => n.stop())]);
  });

  it('puts nothing with no DHT peer, then republishes each account in its slot, spread over the period', async () => {
    const fixture = makeHome('republish:spread', 'server');
    const docs = documents(fixture, 'republish:spread');
    const slots = 8;
    const events: Array<HomeEventMap['republish']> = [];
    // A short period: a slot a second.
    const { home, close } = await runHome(fixture, docs, { announceEveryMs: 8_000, republishSlots: slots });
    running.push({ close });
    const writes = countDhtWrites(home);
    home.on('republish', (event) => events.push(event));

    // Alone: every tick is skipped and not one put or provide is tried.
    await waitFor(() => events.length >= 3, 'three republish ticks', 60_000);
    expect(events.every((e) => e.skipped === 'no DHT peers' && e.accounts.length === 0)).toBe(true);
    expect(writes.count).toBe(0);

    // A DHT peer: the ticks from now on put.
    const peer = await startNode({ nodeKey: makeHome('republish:spread:peer').secretKey });
    nodes.push(peer);
    await home.host.dial(peer.host.getMultiaddrs()[0]!);
    await waitFor(() => dhtPeerCount(home.host) > 0, 'the peer in the routing table');
    const from = events.length;
    const seen = new Set<number>();
    await waitFor(
      () => {
        const ticks = events.slice(from).filter((e) => e.skipped === undefined);
        // A full period after the first tick that put: every slot came once more.
        for (const e of ticks.slice(1)) for (const s of e.slots) seen.add(s);
        return seen.size === slots;
      },
      'a full period of ticks with a DHT peer',
      120_000,
    );
    expect(writes.count).toBeGreaterThan(0);
    const ticks = events.slice(from).filter((e) => e.skipped === undefined);
    // Every account was republished in a tick of its own slot, and only there.
    for (const tick of ticks) {
      for (const account of tick.accounts) expect(tick.slots).toContain(republishSlot(account, slots));
    }
    // Within the full period (the ticks after the first), each account once: all of them, none twice.
    const period = ticks.slice(1).flatMap((t) => t.accounts);
    expect([...period].sort()).toEqual(docs.map((d) => d.user_id.split(':')[1]!).sort());
    // Spread: the accounts came in several ticks, in the order of their slots from the first.
    const withAccounts = ticks.slice(1).filter((t) => t.accounts.length > 0);
    expect(withAccounts.length).toBeGreaterThan(1);
    const offsets = period.map((a) => (republishSlot(a, slots) - ticks[1]!.slots[0]! + slots) % slots);
    expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
  }, 240_000);

  it('drops a stopped peer after its dial failed: the next republish does not dial it again', async () => {
    const fixture = makeHome('republish:stopped', 'server');
    const docs = documents(fixture, 'republish:stopped');
    const { home, close } = await runHome(fixture, docs, {});
    running.push({ close });
    const live = await startNode({ nodeKey: makeHome('republish:stopped:live').secretKey });
    nodes.push(live);
    const stopped = await startNode({ nodeKey: makeHome('republish:stopped:gone').secretKey });
    await home.host.dial(live.host.getMultiaddrs()[0]!);
    await home.host.dial(stopped.host.getMultiaddrs()[0]!);
    await waitFor(
      async () => (await inRoutingTable(home, live.host.peerId)) && (await inRoutingTable(home, stopped.host.peerId)),
      'both peers in the routing table',
    );
    await stopped.stop();
    await waitFor(() => home.host.getConnections(stopped.host.peerId).length === 0, 'the stopped peer disconnected');
    // Stopping closed the connection but kad-dht keeps the contact: without eviction every query dials it.
    expect(await inRoutingTable(home, stopped.host.peerId)).toBe(true);

    // Dials to the stopped peer: libp2p asks the gater before every dial of a peer (a refusal by the backoff
    // is counted apart, as no dial), and dials it only when not refused.
    let dials = 0;
    const gater = (home.host as unknown as { components: { connectionGater: ConnectionGater } }).components
      .connectionGater;
    const denyDialPeer = gater.denyDialPeer!.bind(gater);
    gater.denyDialPeer = async (peer) => {
      const denied = await denyDialPeer(peer);
      if (!denied && peer.equals(stopped.host.peerId)) dials++;
      return denied;
    };
    const republished: string[][] = [];
    home.on('republish', ({ accounts }) => republished.push(accounts));

    // A whole period's republish (every slot due), as the schedule runs it.
    const period = 60 * 60 * 1000;
    await home.republishDue(undefined, Date.now() + period);
    expect(republished.at(-1)).toHaveLength(ACCOUNTS);
    expect(dials).toBeGreaterThan(0);
    expect(home.host.services.unreachablePeers.counts.evicted).toBeGreaterThan(0);
    expect(await inRoutingTable(home, stopped.host.peerId)).toBe(false);
    expect(await home.host.peerStore.has(stopped.host.peerId)).toBe(false);
    const afterFirst = dials;

    // The next period: every account again, and no dial to the stopped peer.
    await home.republishDue(undefined, Date.now() + 2 * period);
    expect(republished.at(-1)).toHaveLength(ACCOUNTS);
    expect(dials).toBe(afterFirst);
    expect(await inRoutingTable(home, live.host.peerId)).toBe(true);
  }, 240_000);
});
