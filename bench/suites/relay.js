// Relay: member.set propagation between two homes over a connection relayed by a third (a server home's circuit
// relay v2), against the same two homes over a direct connection in the same run, and the relayed dial; the
// Matrix round trip over each (a federation PUT /send echoed back by B: a new stream, HTTP/1.1 framing, JSON both
// ways, as the federation suite). Real TCP on 127.0.0.1, built libraries, the pure in-memory replica behind the
// ReplicaStore port (as the p2p suite). The DCUtR upgrade is timed in a network namespace of its own
// (bench/lib/dcutr-upgrade.js; root or unprivileged user namespaces), where loopback holds addresses libp2p counts
// as public: without it the figure is reported missing, with the reason.
// The relay's memory per reservation: the relay alone in a child process (bench/lib/relay-memory.js), its RSS and
// heap after a GC, empty, with BENCH_RELAY_RESERVATIONS (200) bare libp2p peers connected, and with each holding
// a reservation (raw RESERVE messages; the child's relay takes any peer).
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { byteStream } from '@libp2p/utils';
import { createLibp2p } from 'libp2p';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, createAccountDocument, peerIdFromPublicKey, SecretKey } from '@polyhome/identity';
import {
  createFederationServer,
  createPolyhomeHost,
  createSyncService,
  federationRequest,
  isRelayedAddr,
} from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { PUBLIC_ADDRS } from '../lib/dcutr-upgrade.js';
import { MemoryStore } from '../lib/memory-home.js';

export const description = 'propagation over a relayed vs a direct connection, relayed dial';

const OPS = Number(process.env['BENCH_RELAY_OPS'] ?? 500);
const WARMUP = 50;
/** Matrix round trips per path, after ROUND_TRIP_WARMUP untimed. */
const ROUND_TRIPS = Number(process.env['BENCH_RELAY_ROUND_TRIPS'] ?? 500);
const ROUND_TRIP_WARMUP = 50;
const FEDERATION_BODY = { origin: 'a.example', pdus: [{ content: { body: 'x'.repeat(900) } }], edus: [] };

// A federation PUT /send from `from` to `to`, echoed back, ROUND_TRIPS times; the sorted durations in ms.
async function matrixRoundTrips(from, to) {
  const lat = [];
  for (let i = 0; i < ROUND_TRIPS + ROUND_TRIP_WARMUP; i++) {
    const t0 = performance.now();
    const got = await federationRequest(from, to, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${i}`,
      body: FEDERATION_BODY,
    });
    if (got.status !== 200) throw new Error(`federation echo answered ${got.status}`);
    if (i >= ROUND_TRIP_WARMUP) lat.push(performance.now() - t0);
  }
  return lat.sort((x, y) => x - y);
}

// A room membership as the op (a device.put must carry a real self-signature since the key checks).
function membership(i) {
  const roomId = `!bench-${i}:example.org`;
  return { op: 'member.set', key: roomId, body: { room_id: roomId, membership: 'join' } };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function until(condition, what, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

function host(key, extra = {}) {
  return createPolyhomeHost({
    nodeKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
    ...extra,
  });
}

async function home(key, document, extra) {
  const h = await host(key, extra);
  const sync = createSyncService(h);
  await sync.start();
  const store = new MemoryStore();
  const acct = store.host(document);
  await sync.host(acct, store);
  return { host: h, sync, store, acct, key };
}

// Publishes OPS member.set ops on `from`, one at a time, and returns the sorted times until `to` applied each.
async function propagation(from, to, offset) {
  let waiting;
  const off = to.sync.on('applied', (e) => {
    for (const op of e.ops) if (waiting !== undefined && op.seq === waiting.seq) waiting.resolve(performance.now());
  });
  const lat = [];
  try {
    for (let i = 0; i < OPS + WARMUP; i++) {
      const op = makeLocalOp(from.store.replicas.get(from.acct), from.key, membership(offset + i), Date.now());
      const result = await from.store.applyOps(from.acct, [op]);
      if (result.accepted.length !== 1) throw new Error('local op refused');
      const arrived = new Promise((resolve) => (waiting = { seq: op.seq, resolve }));
      const t0 = performance.now();
      from.sync.publish(from.acct, [op]);
      const t1 = await arrived;
      if (i >= WARMUP) lat.push(t1 - t0);
    }
  } finally {
    off();
  }
  return lat.sort((x, y) => x - y);
}

// bench/lib/dcutr-upgrade.js in a new network namespace (`unshare -n` as root, else a user namespace too) with
// PUBLIC_ADDRS on its loopback; its JSON, or { error } saying why it could not run.
async function dcutrUpgrade() {
  const script = fileURLToPath(new URL('../lib/dcutr-upgrade.js', import.meta.url));
  const setup = ['ip link set lo up', ...PUBLIC_ADDRS.map((ip) => `ip addr add ${ip}/32 dev lo`)].join(' && ');
  const unshare = process.getuid?.() === 0 ? ['-n'] : ['-r', '-n'];
  try {
    const { stdout } = await promisify(execFile)(
      'unshare',
      [...unshare, '--', 'sh', '-c', `${setup} && exec "$0" "$1" run`, process.execPath, script],
      { timeout: 300_000, maxBuffer: 1024 * 1024 },
    );
    return JSON.parse(stdout.trim().split('\n').pop());
  } catch (err) {
    return { error: (err.stderr?.trim() || err.message).split('\n')[0] };
  }
}

const RESERVATIONS = Number(process.env['BENCH_RELAY_RESERVATIONS'] ?? 200);
const HOP = '/libp2p/circuit/relay/0.2.0/hop';
/** HopMessage { type: RESERVE }, length-prefixed. */
const RESERVE = Uint8Array.from([0x02, 0x08, 0x00]);

// A raw RESERVE on the hop protocol; resolves once the relay answered (any answer: the count is checked after).
async function reserveOn(node, addr) {
  const stream = await node.dialProtocol(multiaddr(addr), HOP);
  const bytes = byteStream(stream);
  await bytes.write(RESERVE);
  let length = 0;
  for (let shift = 0, b = 0x80; (b & 0x80) !== 0; shift += 7) {
    b = (await bytes.read({ bytes: 1 })).subarray()[0];
    length |= (b & 0x7f) << shift;
  }
  await bytes.read({ bytes: length });
  await stream.close();
}

// The relay alone in a child process (bench/lib/relay-memory.js): its RSS and heap after a GC, empty, with
// RESERVATIONS peers connected, and with each of them holding a reservation.
async function relayMemory(ctx) {
  const script = fileURLToPath(new URL('../lib/relay-memory.js', import.meta.url));
  const child = spawn(process.execPath, ['--expose-gc', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const measure = async () => {
    child.stdin.write('measure\n');
    return next();
  };
  const clients = [];
  try {
    const { addr } = await next();
    const empty = await measure();
    ctx.progress(`relay memory: ${RESERVATIONS} peers connected, then reserving`);
    for (let i = 0; i < RESERVATIONS; i++) {
      const node = await createLibp2p({
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
      });
      clients.push(node);
      await node.dial(multiaddr(addr));
    }
    const connected = await measure();
    for (const node of clients) await reserveOn(node, addr);
    const reserved = await measure();
    if (reserved.reservations !== RESERVATIONS) {
      throw new Error(`the relay holds ${reserved.reservations} reservations, not ${RESERVATIONS}`);
    }
    return { empty, connected, reserved };
  } finally {
    await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
    child.stdin.end();
    child.kill();
  }
}

export async function run(ctx) {
  const rows = [];
  const started = [];
  try {
    const rootKey = SecretKey.generate();
    const [relayKey, aKey, bKey] = [SecretKey.generate(), SecretKey.generate(), SecretKey.generate()];
    const entry = (key, role, name) => ({ peer_id: peerIdFromPublicKey(key.publicKey), role, name, addrs: [] });
    let document = createAccountDocument({ localpart: 'bench', rootKey, home: entry(relayKey, 'server', 'relay') });
    document = addHome(document, entry(aKey, 'client', 'a'), rootKey);
    document = addHome(document, entry(bKey, 'client', 'b'), rootKey);

    const relay = await host(relayKey, { relayServer: {} });
    started.push(relay);
    const relayAddr = relay.getMultiaddrs()[0].toString();
    const b = await home(bKey, document, { relayClient: { checkDelay: 10 } });
    started.push(b.host);
    const federation = createFederationServer(b.host, {
      handler: (request) => ({ status: 200, body: request.body ?? {} }),
    });
    await federation.start();
    relay.services.connectionGuard.addHomes([b.host.peerId.toString()]);
    b.host.services.relayReservations.setRelays([relayAddr]);
    await until(() => b.host.getMultiaddrs().some((a) => isRelayedAddr(a)), 'the reservation');
    const relayed = b.host.getMultiaddrs().find((a) => isRelayedAddr(a));
    const bPort = b.host
      .getMultiaddrs()
      .find((a) => !isRelayedAddr(a))
      .toString()
      .split('/')[4];
    // A can dial B only through the relay: its gater refuses B's own TCP address.
    const a = await home(aKey, document, {
      connectionGater: { denyDialMultiaddr: (ma) => !isRelayedAddr(ma) && ma.toString().includes(`/tcp/${bPort}/`) },
    });
    started.push(a.host);

    ctx.progress(`member.set A->B over the relay x${OPS}`);
    const t0 = performance.now();
    const viaRelay = await a.host.dial(relayed);
    const dialMs = performance.now() - t0;
    await until(() => a.sync.sessions().length === 1 && b.sync.sessions().length === 1, 'relayed session');
    if (!isRelayedAddr(viaRelay.remoteAddr)) throw new Error('the A-B connection is not relayed');
    const relayedLat = await propagation(a, b, 0);
    ctx.progress(`Matrix round trip A->B over the relay x${ROUND_TRIPS}`);
    const relayedRtt = await matrixRoundTrips(a.host, b.host.peerId);
    if (!a.host.getConnections(b.host.peerId).every((c) => isRelayedAddr(c.remoteAddr))) {
      throw new Error('a direct A-B connection opened during the relayed round trips');
    }

    ctx.progress(`member.set A->B direct x${OPS}`);
    await a.sync.stop();
    await b.sync.stop();
    await a.host.hangUp(b.host.peerId);
    const direct = await host(aKey);
    await a.host.stop();
    started.splice(started.indexOf(a.host), 1, direct);
    const a2 = { ...a, host: direct, sync: createSyncService(direct) };
    await a2.sync.start();
    await a2.sync.host(a2.acct, a2.store);
    await b.sync.start();
    await b.sync.host(b.acct, b.store);
    const directConn = await direct.dial(multiaddr(`/ip4/127.0.0.1/tcp/${bPort}/p2p/${b.host.peerId}`));
    if (isRelayedAddr(directConn.remoteAddr)) throw new Error('the A-B connection is relayed');
    await until(() => a2.sync.sessions().length === 1, 'direct session');
    const directLat = await propagation(a2, b, 1_000_000);
    ctx.progress(`Matrix round trip A->B direct x${ROUND_TRIPS}`);
    const directRtt = await matrixRoundTrips(direct, b.host.peerId);
    await federation.stop();

    rows.push(
      {
        figure: 'relayed.propagation.p50_ms',
        value: percentile(relayedLat, 50),
        unit: 'ms',
        reference: `member.set A->B through a relay, ${OPS} ops`,
      },
      { figure: 'relayed.propagation.p99_ms', value: percentile(relayedLat, 99), unit: 'ms', reference: 'same run' },
      {
        figure: 'direct.propagation.p50_ms',
        value: percentile(directLat, 50),
        unit: 'ms',
        reference: 'the same homes, direct, same run',
      },
      { figure: 'direct.propagation.p99_ms', value: percentile(directLat, 99), unit: 'ms', reference: 'same run' },
      {
        figure: 'relayed.matrix_round_trip.p50_ms',
        value: percentile(relayedRtt, 50),
        unit: 'ms',
        reference: `federation PUT /send echoed by B through the relay, ${ROUND_TRIPS} requests`,
      },
      {
        figure: 'relayed.matrix_round_trip.p99_ms',
        value: percentile(relayedRtt, 99),
        unit: 'ms',
        reference: 'same run',
      },
      {
        figure: 'direct.matrix_round_trip.p50_ms',
        value: percentile(directRtt, 50),
        unit: 'ms',
        reference: 'the same homes, direct, same run',
      },
      {
        figure: 'direct.matrix_round_trip.p99_ms',
        value: percentile(directRtt, 99),
        unit: 'ms',
        reference: 'same run',
      },
      {
        figure: 'relayed.dial_ms',
        value: dialMs,
        unit: 'ms',
        reference: 'A dials B through the relay (one run; relay connection already open)',
      },
    );
  } finally {
    for (const h of started) await h.stop().catch(() => undefined);
  }

  const mem = await relayMemory(ctx);
  const kb = (bytes) => bytes / 1024;
  rows.push(
    {
      figure: 'relay.empty.rss_mb',
      value: mem.empty.rss / 2 ** 20,
      unit: 'MB',
      reference: 'the relay process, no peer',
    },
    {
      figure: 'relay.per_connection.rss_kb',
      value: kb(mem.connected.rss - mem.empty.rss) / RESERVATIONS,
      unit: 'KB',
      reference: `${RESERVATIONS} peers connected, no reservation, same run (heap ${(kb(mem.connected.heapUsed - mem.empty.heapUsed) / RESERVATIONS).toFixed(1)} KB each)`,
    },
    {
      figure: 'relay.per_reservation.rss_kb',
      value: kb(mem.reserved.rss - mem.connected.rss) / RESERVATIONS,
      unit: 'KB',
      reference: `the same ${RESERVATIONS} peers each reserving, beyond their connection (heap ${(kb(mem.reserved.heapUsed - mem.connected.heapUsed) / RESERVATIONS).toFixed(1)} KB each)`,
    },
  );

  ctx.progress('DCUtR upgrade (network namespace with public loopback addresses)');
  const up = await dcutrUpgrade();
  if (up.error !== undefined) {
    rows.push({ figure: 'dcutr.upgrade_ms', value: null, unit: 'ms', reference: `not measured: ${up.error}` });
  } else {
    rows.push(
      {
        figure: 'dcutr.upgrade.p50_ms',
        value: up.upgrade.p50,
        unit: 'ms',
        reference: `A dials B through a relay until B's direct connection replaced it, ${up.rounds} rounds`,
      },
      { figure: 'dcutr.upgrade.p99_ms', value: up.upgrade.p99, unit: 'ms', reference: 'same run' },
      {
        figure: 'dcutr.relayed_dial.p50_ms',
        value: up.relayedDial.p50,
        unit: 'ms',
        reference: 'the relayed dial alone (part of the upgrade), same run',
      },
      {
        figure: 'dcutr.direct_dial.p50_ms',
        value: up.directDial.p50,
        unit: 'ms',
        reference: 'A dials B directly (gater open), same namespace, same run',
      },
    );
  }
  return rows;
}
