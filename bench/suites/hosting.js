// Hosting: memory per hosted account and start time of the server with 1,000, 10,000 and 100,000 accounts,
// on PostgreSQL. The server runs as a child process (apps/server/dist/main.js, in-process queue); its
// resident memory is read from /proc after a full GC in it (--expose-gc), idle and after every tenth account (at most
// BENCH_HOSTING_ACTIVE_MAX, default 2,000) was active (one device.put each, pushed over /polyhome/sync/1.0.0 by bench homes and acknowledged).
// Accounts are valid signed documents (@polyhome/identity) created directly in storage (multi-row inserts
// of the rows SqlReplicaStore.hostAccounts writes; a sample verified). Bench homes are never retried: a home whose
// connection was closed (aborted) or whose ops were not all acknowledged in time counts as failed, and the figures say
// how many ops were acknowledged. References measured in the same run: the same server with no account, started
// right before each size (and its figures reported), so each subtraction uses a server measured minutes, not a whole
// suite, apart; and for the ops/s of the active accounts, one account's 1,000 ops pushed by its home to the same
// server right after (issue 14's goal: the many accounts at >= 50% of one account's rate). Each bench home runs in a
// worker thread of its own, started and its ops signed before the clock starts.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNodeKeyFile } from '@polyhome/identity';
import { openStorage } from '@polyhome/storage';
import { benchHome, hostInStorage, makeAccounts } from '../lib/accounts.js';
import { startHomeWorker } from '../lib/home-worker.js';
import { parseMetrics } from '../lib/metrics.js';
import { prepareHome } from '../lib/memory-home.js';
import { postgresReachable, scratchDatabase } from '../lib/pg.js';
import { startServer } from '../lib/server.js';

export const description =
  'server RSS per hosted account (1k/10k/100k, idle and active) and start time with them, on PostgreSQL';

const SIZES = (process.env.BENCH_HOSTING_SIZES ?? '1000,10000,100000').split(',').map(Number);
const ACTIVE = process.env.BENCH_HOSTING_ACTIVE !== '0';
/**
 * At most this many active accounts per size (each op costs the server a few transactions; 10,000 of them take
 * over ten minutes on a loaded 2-core machine). The figure's name says the share actually active.
 */
const ACTIVE_MAX = Number(process.env.BENCH_HOSTING_ACTIVE_MAX ?? 2_000);
/** Every tenth account is active: its second home is a bench home; the others list an offline phone. */
const ACTIVE_EVERY = 10;
/** Active accounts per bench home (below the sync protocol's 64 streams per connection). */
const PER_HOME = 50;
/**
 * Bench homes pushing at once (default one: the server's figures of one home's sessions at a time). With all twenty
 * at once (BENCH_HOSTING_WAVE=20) on a loaded 2-core machine, the server opening a thousand sync sessions together
 * let its event loop stall for seconds and homes failed their pings: see docs/decisions.md.
 */
const WAVE = Number(process.env.BENCH_HOSTING_WAVE ?? 1);
/**
 * Inbound connections per second the server accepts from one host. Every bench home dials from 127.0.0.1, where
 * real client homes dial from addresses of their own: at the default (5, libp2p's) a wave of bench homes is reset
 * as a flood from one host would be.
 */
const INBOUND_PER_S = 1_000;
/** Ops of the one-account reference: one account's home pushes them to the same server in the same run. */
const REFERENCE_OPS = Number(process.env.BENCH_HOSTING_REFERENCE_OPS ?? 1_000);
/** How long the server is left alone after the pushes before its memory is read again. */
const SETTLE_MS = Number(process.env.BENCH_HOSTING_SETTLE_MS ?? 30_000);
/** How long a bench home waits for the server to acknowledge its ops. */
const PUSH_TIMEOUT_MS = Number(process.env.BENCH_HOSTING_PUSH_TIMEOUT_MS ?? 60_000);
const CACHE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results', 'cache');

const serverHome = benchHome('hosting-server', 'server');
const idleHome = benchHome('hosting-offline-phone');
const referenceHome = benchHome('hosting-reference');

const activeHome = (k) => benchHome(`hosting-active-${k}`);
const homesOf = (i) => [
  serverHome.home,
  i % ACTIVE_EVERY === 0 ? activeHome(Math.floor(i / ACTIVE_EVERY / PER_HOME)).home : idleHome.home,
];

// Documents depend only on the homes above (root keys are random): made once, kept under bench/results/cache
// (the first `count` of a larger file serve too).
async function accounts(count, ctx) {
  const tag = serverHome.peerId.slice(-8);
  for (const size of [count, 100_000, 10_000, 1_000].filter((n) => n >= count)) {
    const file = path.join(CACHE, `hosting-${size}-${tag}.ndjson`);
    try {
      const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
      if (lines.length === size) {
        ctx.progress(`read ${count} signed account documents from ${path.relative(process.cwd(), file)}`);
        return lines.slice(0, count).map((l) => JSON.parse(l));
      }
    } catch {
      // not made yet
    }
  }
  const made = await makeAccounts(count, homesOf, ctx.progress);
  await mkdir(CACHE, { recursive: true });
  await writeFile(
    path.join(CACHE, `hosting-${count}-${tag}.ndjson`),
    made.map((a) => JSON.stringify(a)).join('\n') + '\n',
  );
  return made;
}

const MiB = 2 ** 20;

async function serverDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-hosting-'));
  await writeNodeKeyFile(path.join(dir, 'node.key'), serverHome.secretKey);
  return dir;
}

// Starts the server on a database, measures start and idle memory, runs the active window, stops it.
async function measure(databaseUrl, all, size, ctx, reference) {
  const dir = await serverDir();
  const server = await startServer({
    DATABASE_URL: databaseUrl,
    DATA_DIR: dir,
    P2P_INBOUND_CONNECTION_THRESHOLD: String(INBOUND_PER_S),
  });
  try {
    if (server.peerId !== serverHome.peerId) throw new Error(`server PeerId ${server.peerId} is not the bench key's`);
    // Let start-up jobs (DHT re-publishing, delivery scheduling) run before reading memory.
    const settle = await statementsOf(server);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const settled = await statementsOf(server);
    const idle = await server.memory();
    ctx.progress(
      `${size} accounts: started in ${server.startMs.toFixed(0)} ms, idle RSS ${(idle.rss / MiB).toFixed(1)} MiB`,
    );
    let active;
    let settledActive;
    let activeSeconds;
    let pushes;
    if (ACTIVE && size > 0) {
      const actives = all
        .slice(0, size)
        .filter((_, i) => i % ACTIVE_EVERY === 0)
        .slice(0, ACTIVE_MAX);
      const groups = [];
      for (let i = 0; i < actives.length; i += PER_HOME) groups.push(actives.slice(i, i + PER_HOME));
      pushes = { homes: groups.length, failed: 0, aborted: 0, ops: actives.length, acked: 0, errors: [] };
      /** The worst event-loop delay of the bench homes' threads while they pushed, ms. */
      const benchLoop = { p50: 0, p99: 0, max: 0 };
      const step = Math.min(WAVE, groups.length);
      // Every bench home is started and its ops signed before the clock starts: what is timed is the server.
      // Each in a worker thread of its own: a starved bench home fails its pings to the server and aborts.
      ctx.progress(`${size} accounts: starting ${groups.length} bench homes`);
      const ready = await Promise.all(
        groups.map((group, g) =>
          startHomeWorker(
            `hosting-active-${g}`,
            group.map((a) => a.document),
          ),
        ),
      );
      const before = await statementsOf(server);
      const t0 = Date.now();
      for (let g = 0; g < groups.length; g += step) {
        const homes = ready.slice(g, g + step);
        let results;
        try {
          results = await Promise.all(homes.map((home) => home.push(server.p2pAddr, PUSH_TIMEOUT_MS)));
        } finally {
          for (const loop of await Promise.all(homes.map((home) => home.stop()))) {
            for (const k of ['p50', 'p99', 'max']) benchLoop[k] = Math.max(benchLoop[k], loop[k]);
          }
        }
        for (const r of results) {
          pushes.acked += r.acked;
          if (r.error === undefined) continue;
          pushes.failed++;
          if (r.aborted) pushes.aborted++;
          if (pushes.errors.length < 3) pushes.errors.push(r.error);
          ctx.progress(`${size} accounts: a bench home failed, not retried: ${r.error}`);
        }
        ctx.progress(`${size} accounts: ${Math.min((g + step) * PER_HOME, actives.length)}/${actives.length} active`);
      }
      activeSeconds = (Date.now() - t0) / 1000;
      const after = await metricsOf(server);
      pushes.statements = after.statements - before;
      pushes.serverLoop = after.loop;
      pushes.benchLoop = benchLoop;
      pushes.idleStatementsPerS = (settled - settle) / 3;
      active = await server.memory();
      ctx.progress(
        `${size} accounts: ${pushes.acked}/${pushes.ops} ops acknowledged in ${activeSeconds.toFixed(1)} s ` +
          `(${pushes.failed}/${pushes.homes} bench homes failed, ${pushes.aborted} of them aborted), RSS ${(active.rss / MiB).toFixed(1)} MiB`,
      );
      if (reference !== undefined) {
        // The reference, after the memory was read: one account's REFERENCE_OPS ops pushed by its home.
        const home = await prepareHome(referenceHome.secretKey, [reference.document], REFERENCE_OPS);
        const started = Date.now();
        try {
          const r = await home.push(server.p2pAddr, PUSH_TIMEOUT_MS);
          pushes.reference = { ...r, seconds: (Date.now() - started) / 1000 };
        } finally {
          await home.stop();
        }
        ctx.progress(
          `${size} accounts: reference, one account: ${pushes.reference.acked}/${REFERENCE_OPS} ops acknowledged in ` +
            `${pushes.reference.seconds.toFixed(1)} s${pushes.reference.error ? ` (${pushes.reference.error})` : ''}`,
        );
      }
    }
    if (active !== undefined) {
      // The same reading once the server has been left alone for a while: what V8 and malloc give back by then.
      ctx.progress(`${size} accounts: the server left alone for ${SETTLE_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      settledActive = await server.memory();
    }
    return { startMs: server.startMs, idle, active, settledActive, activeSeconds, pushes };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The same server with no account, on a scratch database of its own. */
async function measureEmpty(all, ctx) {
  const emptyDb = await scratchDatabase('hosting0');
  try {
    const storage = await openStorage({ databaseUrl: emptyDb.url, dataDir: os.tmpdir() });
    await storage.close();
    return await measure(emptyDb.url, all, 0, ctx);
  } finally {
    await emptyDb.drop();
  }
}

/** The server's polyhome_sql_statements_total: the SQL statements it has sent so far. */
async function statementsOf(server) {
  return (await metricsOf(server)).statements;
}

/** The server's /metrics figures (SQL statements so far; event-loop delay since the scrape before). */
async function metricsOf(server) {
  const get = () => fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(60_000) });
  // A kept-alive socket the server closed as it was reused (its keep-alive timeout): asked again on a new one.
  const res = await get().catch((error) => {
    if (error?.cause?.code === 'UND_ERR_SOCKET') return get();
    throw error;
  });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

const label = (n) => (n >= 1000 ? `${n / 1000}k` : String(n));

export async function run(ctx) {
  const reachable = await postgresReachable();
  if (!reachable.ok) {
    ctx.progress(`PostgreSQL unreachable (${reachable.error}): hosting not measured`);
    return [{ figure: 'hosting.start_ms', value: 'not measured', unit: '', reference: 'PostgreSQL unreachable' }];
  }
  const all = await accounts(Math.max(...SIZES), ctx);
  const docBytes = Buffer.byteLength(JSON.stringify(all[0].document));
  // The account of the one-account reference: the server and the reference home.
  const [reference] = ACTIVE ? await makeAccounts(1, () => [serverHome.home, referenceHome.home]) : [];
  const rows = [];

  for (const size of SIZES) {
    const n = label(size);
    ctx.progress(`reference for ${n}: the server with no account`);
    const empty = await measureEmpty(all, ctx);
    rows.push({
      figure: `hosting.rss_mib.empty_${n}`,
      value: empty.idle.rss / MiB,
      unit: 'MiB',
      reference: `PostgreSQL, started right before the ${n} server; heap ${(empty.idle.heapUsed / MiB).toFixed(1)} MiB after GC`,
    });
    rows.push({
      figure: `hosting.start_ms.empty_${n}`,
      value: empty.startMs,
      unit: 'ms',
      reference: 'PostgreSQL, spawn to /health 200',
    });
    const db = await scratchDatabase(`hosting${size}`);
    try {
      const storage = await openStorage({ databaseUrl: db.url, dataDir: os.tmpdir() });
      try {
        const seconds = await hostInStorage(storage.dataSource, all.slice(0, size), ctx.progress);
        if (ACTIVE) await hostInStorage(storage.dataSource, [reference], () => undefined);
        ctx.progress(`${size} accounts created in storage in ${seconds.toFixed(1)} s`);
      } finally {
        await storage.close();
      }
      const m = await measure(db.url, all, size, ctx, ACTIVE ? reference : undefined);
      rows.push({
        figure: `hosting.start_ms.${n}`,
        value: m.startMs,
        unit: 'ms',
        reference: `PostgreSQL; empty server ${empty.startMs.toFixed(0)} ms`,
      });
      rows.push({
        figure: `hosting.rss_mib.${n}_idle`,
        value: m.idle.rss / MiB,
        unit: 'MiB',
        reference: `PostgreSQL; empty server ${(empty.idle.rss / MiB).toFixed(1)} MiB`,
      });
      rows.push({
        figure: `hosting.rss_per_account_kib.${n}_idle`,
        value: (m.idle.rss - empty.idle.rss) / 1024 / size,
        unit: 'KiB',
        reference: `PostgreSQL; (RSS - empty RSS) / accounts; heap ${((m.idle.heapUsed - empty.idle.heapUsed) / 1024 / size).toFixed(2)} KiB/account; document ${docBytes} B of JSON`,
      });
      if (m.active !== undefined) {
        const p = m.pushes;
        const pct = Math.round((100 * p.ops) / size);
        rows.push({
          figure: `hosting.failed_homes.${n}_active${pct}pct`,
          value: p.failed,
          unit: 'homes',
          reference:
            `of ${p.homes} bench homes of up to ${PER_HOME} accounts, not retried; ${p.aborted} connections aborted; ` +
            `${p.acked}/${p.ops} ops acknowledged; event-loop delay p50/p99/max, ms: server ` +
            `${['p50', 'p99', 'max'].map((k) => p.serverLoop[k]?.toFixed(0)).join('/')}, bench homes (the worst thread) ` +
            `${['p50', 'p99', 'max'].map((k) => p.benchLoop[k].toFixed(0)).join('/')}` +
            (p.errors.length > 0 ? `; first: ${p.errors.join(' | ')}` : ''),
        });
        rows.push({
          figure: `hosting.sql_statements_per_op.${n}_active${pct}pct`,
          value: p.statements / p.acked,
          unit: 'statements',
          reference:
            `${p.statements} statements / ${p.acked} ops acknowledged, one op per account; goal <= 8 (issue 14); ` +
            `the same server idle: ${p.idleStatementsPerS.toFixed(1)} statements/s, ${(p.idleStatementsPerS * m.activeSeconds).toFixed(0)} in as long`,
        });
        rows.push({
          figure: `hosting.active_ops_per_s.${n}_active${pct}pct`,
          value: p.acked / m.activeSeconds,
          unit: 'ops/s',
          reference:
            `${p.acked} ops acknowledged in ${m.activeSeconds.toFixed(1)} s, ${Math.min(WAVE, p.homes)} of the ${p.homes} bench homes at once; ` +
            (p.reference?.error === undefined
              ? `one account on the same server: ${REFERENCE_OPS} ops pushed by its home in ${p.reference.seconds.toFixed(1)} s, ` +
                `${(REFERENCE_OPS / p.reference.seconds).toFixed(1)} ops/s; goal >= 50% of it (issue 14): ` +
                `${((100 * p.acked) / m.activeSeconds / (REFERENCE_OPS / p.reference.seconds)).toFixed(0)}%`
              : `the one-account reference failed: ${p.reference.error}`),
        });
        rows.push({
          figure: `hosting.rss_per_account_kib.${n}_active${pct}pct`,
          value: (m.active.rss - empty.idle.rss) / 1024 / size,
          unit: 'KiB',
          reference: `PostgreSQL; after ${p.acked}/${p.ops} ops pushed over sync and acknowledged in ${m.activeSeconds.toFixed(1)} s; RSS ${(m.active.rss / MiB).toFixed(1)} MiB, heap ${((m.active.heapUsed - empty.idle.heapUsed) / 1024 / size).toFixed(2)} KiB/account`,
        });
        rows.push({
          figure: `hosting.rss_per_active_account_kib.${n}_active${pct}pct`,
          value: (m.active.rss - m.idle.rss) / 1024 / p.ops,
          unit: 'KiB',
          reference: `PostgreSQL; (RSS after activity - idle RSS of the same server) / active accounts; goal <= 20 KiB (issue 14)`,
        });
        rows.push({
          figure: `hosting.rss_per_active_account_kib.${n}_active${pct}pct_settled`,
          value: (m.settledActive.rss - m.idle.rss) / 1024 / p.ops,
          unit: 'KiB',
          reference:
            `PostgreSQL; the same once the server was left alone for ${SETTLE_MS / 1000} s (RSS ` +
            `${(m.settledActive.rss / MiB).toFixed(1)} MiB, heap ${((m.settledActive.heapUsed - m.idle.heapUsed) / 1024 / p.ops).toFixed(1)} KiB per active account over idle)`,
        });
      }
    } finally {
      await db.drop();
    }
  }
  return rows;
}
