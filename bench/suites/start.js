// Start: the built server (apps/server/dist/main.js) as a child process, from spawn to GET /health 200.
//   cold: empty data directory / empty database, so migrations run and keys are generated;
//   warm: the same data directory / database again.
// On the embedded default (PGlite in DATA_DIR, in-process queue) and on PostgreSQL + Redis (BullMQ, its own
// key prefix, removed afterwards). The reference is a bare `node -e ''` measured in the same run.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { postgresReachable, scratchDatabase } from '../lib/pg.js';
import { startServer, timeNode } from '../lib/server.js';

export const description = 'server cold and warm start to /health 200 (PGlite; PostgreSQL + Redis) vs bare node start';

const REPEAT = Number(process.env.BENCH_START_REPEAT ?? 3);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

// One cold start and one warm start on a fresh place; returns [coldMs, warmMs].
async function coldAndWarm(env) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-start-'));
  try {
    const times = [];
    for (let i = 0; i < 2; i++) {
      const server = await startServer({ ...env, DATA_DIR: dir });
      times.push(server.startMs);
      await server.stop();
    }
    return times;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function deletePrefix(prefix) {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function run(ctx) {
  const rows = [];
  ctx.progress(`bare node start x${REPEAT * 2}`);
  const bare = [];
  for (let i = 0; i < REPEAT * 2; i++) bare.push(await timeNode(['-e', '']));
  const reference = `bare \`node -e ''\` ${median(bare).toFixed(0)} ms`;

  const pglite = { cold: [], warm: [] };
  for (let i = 0; i < REPEAT; i++) {
    ctx.progress(`PGlite: cold and warm start ${i + 1}/${REPEAT}`);
    const [cold, warm] = await coldAndWarm({});
    pglite.cold.push(cold);
    pglite.warm.push(warm);
  }
  rows.push({ figure: 'start.cold.pglite_ms', value: median(pglite.cold), unit: 'ms', reference });
  rows.push({ figure: 'start.warm.pglite_ms', value: median(pglite.warm), unit: 'ms', reference });

  const reachable = await postgresReachable();
  if (!reachable.ok) {
    ctx.progress(`PostgreSQL unreachable (${reachable.error}): PostgreSQL figures not measured`);
    rows.push({
      figure: 'start.cold.postgres_redis_ms',
      value: 'not measured',
      unit: '',
      reference: 'PostgreSQL unreachable',
    });
  } else {
    const pgRedis = { cold: [], warm: [] };
    for (let i = 0; i < REPEAT; i++) {
      ctx.progress(`PostgreSQL + Redis: cold and warm start ${i + 1}/${REPEAT}`);
      const db = await scratchDatabase('start');
      const prefix = `polyhome-bench-start-${process.pid}-${i}`;
      try {
        const [cold, warm] = await coldAndWarm({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix });
        pgRedis.cold.push(cold);
        pgRedis.warm.push(warm);
      } finally {
        await db.drop();
        await deletePrefix(prefix).catch(() => undefined);
      }
    }
    rows.push({ figure: 'start.cold.postgres_redis_ms', value: median(pgRedis.cold), unit: 'ms', reference });
    rows.push({ figure: 'start.warm.postgres_redis_ms', value: median(pgRedis.warm), unit: 'ms', reference });
  }
  rows.push({
    figure: 'start.node_bare_ms',
    value: median(bare),
    unit: 'ms',
    reference: `physical reference: median of ${bare.length} \`node -e ''\``,
  });
  ctx.progress(`medians of ${REPEAT} runs each`);
  return rows;
}
