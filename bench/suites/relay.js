// Relay: member.set propagation between two homes over a connection relayed by a third (a server home's circuit
// relay v2), against the same two homes over a direct connection in the same run, and the relayed dial. Real TCP
// on 127.0.0.1, built libraries, the pure in-memory replica behind the ReplicaStore port (as the p2p suite).
// The relay's heap per reservation is not here: measured in one process holding 22 libp2p nodes it came out
// between -475 KB and +910 KB over four runs, below the noise.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, createAccountDocument, peerIdFromPublicKey, SecretKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService, isRelayedAddr } from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { MemoryStore } from '../lib/memory-home.js';

export const description = 'propagation over a relayed vs a direct connection, relayed dial';

const OPS = Number(process.env['BENCH_RELAY_OPS'] ?? 500);
const WARMUP = 50;

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
        figure: 'relayed.dial_ms',
        value: dialMs,
        unit: 'ms',
        reference: 'A dials B through the relay (one run; relay connection already open)',
      },
    );
  } finally {
    for (const h of started) await h.stop().catch(() => undefined);
  }
  return rows;
}
