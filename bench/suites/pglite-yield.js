// PGlite and the event loop: PGlite runs in WebAssembly on the main thread and resolves promises, so a chain of
// awaited queries never let timers or I/O run (issue 14). The session now lets the loop turn once it has run
// queries back to back for PGLITE_YIELD_AFTER_MS. The same chain is timed on PGlite as it is (yielding), on
// PGlite with yielding turned off (the code before), and on PostgreSQL through `pg` (the reference: a socket
// round trip per query), all in this run: how late a timer queued before the chain fires, the longest gap between
// ticks of a 1 ms interval during it, and queries per second.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStorage, PGLITE_YIELD_AFTER_MS } from '@polyhome/storage';
import { postgresReachable, scratchDatabase } from '../lib/pg.js';

export const description = 'how late timers fire during a chain of awaited PGlite queries, beside pg, and the cost';

const QUERIES = Number(process.env.BENCH_PGLITE_YIELD_QUERIES ?? 300);
const ROUNDS = 5;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One chain of QUERIES awaited inserts, with a timer queued before it and a 1 ms interval ticking during it. */
async function chain(dataSource) {
  await dataSource.query('DELETE FROM yield_bench');
  const start = performance.now();
  let timerAt;
  setTimeout(() => (timerAt = performance.now() - start), 0);
  let lastTick = start;
  let longestGap = 0;
  const interval = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - lastTick);
    lastTick = now;
  }, 1);
  for (let i = 0; i < QUERIES; i++) {
    await dataSource.query('INSERT INTO yield_bench (n, v) VALUES ($1, $2)', [i, `row ${i}`]);
  }
  const elapsed = performance.now() - start;
  longestGap = Math.max(longestGap, performance.now() - lastTick);
  clearInterval(interval);
  await new Promise((resolve) => setTimeout(resolve, 2));
  return { timer: timerAt ?? elapsed, gap: longestGap, perS: QUERIES / (elapsed / 1000) };
}

async function measure(init) {
  const storage = await openStorage(init);
  try {
    await storage.dataSource.query('CREATE TABLE yield_bench (n integer PRIMARY KEY, v text)');
    await chain(storage.dataSource); // warm-up
    const runs = [];
    for (let r = 0; r < ROUNDS; r++) runs.push(await chain(storage.dataSource));
    return {
      timer: median(runs.map((x) => x.timer)),
      gap: median(runs.map((x) => x.gap)),
      perS: median(runs.map((x) => x.perS)),
    };
  } finally {
    await storage.close();
  }
}

async function pglite(yieldAfterMs) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-'));
  try {
    return await measure({
      dataDir: dir,
      ...(yieldAfterMs === undefined ? {} : { embeddedYieldAfterMs: yieldAfterMs }),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(ctx) {
  ctx.progress(`PGlite, yielding after ${PGLITE_YIELD_AFTER_MS} ms`);
  const yielding = await pglite(undefined);
  ctx.progress('PGlite, never yielding');
  const never = await pglite(Infinity);
  let postgres;
  const reachable = await postgresReachable();
  if (reachable.ok) {
    ctx.progress('PostgreSQL');
    const db = await scratchDatabase('yield');
    try {
      postgres = await measure({ databaseUrl: db.url, dataDir: os.tmpdir() });
    } finally {
      await db.drop();
    }
  } else {
    ctx.progress(`PostgreSQL not reachable (${reachable.error}); no pg reference`);
  }
  const pg = (key, digits) => (postgres ? `pg ${postgres[key].toFixed(digits)}` : 'pg not reachable');
  const what = `${QUERIES} awaited INSERTs, median of ${ROUNDS}`;
  return [
    {
      figure: 'pglite_yield.timer_delay_ms',
      value: Number(yielding.timer.toFixed(2)),
      unit: 'ms',
      reference: `timer queued before ${what}; never yielding ${never.timer.toFixed(1)} ms; ${pg('timer', 2)} ms`,
    },
    {
      figure: 'pglite_yield.longest_gap_ms',
      value: Number(yielding.gap.toFixed(2)),
      unit: 'ms',
      reference: `longest gap between ticks of a 1 ms interval, same chain; never yielding ${never.gap.toFixed(1)} ms; ${pg('gap', 2)} ms`,
    },
    {
      figure: 'pglite_yield.queries_per_s',
      value: Math.round(yielding.perS),
      unit: 'queries/s',
      reference: `same chain; never yielding ${Math.round(never.perS)}/s; ${pg('perS', 0)}/s`,
    },
  ];
}
