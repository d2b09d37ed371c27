// Republish with stopped peers (issue 14: a server's republish of every account made 23,565 dials in 2.5 minutes
// with stopped peers in its routing table, 23,558 of them refused). Real libp2p TCP nodes on 127.0.0.1 in this
// process: a home host, BENCH_REPUBLISH_LIVE live DHT peers and BENCH_REPUBLISH_STOPPED peers that joined its
// routing table and were then stopped. The home republishes BENCH_REPUBLISH_ACCOUNTS accounts twice, as
// Home.announce does each (provide the account CID, put its signed document, through @polyhome/p2p discovery),
// one after the other. Dials to the stopped peers are counted at the connection gater (libp2p asks it before
// dialling a peer; a dial it refuses opens no socket and is not counted). Reference measured in the same run:
// the same republish from a home whose routing table holds only the live peers.
import { performance } from 'node:perf_hooks';
import { createAccountDocument, SecretKey } from '@polyhome/identity';
import { createDiscovery, createPolyhomeHost } from '@polyhome/p2p';
import { benchHome } from '../lib/accounts.js';

export const description = 'republish of many accounts with stopped peers in the routing table: dials and time';

const ACCOUNTS = Number(process.env.BENCH_REPUBLISH_ACCOUNTS ?? 50);
const LIVE = Number(process.env.BENCH_REPUBLISH_LIVE ?? 5);
const STOPPED = Number(process.env.BENCH_REPUBLISH_STOPPED ?? 20);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function startHost(key) {
  const host = await createPolyhomeHost({
    nodeKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    maxIncomingPendingConnections: 1000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
    // A loaded machine: the noise handshake alone took over the default 10 s.
    dialTimeout: 60_000,
  });
  const discovery = createDiscovery({
    peerId: host.peerId,
    dht: host.services.dht,
    peerStore: host.peerStore,
    getConnections: host.getConnections.bind(host),
    recordGuard: host.services.recordGuard,
    // Absent before the eviction of unreachable peers existed: then nothing is reported.
    unreachable: host.services.unreachablePeers,
  });
  const addr = host.getMultiaddrs().find((a) => a.toString().startsWith('/ip4/127.0.0.1/'));
  return { host, discovery, addr };
}

/** Counts the dials the host's connection gater lets through to the given peers. */
function countDials(host, peers) {
  const gater = host.components.connectionGater;
  const deny = gater.denyDialPeer?.bind(gater) ?? (async () => false);
  const counter = { dials: 0 };
  gater.denyDialPeer = async (peer) => {
    const denied = await deny(peer);
    if (!denied && peers.has(peer.toString())) counter.dials++;
    return denied;
  };
  return counter;
}

/** Dials a peer for the setup, a few attempts (a dial of the setup can time out on a loaded machine). */
async function connect(host, addr) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await host.dial(addr);
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
}

async function waitForTable(host, size) {
  const deadline = Date.now() + 60_000;
  while (host.services.dht.routingTable.size < size && Date.now() < deadline) await sleep(50);
  if (host.services.dht.routingTable.size < size) {
    throw new Error(`routing table holds ${host.services.dht.routingTable.size} peers, expected ${size}`);
  }
}

/** One republish of every account, as Home.announce does each; returns the time taken, ms. */
async function republish(discovery, documents) {
  const t0 = performance.now();
  for (const { serverName, document } of documents) {
    await discovery.provide(serverName);
    await discovery.publishDocument(document);
  }
  return performance.now() - t0;
}

export async function run(ctx) {
  const started = [];
  const start = async (label) => {
    const node = await startHost(benchHome(label).secretKey);
    started.push(node);
    return node;
  };
  try {
    const home = await start('republish-home');
    const reference = await start('republish-reference');
    const live = [];
    for (let i = 0; i < LIVE; i++) live.push(await start(`republish-live-${i}`));
    const stopped = [];
    for (let i = 0; i < STOPPED; i++) stopped.push(await start(`republish-stopped-${i}`));
    for (const peer of [...live, ...stopped]) await connect(home.host, peer.addr);
    for (const peer of live) await connect(reference.host, peer.addr);
    ctx.progress('waiting for the routing tables');
    await waitForTable(home.host, LIVE + STOPPED);
    await waitForTable(reference.host, LIVE);
    const stoppedIds = new Set(stopped.map((s) => s.host.peerId.toString()));
    ctx.progress(`stopping ${STOPPED} of the home's ${LIVE + STOPPED} DHT peers`);
    for (const peer of stopped) await peer.host.stop();

    const documents = Array.from({ length: ACCOUNTS }, () => {
      const document = createAccountDocument({
        localpart: 'user',
        rootKey: SecretKey.generate(),
        home: { peer_id: home.host.peerId.toString(), role: 'server', name: 'home', addrs: [] },
      });
      return { serverName: document.user_id.slice(document.user_id.indexOf(':') + 1), document };
    });
    const counter = countDials(home.host, stoppedIds);
    ctx.progress(`republishing ${ACCOUNTS} accounts (reference: a home with only the live peers)`);
    const referenceMs = await republish(reference.discovery, documents);
    const firstMs = await republish(home.discovery, documents);
    const firstDials = counter.dials;
    const secondMs = await republish(home.discovery, documents);
    const secondDials = counter.dials - firstDials;
    const evicted = home.host.services.unreachablePeers?.counts.evicted ?? 0;
    const ref = `same republish from a home with only the ${LIVE} live peers: ${referenceMs.toFixed(0)} ms`;
    return [
      {
        figure: 'republish.first.dials_to_stopped',
        value: firstDials,
        unit: 'dials',
        reference: `${ACCOUNTS} accounts, ${STOPPED} stopped and ${LIVE} live peers; ${evicted} evicted`,
      },
      { figure: 'republish.second.dials_to_stopped', value: secondDials, unit: 'dials', reference: 'the next period' },
      { figure: 'republish.first.ms', value: Math.round(firstMs), unit: 'ms', reference: ref },
      { figure: 'republish.second.ms', value: Math.round(secondMs), unit: 'ms', reference: ref },
    ];
  } finally {
    await Promise.allSettled(started.map(async (n) => n.host.stop()));
  }
}
