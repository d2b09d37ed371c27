// Discovery: a 50-node DHT on 127.0.0.1 (real libp2p TCP nodes in this process, the project's
// /polyhome/kad/1.0.0), an account with 3 homes among them, its signed document published and each home
// providing the account CID through @polyhome/p2p discovery. For each sample, fresh nodes that know one
// random bootstrap peer look the account up by user ID:
//   - all homes: the project's discovery.lookup(userId), checked to return the 3 homes with addresses;
//   - first home: discovery.fetchDocument, then the account CID's providers until the first listed home;
//   - reference: kad-dht getClosestPeers of a random key from another fresh node, in the same network.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, SecretKey } from '@polyhome/identity';
import { accountCid, createDiscovery, createPolyhomeHost } from '@polyhome/p2p';
import { benchHome } from '../lib/accounts.js';

export const description = 'account lookup on a 50-node DHT: first home and all homes (p50/p99) vs getClosestPeers';

const NODES = Number(process.env.BENCH_DHT_NODES ?? 50);
const LOOKUPS = Number(process.env.BENCH_DHT_LOOKUPS ?? 30);
const HOMES = 3;

async function startNode(key, bootstrap) {
  const host = await createPolyhomeHost({
    nodeKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    inboundConnectionThreshold: 10_000,
    maxIncomingPendingConnections: 1000,
  });
  const discovery = createDiscovery({
    peerId: host.peerId,
    dht: host.services.dht,
    peerStore: host.peerStore,
    getConnections: host.getConnections.bind(host),
  });
  const addr = host
    .getMultiaddrs()
    .find((a) => a.toString().startsWith('/ip4/127.0.0.1/'))
    .toString();
  return { host, discovery, addr, peerId: host.peerId.toString() };
}

// A fresh node that knows one random bootstrap peer (one in the DHT: a few peers in its routing table), given
// time to connect and exchange identify; another bootstrap peer is tried if it does not join.
async function freshNode(network) {
  const joined = network.filter((n) => n.host.services.dht.routingTable.size >= 3);
  for (let attempt = 1; ; attempt++) {
    const bootstrap = joined[Math.floor(Math.random() * joined.length)].addr;
    const node = await startNode(SecretKey.generate(), [bootstrap]);
    // Identify adds the bootstrap peer to the routing table shortly after connecting: lookups start then.
    const deadline = Date.now() + 10_000;
    while (node.host.services.dht.routingTable.size === 0 && Date.now() < deadline) await sleep(5);
    if (node.host.services.dht.routingTable.size > 0) return node;
    await node.host.stop();
    if (attempt === 3) throw new Error('fresh nodes did not join the DHT');
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function run(ctx) {
  const network = [];
  try {
    ctx.progress(`starting ${NODES} DHT nodes on 127.0.0.1`);
    for (let i = 0; i < NODES; i++) {
      // Each node bootstraps from the first node and up to 2 random earlier ones.
      const earlier = [
        ...new Set([network[0], ...[...network].sort(() => Math.random() - 0.5).slice(0, 2)].filter(Boolean)),
      ].map((n) => n.addr);
      network.push(await startNode(benchHome(`dht-${i}`).secretKey, earlier));
    }
    // Wait until every routing table has a few peers (identify runs after each connection).
    const settle = Date.now() + 60_000;
    while (network.some((n) => n.host.services.dht.routingTable.size < 3) && Date.now() < settle) await sleep(100);
    const tableSizes = network.map((n) => n.host.services.dht.routingTable.size).sort((a, b) => a - b);
    ctx.progress(
      `routing tables: min ${tableSizes[0]}, median ${percentile(tableSizes, 50)} peers; ` +
        `connections: ${network.map((n) => n.host.getConnections().length).join(',')}`,
    );

    // The account: 3 homes among the DHT nodes (spread out), document published by the first.
    const homeIndexes = [5, Math.floor(NODES / 2), NODES - 3];
    const homes = homeIndexes.map((i) => ({
      node: network[i],
      home: { peer_id: network[i].peerId, role: 'server', name: `home-${i}`, addrs: [] },
    }));
    const rootKey = SecretKey.generate();
    let document = createAccountDocument({ localpart: 'alice', rootKey, home: homes[0].home });
    for (const h of homes.slice(1)) document = addHome(document, h.home, rootKey);
    const userId = document.user_id;
    const serverName = userId.slice(userId.indexOf(':') + 1);
    ctx.progress('publishing the account document and provider records');
    const stored = await homes[0].node.discovery.publishDocument(document);
    for (const h of homes) await h.node.discovery.provide(serverName);
    ctx.progress(`document stored on ${stored} peers; ${HOMES} homes provide the account`);
    if (stored === 0) throw new Error('no DHT peer took the account document');
    const cid = await accountCid(serverName);
    const homeIds = new Set(homes.map((h) => h.node.peerId));

    const first = [];
    const all = [];
    const closest = [];
    const failed = { all: 0, first: 0, closest: 0 };
    // One measurement on a fresh node; a failure is counted (and reported), not retried.
    const attempt = async (kind, i, measure) => {
      const node = await freshNode(network);
      try {
        await measure(node);
      } catch (err) {
        failed[kind] += 1;
        ctx.progress(`${kind} ${i}: ${err.message}`);
      } finally {
        await node.host.stop();
      }
    };
    for (let i = 0; i < LOOKUPS; i++) {
      // All homes: the project's lookup, from a fresh node.
      await attempt('all', i, async (node) => {
        const t0 = performance.now();
        const found = await node.discovery.lookup(userId);
        const took = performance.now() - t0;
        const reachable = found.homes.filter((h) => h.addrs.length > 0).length;
        if (found.homes.length !== HOMES || reachable !== HOMES) {
          throw new Error(`found ${found.homes.length} homes, ${reachable} with addresses`);
        }
        all.push(took);
      });
      // First home: document, then providers until one listed home, from another fresh node.
      await attempt('first', i, async (node) => {
        const t0 = performance.now();
        const doc = await node.discovery.fetchDocument(serverName);
        if (doc?.user_id !== userId) throw new Error('document not found');
        for await (const event of node.host.services.dht.findProviders(cid, { signal: AbortSignal.timeout(30_000) })) {
          if (event.name !== 'PROVIDER') continue;
          if (event.providers.some((p) => homeIds.has(p.id.toString()) && p.multiaddrs.length > 0)) {
            first.push(performance.now() - t0);
            return;
          }
        }
        throw new Error('no home among the providers');
      });
      // Reference: plain kad-dht getClosestPeers of a random key, from a third fresh node.
      await attempt('closest', i, async (node) => {
        const t0 = performance.now();
        const names = new Map();
        for await (const event of node.host.services.dht.getClosestPeers(randomBytes(32), {
          signal: AbortSignal.timeout(30_000),
        })) {
          names.set(event.name, (names.get(event.name) ?? 0) + 1);
        }
        const took = performance.now() - t0;
        if (!names.has('FINAL_PEER') && !names.has('PEER_RESPONSE')) {
          throw new Error(`no peer answered (${JSON.stringify([...names])})`);
        }
        closest.push(took);
      });
      if ((i + 1) % 10 === 0) ctx.progress(`${i + 1}/${LOOKUPS} lookups`);
    }
    for (const list of [first, all, closest]) list.sort((a, b) => a - b);
    const p = (list, q) => (list.length === 0 ? 'not measured' : percentile(list, q));
    const ref = (q) =>
      closest.length === 0 ? 'getClosestPeers failed' : `getClosestPeers p${q} ${percentile(closest, q).toFixed(1)} ms`;
    const ok = (kind, list) => `${list.length}/${LOOKUPS} ok, ${failed[kind]} failed`;
    return [
      {
        figure: 'discovery.first_home.p50_ms',
        value: p(first, 50),
        unit: 'ms',
        reference: `${ref(50)}; ${ok('first', first)}`,
      },
      { figure: 'discovery.first_home.p99_ms', value: p(first, 99), unit: 'ms', reference: ref(99) },
      {
        figure: 'discovery.all_homes.p50_ms',
        value: p(all, 50),
        unit: 'ms',
        reference: `${ref(50)}; ${ok('all', all)}`,
      },
      { figure: 'discovery.all_homes.p99_ms', value: p(all, 99), unit: 'ms', reference: ref(99) },
      {
        figure: 'discovery.lookup_failures',
        value: failed.all + failed.first,
        unit: 'lookups',
        reference: `of ${2 * LOOKUPS}`,
      },
      {
        figure: 'discovery.get_closest_peers.p50_ms',
        value: p(closest, 50),
        unit: 'ms',
        reference: `physical reference: ${NODES}-node DHT, fresh nodes; ${ok('closest', closest)}`,
      },
      {
        figure: 'discovery.get_closest_peers.p99_ms',
        value: p(closest, 99),
        unit: 'ms',
        reference: 'physical reference',
      },
    ];
  } finally {
    await Promise.all(network.map((n) => n.host.stop()));
  }
}
