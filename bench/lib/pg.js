// Scratch PostgreSQL databases for benches: created empty, dropped (WITH FORCE) afterwards.
import pg from 'pg';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin(sql) {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Whether PostgreSQL answers at ADMIN_URL; the error message when it does not. */
export async function postgresReachable() {
  try {
    await admin('SELECT 1');
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err.message };
  }
}

/**
 * Creates an empty database, or a copy of `template` (the name of another scratch database, no session open on
 * it: e.g. one already migrated); returns { name, url, drop() }.
 */
export async function scratchDatabase(label, { template } = {}) {
  const name = `polyhome_bench_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin(`CREATE DATABASE "${name}"${template === undefined ? '' : ` TEMPLATE "${template}"`}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** Connections PostgreSQL would still accept now (max_connections less the sessions open). */
export async function freeConnections() {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT current_setting('max_connections')::int - (SELECT count(*) FROM pg_stat_activity)::int AS free`,
    );
    return Number(rows[0].free);
  } finally {
    await client.end();
  }
}
