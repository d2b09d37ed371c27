// Catch-up on SQL storage, by a real server process: a built server (bench/lib/server.js) is enrolled as a home of
// an account whose other home runs in this process (libp2p on 127.0.0.1, the in-memory replica of bench/lib/
// memory-home.js). The server is stopped; the other home makes 10,000 ops (device.put, each carrying two
// signatures: the op's and the device keys' self-signature); the server starts again on the same data, and the
// other home dials it. The figure is from that dial to the server's acknowledgement of every op (the session's
// view of what the server holds), next to native Ed25519 verify of the same ops' signatures measured in this run.
// Engines: PostgreSQL (a scratch database) when it answers, then PGlite (the server's embedded default).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, peerIdFromPublicKey, SecretKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService, enrollOverLibp2p } from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { multiaddr } from '@multiformats/multiaddr';
import { signedDeviceBody } from '../lib/device-keys.js';
import { signatureChecks, verifyChecks } from '../lib/verify-reference.js';
import { MemoryStore } from '../lib/memory-home.js';
import { postgresReachable, scratchDatabase } from '../lib/pg.js';
import { startServer } from '../lib/server.js';
import { until } from '../lib/util.js';

export const description = 'catch-up of 10,000 missed ops by a server process on PostgreSQL and on PGlite';

const OPS = Number(process.env.BENCH_CATCHUP_OPS ?? 10_000);
const ENGINES = (process.env.BENCH_CATCHUP_ENGINES ?? 'postgresql,pglite').split(',');
const ADMIN_TOKEN = 'bench-catchup-admin-token-0123456789';

/** The server's count of SQL statements sent (its /metrics, open without METRICS_TOKEN). */
async function statements(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('polyhome_sql_statements_total'));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

const sum = (vv) => Object.values(vv).reduce((x, y) => x + y, 0);

/** Native Ed25519 verify of every signature the ops carry (the op's by its origin home, the device keys'), ops/s. */
function verifyRate(ops) {
  const prepared = signatureChecks(ops);
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    verifyChecks(prepared);
    best = Math.max(best, ops.length / ((performance.now() - start) / 1000));
  }
  return best;
}

/** One engine: enrol the server, stop it, make OPS ops here, start it again, dial, wait for its ack of all. */
async function catchUp(ctx, label, serverEnv) {
  const homeKey = SecretKey.generate();
  const rootKey = SecretKey.generate();
  const host = await createPolyhomeHost({
    nodeKey: homeKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
  const sync = createSyncService(host);
  await sync.start();
  let server;
  try {
    ctx.progress(`${label}: starting the server and enrolling it`);
    server = await startServer({ ...serverEnv, ADMIN_TOKEN, ENROLLMENT_POLICY: 'open' });
    const here = { peer_id: peerIdFromPublicKey(homeKey.publicKey), role: 'client', name: 'bench', addrs: [] };
    let document = createAccountDocument({ localpart: 'catchup', rootKey, home: here });
    document = addHome(document, { peer_id: server.peerId, role: 'server', name: 'server', addrs: [] }, rootKey);
    const store = new MemoryStore();
    const account = store.host(document);
    await sync.host(account, store);
    await enrollOverLibp2p(host, server.p2pAddr, { document });
    await until(() => sync.sessions(account).length === 1, `${label}: the session with the server`, 60_000);
    await server.stop();
    await host.hangUp(multiaddr(server.p2pAddr)).catch(() => undefined);

    ctx.progress(`${label}: ${OPS} ops made here while the server is stopped`);
    const ops = [];
    for (let i = 0; i < OPS; i++) {
      const deviceId = `DEV${i % 500}`;
      const op = makeLocalOp(
        store.replicas.get(account),
        homeKey,
        {
          op: 'device.put',
          key: deviceId,
          body: signedDeviceBody(document.user_id, deviceId, { display_name: `device ${i}` }),
        },
        Date.now(),
      );
      const result = await store.applyOps(account, [op]);
      if (result.accepted.length !== 1) throw new Error(`local op refused: ${JSON.stringify(result.rejected[0])}`);
      ops.push(op);
    }
    const total = sum(await store.versionVector(account));
    const verify = verifyRate(ops);

    ctx.progress(`${label}: the server starts again; dial to converged`);
    server = await startServer({ ...serverEnv, ADMIN_TOKEN, ENROLLMENT_POLICY: 'open' });
    const load = (await import('node:fs/promises')).readFile('/proc/loadavg', 'utf8').catch(() => '?');
    const before = await statements(server);
    const t0 = performance.now();
    await host.dial(multiaddr(server.p2pAddr));
    await until(
      () => sync.sessions(account).some((s) => s.peerId === server.peerId && sum(s.peerVector) >= total),
      `${label}: the server to acknowledge ${total} ops`,
      600_000,
      5,
    );
    const seconds = (performance.now() - t0) / 1000;
    const perOp = ((await statements(server)) - before) / total;
    const verifySeconds = ops.length / verify;
    return {
      seconds,
      rate: total / seconds,
      verify,
      ratio: seconds / verifySeconds,
      total,
      perOp,
      load: (await load).trim().split(' ').slice(0, 3).join(' '),
    };
  } finally {
    await server?.stop();
    await sync.stop();
    await host.stop();
  }
}

export async function run(ctx) {
  const rows = [];
  const record = (engine, r) => {
    rows.push({
      figure: `catch_up.server_${engine}.ops_per_s`,
      value: r.rate,
      unit: 'ops/s',
      reference: `${r.total} ops, dial to acknowledged in ${r.seconds.toFixed(1)} s = ${r.ratio.toFixed(2)}x native verify of the same ops (${Math.round(r.verify)} ops/s, 2 signatures each); goal <= 2x; ${r.perOp.toFixed(1)} SQL statements per op; loadavg ${r.load}`,
    });
  };
  if (ENGINES.includes('postgresql')) {
    const reachable = await postgresReachable();
    if (!reachable.ok) {
      rows.push({
        figure: 'catch_up.server_postgresql.ops_per_s',
        value: 'not measured',
        unit: '',
        reference: reachable.error,
      });
    } else {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-catchup-pg-'));
      const db = await scratchDatabase('catchup');
      try {
        record('postgresql', await catchUp(ctx, 'PostgreSQL', { DATA_DIR: dir, DATABASE_URL: db.url }));
      } finally {
        await db.drop();
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  if (ENGINES.includes('pglite')) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-catchup-pglite-'));
    try {
      record('pglite', await catchUp(ctx, 'PGlite', { DATA_DIR: dir, DATABASE_URL: '' }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
