// Catch-up on SQL storage, by a real server process: a built server (bench/lib/server.js) is enrolled as a home of
// an account whose other home runs in this process (libp2p on 127.0.0.1, the in-memory replica of bench/lib/
// memory-home.js). The server is stopped; the other home makes 10,000 ops (device.put, each carrying two
// signatures: the op's and the device keys' self-signature); the server starts again on the same data, and the
// other home dials it. The figure is from that dial to the server's acknowledgement of every op (the session's
// view of what the server holds), next to native Ed25519 verify of the same ops' signatures measured in this run,
// and the CPU time the catching-up process used in that window (/proc; PostgreSQL's own processes not counted),
// which moves less than wall time with the load of the machine.
// Engines: PostgreSQL (a scratch database) when it answers, then PGlite (the server's embedded default); then the
// client-side home (the `polyhome` CLI, PGlite), made with `init --join` and added to the account with its pairing
// code, as a user adds a second device.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { addHome, createAccountDocument, peerIdFromPublicKey, SecretKey } from '@polyhome/identity';
import {
  createPolyhomeHost,
  createSyncService,
  enrollOverLibp2p,
  normalizePairingCode,
  PairingHandler,
} from '@polyhome/p2p';
import { makeLocalOp } from '@polyhome/sync';
import { multiaddr } from '@multiformats/multiaddr';
import { signedDeviceBody } from '../lib/device-keys.js';
import { signatureChecks, verifyChecks } from '../lib/verify-reference.js';
import { MemoryStore } from '../lib/memory-home.js';
import { cli, startNode } from '../lib/node-home.js';
import { postgresReachable, scratchDatabase } from '../lib/pg.js';
import { freePort, startServer } from '../lib/server.js';
import { until } from '../lib/util.js';
import { parseMetrics } from '../lib/metrics.js';

export const description = 'catch-up of 10,000 missed ops by a server on PostgreSQL and PGlite, and by a polyhome node';

const OPS = Number(process.env.BENCH_CATCHUP_OPS ?? 10_000);
const ENGINES = (process.env.BENCH_CATCHUP_ENGINES ?? 'postgresql,pglite,node').split(',');
const ADMIN_TOKEN = 'bench-catchup-admin-token-0123456789';

/**
 * CPU seconds (user + system) a process has used, from /proc/<pid>/stat; NaN where there is no /proc. Clock ticks
 * are taken as 100 a second (USER_HZ on Linux).
 */
async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The server's count of SQL statements sent (its /metrics, open without METRICS_TOKEN). */
async function statements(url) {
  return parseMetrics(await (await fetch(`${url}/metrics`)).text()).statements;
}

/**
 * A built server on `env` as the catching-up home: `start()` resolves with { peerId, addr, statements(), stop() };
 * `join` enrols it (its policy is open) as a home of the account.
 */
function serverTarget(env) {
  let peerId;
  return {
    role: 'server',
    async start() {
      const server = await startServer({ ...env, ADMIN_TOKEN, ENROLLMENT_POLICY: 'open' });
      peerId = server.peerId;
      return {
        peerId,
        addr: server.p2pAddr,
        pid: server.pid,
        statements: () => statements(server.url),
        stop: () => server.stop(),
      };
    },
    peerId: () => peerId,
    join: ({ host, document, running }) => enrollOverLibp2p(host, running.addr, { document }),
  };
}

/**
 * A `polyhome` node (CLI, PGlite in `dir`) made with `init --join`: `join` dials it and proves its pairing code from
 * this home, as `polyhome home add <peer> --role client --pairing-code` does.
 */
function nodeTarget(dir) {
  const joined = cli(dir, 'init', '--join');
  return {
    role: 'client',
    async start() {
      const node = await startNode(dir, await freePort());
      return { peerId: joined.peer_id, addr: node.addr, pid: node.pid, statements: async () => NaN, stop: node.stop };
    },
    peerId: () => joined.peer_id,
    async join({ host, running }) {
      const pairing = new PairingHandler(host, host.peerId.toString(), (_account, joiner) =>
        joiner === joined.peer_id ? normalizePairingCode(joined.pairing_code) : undefined,
      );
      await pairing.start();
      // The node asks for the document when this home opens a session for an account it does not hold, and takes it
      // in once this home proves its pairing code.
      await host.dial(multiaddr(running.addr));
    },
  };
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

/** One target: make it a home, stop it, make OPS ops here, start it again, dial, wait for its ack of all. */
async function catchUp(ctx, label, target) {
  const homeKey = SecretKey.generate();
  const rootKey = SecretKey.generate();
  const host = await createPolyhomeHost({
    nodeKey: homeKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
  const sync = createSyncService(host);
  await sync.start();
  let running;
  try {
    ctx.progress(`${label}: starting it and making it a home of the account`);
    running = await target.start();
    const here = { peer_id: peerIdFromPublicKey(homeKey.publicKey), role: 'client', name: 'bench', addrs: [] };
    let document = createAccountDocument({ localpart: 'catchup', rootKey, home: here });
    const there = { peer_id: running.peerId, role: target.role, name: 'catching-up', addrs: [] };
    document = addHome(document, there, rootKey);
    const store = new MemoryStore();
    const account = store.host(document);
    await sync.host(account, store);
    await target.join({ host, sync, document, running });
    await until(() => sync.sessions(account).length === 1, `${label}: the session`, 60_000);
    await running.stop();
    await host.hangUp(multiaddr(running.addr)).catch(() => undefined);

    ctx.progress(`${label}: ${OPS} ops made here while it is stopped`);
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

    ctx.progress(`${label}: it starts again; dial to converged`);
    running = await target.start();
    const load = (await import('node:fs/promises')).readFile('/proc/loadavg', 'utf8').catch(() => '?');
    const before = await running.statements();
    const cpuBefore = await cpuSeconds(running.pid);
    const t0 = performance.now();
    await host.dial(multiaddr(running.addr));
    await until(
      () => sync.sessions(account).some((s) => s.peerId === running.peerId && sum(s.peerVector) >= total),
      `${label}: the acknowledgement of ${total} ops`,
      600_000,
      5,
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (await cpuSeconds(running.pid)) - cpuBefore;
    const perOp = ((await running.statements()) - before) / total;
    const verifySeconds = ops.length / verify;
    return {
      seconds,
      rate: total / seconds,
      verify,
      ratio: seconds / verifySeconds,
      cpu,
      cpuRatio: cpu / verifySeconds,
      total,
      perOp,
      load: (await load).trim().split(' ').slice(0, 3).join(' '),
    };
  } finally {
    await running?.stop();
    await sync.stop();
    await host.stop();
  }
}

export async function run(ctx) {
  const rows = [];
  const record = (engine, r) => {
    rows.push({
      figure: `catch_up.${engine}.ops_per_s`,
      value: r.rate,
      unit: 'ops/s',
      reference: `${r.total} ops, dial to acknowledged in ${r.seconds.toFixed(1)} s = ${r.ratio.toFixed(2)}x native verify of the same ops (${Math.round(r.verify)} ops/s, 2 signatures each); goal <= 2x; its process used ${r.cpu.toFixed(1)} CPU-s (${r.cpuRatio.toFixed(2)}x the verify time); ${Number.isNaN(r.perOp) ? '' : `${r.perOp.toFixed(1)} SQL statements per op; `}loadavg ${r.load}`,
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
        record(
          'server_postgresql',
          await catchUp(ctx, 'server, PostgreSQL', serverTarget({ DATA_DIR: dir, DATABASE_URL: db.url })),
        );
      } finally {
        await db.drop();
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  if (ENGINES.includes('pglite')) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-catchup-pglite-'));
    try {
      record('server_pglite', await catchUp(ctx, 'server, PGlite', serverTarget({ DATA_DIR: dir, DATABASE_URL: '' })));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (ENGINES.includes('node')) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-catchup-node-'));
    try {
      record('node_pglite', await catchUp(ctx, 'polyhome node', nodeTarget(path.join(dir, 'home'))));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
