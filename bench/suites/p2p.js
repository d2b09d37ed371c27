// P2p: propagation of a device.put between two homes over an open libp2p connection (publish on A to
// `applied` on B, one op at a time), next to the libp2p ping RTT on the same connection in the same
// run; and the catch-up time of a home that missed 10,000 ops. Real TCP on 127.0.0.1, built libraries.
// The store is the pure in-memory replica of @polyhome/sync behind the ReplicaStore port (inline here:
// @polyhome/sync/testing is source-only), so op verification is part of every figure.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { addHome, createAccountDocument, peerIdFromPublicKey, SecretKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService } from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { MemoryStore as Store } from '../lib/memory-home.js';
import { signedDeviceBody } from '../lib/device-keys.js';

export const description = 'sync propagation p50/p99 vs libp2p ping RTT; catch-up after 10,000 missed ops';

const PROPAGATION_OPS = 1000;
const PINGS = 1000;
const CATCH_UP_OPS = 10_000;

function account(homeKeys) {
  const rootKey = SecretKey.generate();
  const homes = homeKeys.map((key, i) => ({
    peer_id: peerIdFromPublicKey(key.publicKey),
    role: i === 0 ? 'server' : 'client',
    name: `home-${i}`,
    addrs: [],
  }));
  let document = createAccountDocument({ localpart: 'bench', rootKey, home: homes[0] });
  for (const home of homes.slice(1)) document = addHome(document, home, rootKey);
  return document;
}

async function node(key, document) {
  const host = await createPolyhomeHost({
    nodeKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
  const sync = createSyncService(host);
  await sync.start();
  const store = new Store();
  const acct = store.host(document);
  await sync.host(acct, store);
  return { host, sync, store, acct, key, addr: host.getMultiaddrs()[0] };
}

function deviceChange(userId, i) {
  const id = `DEV${i}`;
  return {
    op: 'device.put',
    key: id,
    body: signedDeviceBody(userId, id, { display_name: `bench device ${i}` }),
  };
}

// Makes, stores and returns one local op on a node.
async function localOp(n, userId, i) {
  const op = makeLocalOp(n.store.replicas.get(n.acct), n.key, deviceChange(userId, i), Date.now());
  const result = await n.store.applyOps(n.acct, [op]);
  if (result.accepted.length !== 1) throw new Error(`local op refused: ${JSON.stringify(result.rejected[0])}`);
  return op;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function until(condition, what, timeout = 120_000) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(1);
  }
}

export async function run(ctx) {
  const rows = [];
  const keys = [SecretKey.generate(), SecretKey.generate(), SecretKey.generate()];
  const document = account(keys);
  const userId = document.user_id;
  const a = await node(keys[0], document);
  const b = await node(keys[1], document);
  const started = [a, b];
  try {
    await a.host.dial(b.addr);
    await until(() => a.sync.sessions().length === 1 && b.sync.sessions().length === 1, 'session A-B');

    ctx.progress(`ping RTT x${PINGS}`);
    const pings = [];
    for (let i = 0; i < 50; i++) await a.host.services.ping.ping(b.host.peerId);
    for (let i = 0; i < PINGS; i++) {
      const t0 = performance.now();
      await a.host.services.ping.ping(b.host.peerId);
      pings.push(performance.now() - t0);
    }
    pings.sort((x, y) => x - y);

    ctx.progress(`device.put propagation x${PROPAGATION_OPS}`);
    let waiting;
    b.sync.on('applied', (e) => {
      for (const op of e.ops) if (waiting !== undefined && op.seq === waiting.seq) waiting.resolve(performance.now());
    });
    const lat = [];
    for (let i = 0; i < PROPAGATION_OPS + 50; i++) {
      const op = await localOp(a, userId, i);
      const arrived = new Promise((resolve) => (waiting = { seq: op.seq, resolve }));
      const t0 = performance.now();
      a.sync.publish(a.acct, [op]);
      const t1 = await arrived;
      if (i >= 50) lat.push(t1 - t0); // the first 50 warm up the JIT
    }
    lat.sort((x, y) => x - y);
    rows.push({
      figure: 'propagation.p50_ms',
      value: percentile(lat, 50),
      unit: 'ms',
      reference: `device.put A->B, ${PROPAGATION_OPS} ops; ping p50 ${percentile(pings, 50).toFixed(2)} ms`,
    });
    rows.push({
      figure: 'propagation.p99_ms',
      value: percentile(lat, 99),
      unit: 'ms',
      reference: `ping p99 ${percentile(pings, 99).toFixed(2)} ms`,
    });
    rows.push({
      figure: 'ping.p50_ms',
      value: percentile(pings, 50),
      unit: 'ms',
      reference: `physical reference: libp2p ping, same connection, ${PINGS} pings`,
    });
    rows.push({
      figure: 'ping.p99_ms',
      value: percentile(pings, 99),
      unit: 'ms',
      reference: 'physical reference',
    });

    ctx.progress(`A makes ${CATCH_UP_OPS} ops while C is away`);
    await b.sync.unhost(b.acct); // B stays out of the way so C catches up from A alone
    for (let i = 0; i < CATCH_UP_OPS; i++) await localOp(a, userId, 100_000 + i);
    const total = Object.values(await a.store.versionVector(a.acct)).reduce((x, y) => x + y, 0);
    const c = await node(keys[2], document);
    started.push(c);
    ctx.progress('C connects and catches up');
    const t0 = performance.now();
    await c.host.dial(a.addr);
    await until(
      async () => Object.values(await c.store.versionVector(c.acct)).reduce((x, y) => x + y, 0) === total,
      'catch-up',
    );
    const seconds = (performance.now() - t0) / 1000;
    rows.push({
      figure: 'catch_up.seconds',
      value: seconds,
      unit: 's',
      reference: `${total} missed ops, dial to converged`,
    });
    rows.push({
      figure: 'catch_up.ops_per_s',
      value: total / seconds,
      unit: 'ops/s',
      reference: 'verify.native_per_s (identity suite) bounds it',
    });
  } finally {
    for (const n of started) {
      await n.sync.stop();
      await n.host.stop();
    }
  }
  return rows;
}
