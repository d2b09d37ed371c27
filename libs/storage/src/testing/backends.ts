// Test helpers: every storage test runs once per backend, against a real PostgreSQL and a real PGlite.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { StorageBackend } from '../data-source.js';

/** The PostgreSQL server the tests use; each test file gets its own fresh database on it. */
export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A place to open Storage on: a fresh PostgreSQL database, or a fresh directory for PGlite. */
export interface TestDatabase {
  backend: StorageBackend;
  databaseUrl: string | undefined;
  dataDir: string;
  dispose(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${TEST_DATABASE_URL} (${(err as Error).message}). ` +
        'Start it with `npm run services`, or set TEST_DATABASE_URL.',
      { cause: err },
    );
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates an empty PostgreSQL database (dropped by `dispose`) and returns its URL. */
export async function createTestPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `polyhome_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

/** Makes a fresh place for the given backend. */
export async function createTestDatabase(backend: StorageBackend): Promise<TestDatabase> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-test-'));
  if (backend === 'pglite') {
    return { backend, databaseUrl: undefined, dataDir, dispose: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const database = await createTestPostgresDatabase();
  return {
    backend,
    databaseUrl: database.url,
    dataDir,
    dispose: async () => {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Both backends, for `describe.each`. */
export const STORAGE_BACKENDS: StorageBackend[] = ['postgres', 'pglite'];
