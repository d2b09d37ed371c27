import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { MIGRATIONS } from '@polyhome/migrations';
import { DataSource, type DataSourceOptions, type MigrationInterface } from 'typeorm';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { preparePrivateDataDir, restrictDataDir } from './data-dir-modes.js';
import { ENTITIES } from './entities/index.js';
import { StorageError } from './errors.js';
import { createPgliteDriverModule } from './pglite/pglite-pg-driver.js';
import { CountingPgClient } from './sql-statements.js';
import { copyTemplate, ensureTemplate } from './pglite/template.js';

/** Which database engine a Storage runs on. */
export type StorageBackend = 'postgres' | 'pglite';

/** Where the database is and how to open it. */
export interface StorageInit {
  /** PostgreSQL connection URL; when absent, embedded PGlite in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** Directory for the embedded database (`<dataDir>/db`). */
  dataDir: string;
  /** Apply pending migrations while opening (default true). */
  migrationsRun?: boolean;
  /** Progress messages for slow steps (first creation of the embedded database, migrations). */
  onProgress?: (message: string) => void;
  /**
   * A new embedded database is copied from the migrated template (default true); false runs initdb and every
   * migration in place, as the template itself is made.
   */
  template?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /**
   * The migrations this open knows (default every one): an older release's list opens a database at that
   * release's schema, as the upgrade test does. A new embedded database is then made in place, not copied from
   * the template (which has every migration).
   */
  migrations?: ReadonlyArray<new () => MigrationInterface>;
  /**
   * Embedded only: how long the session may run queries back to back before it lets the event loop turn
   * (default PGLITE_YIELD_AFTER_MS; `Infinity` never yields, for the bench's comparison).
   */
  embeddedYieldAfterMs?: number;
  /**
   * Embedded only: PostgreSQL's `shared_buffers` for this open (`16MB`, `512kB`...); default the data directory's
   * own (128MB). A command that opens the database, answers and exits opens faster with a small one.
   */
  embeddedSharedBuffers?: string;
}

/** An open database with its backend and lifecycle. */
export interface Storage {
  readonly dataSource: DataSource;
  readonly backend: StorageBackend;
  /** Names of the migrations applied while opening (for a new embedded database, those of its template too). */
  readonly appliedMigrations: string[];
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /** Closes the connection pool (and the embedded database and its lock). */
  close(): Promise<void>;
  /**
   * Embedded (PGlite) only: a consistent copy of the whole database as a gzipped tar, taken by the open
   * database itself (see snapshotPglite); restoreEmbeddedDatabase makes a database directory from it.
   */
  snapshot?(): Promise<Uint8Array>;
}

/** Returns the URL with any password replaced, safe for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}

const COMMON: Partial<DataSourceOptions> = {
  entities: ENTITIES,
  migrations: MIGRATIONS,
  migrationsTableName: 'typeorm_migrations',
  migrationsTransactionMode: 'each',
  synchronize: false,
  logging: false,
};

/** TypeORM options for PostgreSQL; also what the `typeorm` CLI uses for `migration:generate`. */
export function postgresDataSourceOptions(url: string, poolSize = 10): DataSourceOptions {
  return {
    ...COMMON,
    type: 'postgres',
    url,
    uuidExtension: 'pgcrypto',
    installExtensions: false,
    connectTimeoutMS: 5_000,
    poolSize,
    applicationName: 'polyhome',
    // The pool makes its clients from this class, which counts every query (sqlStatementsSent).
    extra: { Client: CountingPgClient },
  } as DataSourceOptions;
}

function describeConnectError(err: unknown, url: string): StorageError {
  const code = (err as { code?: string }).code;
  const reason = err instanceof Error ? err.message : String(err);
  return new StorageError(
    'DATABASE_UNREACHABLE',
    `Cannot use PostgreSQL at ${redactDatabaseUrl(url)}: ${code ? `${code} ` : ''}${reason}. ` +
      'Start PostgreSQL (npm run services), fix DATABASE_URL, or unset it to use the embedded database.',
    { cause: err },
  );
}

/** The options' migrations: the init's list when it gives one. */
function migrationsOf(init: StorageInit): Partial<DataSourceOptions> {
  return init.migrations === undefined ? {} : { migrations: [...init.migrations] };
}

async function openPostgres(init: StorageInit & { databaseUrl: string }): Promise<Storage> {
  const dataSource = new DataSource({
    ...postgresDataSourceOptions(init.databaseUrl, init.poolSize),
    ...migrationsOf(init),
  } as DataSourceOptions);
  try {
    await dataSource.initialize();
  } catch (err) {
    throw describeConnectError(err, init.databaseUrl);
  }
  return finishOpen(dataSource, 'postgres', init, async () => {
    await dataSource.destroy();
  });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function openPglite(init: StorageInit): Promise<Storage> {
  const slice = init.embeddedYieldAfterMs;
  if (slice !== undefined && !(slice >= 0))
    throw new Error(`embeddedYieldAfterMs must be a number >= 0 (or Infinity), got ${String(slice)}.`);
  if (init.embeddedSharedBuffers !== undefined && !/^[1-9][0-9]{0,6}(kB|MB|GB)$/.test(init.embeddedSharedBuffers))
    throw new Error(
      `embeddedSharedBuffers must be a size such as 16MB, got ${JSON.stringify(init.embeddedSharedBuffers)}.`,
    );
  const dir = path.resolve(init.dataDir, 'db');
  // Owner-only or refused, before the lock or anything else is written.
  await preparePrivateDataDir(init.dataDir);
  const lock: DataDirLock = await lockDataDir(path.resolve(init.dataDir, 'db.lock'));
  let db: PGlite | undefined;
  try {
    let seeded = false;
    if (!(await exists(dir)) && init.template !== false && init.migrations === undefined) {
      init.onProgress?.(`Creating the embedded database in ${dir}`);
      seeded = await seedFromTemplate(dir, init.onProgress);
    }
    if (!(await exists(path.join(dir, 'PG_VERSION')))) {
      init.onProgress?.(`Creating the embedded database in ${dir} (initdb, a few seconds)`);
    }
    const sharedBuffers = init.embeddedSharedBuffers;
    db = await PGlite.create({
      dataDir: dir,
      ...(sharedBuffers === undefined
        ? {}
        : { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`] }),
    });
    // PGlite chmods its files to 0666 (0644 for those it rewrites at each open), whatever the umask.
    await restrictDataDir(dir);
    const dataSource = new DataSource({
      ...COMMON,
      ...migrationsOf(init),
      type: 'postgres',
      driver: createPgliteDriverModule(
        db,
        init.embeddedYieldAfterMs === undefined ? {} : { yieldAfterMs: init.embeddedYieldAfterMs },
      ),
      database: 'postgres',
      uuidExtension: 'pgcrypto',
      installExtensions: false,
    } as DataSourceOptions);
    await dataSource.initialize();
    const storage = await finishOpen(dataSource, 'pglite', { ...init, seeded }, async () => {
      try {
        await dataSource.destroy();
        await restrictDataDir(dir);
      } finally {
        await lock.release();
      }
    });
    // Migrations may have had files created; the next start refuses the directory if any is left open.
    await restrictDataDir(dir).catch(async (err: unknown) => {
      await storage.close().catch(() => undefined);
      throw err;
    });
    const opened = db;
    return { ...storage, snapshot: () => snapshotPglite(dataSource, opened) };
  } catch (err) {
    if (db && !db.closed) await db.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
}

/**
 * A copy of an open PGlite database as a gzipped tar of its data directory. PGlite takes it under its query
 * lock, so no statement runs meanwhile: the files are those of a database stopped between two statements, a
 * crash-consistent image (WAL included) that PostgreSQL recovers on open, with exactly the transactions
 * committed before it. A CHECKPOINT first leaves little WAL to replay.
 */
async function snapshotPglite(dataSource: DataSource, db: PGlite): Promise<Uint8Array> {
  await dataSource.query('CHECKPOINT');
  const tarball = await db.dumpDataDir('gzip');
  return new Uint8Array(await tarball.arrayBuffer());
}

/**
 * Makes the embedded database of `dataDir` (its `db/`, which must not exist) from a snapshot, opens it once
 * (PGlite recovers it) and closes it, owner-only. Throws if `db/` exists or the snapshot is not one.
 */
export async function restoreEmbeddedDatabase(dataDir: string, snapshot: Uint8Array): Promise<void> {
  const dir = path.resolve(dataDir, 'db');
  if (await exists(dir)) throw new Error(`${dir} exists: a database is restored only where there is none`);
  await preparePrivateDataDir(dataDir);
  const lock: DataDirLock = await lockDataDir(path.resolve(dataDir, 'db.lock'));
  try {
    const db = await PGlite.create({ dataDir: dir, loadDataDir: new Blob([snapshot]) });
    try {
      await db.query('SELECT 1 FROM typeorm_migrations LIMIT 1');
    } finally {
      await db.close();
    }
    await restrictDataDir(dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await lock.release();
  }
}

/**
 * Fills a new embedded database directory from the template (see pglite/template.ts). Any failure there (a
 * read-only install, a full disk) leaves `dir` absent, and PGlite then runs initdb as it would without one.
 */
async function seedFromTemplate(dir: string, onProgress: ((message: string) => void) | undefined): Promise<boolean> {
  try {
    await copyTemplate(await prepareDatabaseTemplate(onProgress), dir);
    return true;
  } catch {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    return false;
  }
}

/** Makes the template of the current migrations now, when missing (`npm run build` calls it); returns its path. */
export async function prepareDatabaseTemplate(onProgress?: (message: string) => void): Promise<string> {
  return ensureTemplate(async (dataDir) => {
    const storage = await openPglite({ dataDir, template: false });
    await storage.close();
  }, onProgress);
}

/** The advisory lock key that serializes migrations between processes sharing a database ("phmg"). */
const MIGRATION_LOCK = 0x70686d67;

async function finishOpen(
  dataSource: DataSource,
  backend: StorageBackend,
  init: StorageInit & { seeded?: boolean },
  close: () => Promise<void>,
): Promise<Storage> {
  let applied: string[] = [];
  if (init.seeded === true) {
    // A database copied from the template came with its migrations: they count as applied by this open,
    // as they would have been without the template.
    const rows = (await dataSource.query(`SELECT name FROM typeorm_migrations ORDER BY id`)) as Array<{
      name: string;
    }>;
    applied = rows.map((row) => row.name);
  }
  if (init.migrationsRun !== false) {
    // Server instances sharing one PostgreSQL may start at the same moment: a session-level advisory lock
    // makes them migrate one after another (the later one then finds nothing pending). PGlite has one
    // process and one session, which this runner would hold, so it goes without.
    const lock = backend === 'postgres' ? dataSource.createQueryRunner() : undefined;
    try {
      if (lock !== undefined) {
        await lock.connect();
        await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      }
      const pending = await dataSource.showMigrations();
      if (pending) init.onProgress?.(`Applying database migrations (${backend})`);
      applied.push(...(await dataSource.runMigrations({ transaction: 'each' })).map((m) => m.name));
      if (lock !== undefined) {
        await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
        await lock.release();
      }
    } catch (err) {
      // Releasing the runner ends nothing; closing the data source below ends its session and the lock.
      await lock?.release().catch(() => undefined);
      await close();
      throw new StorageError(
        'MIGRATION_FAILED',
        `Database migration failed on ${backend}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }
  let closed = false;
  return {
    dataSource,
    backend,
    appliedMigrations: applied,
    ping: async () => {
      await dataSource.query('SELECT 1');
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await close();
    },
  };
}

/** Opens PostgreSQL when `databaseUrl` is set and embedded PGlite in `dataDir` otherwise, then migrates. */
export async function openStorage(init: StorageInit): Promise<Storage> {
  const url = init.databaseUrl;
  return url ? openPostgres({ ...init, databaseUrl: url }) : openPglite(init);
}

/** The SQL that would bring the database in line with the entities; empty when migrations and entities agree. */
export async function schemaDrift(dataSource: DataSource): Promise<string[]> {
  const log = await dataSource.driver.createSchemaBuilder().log();
  return log.upQueries.map((q) => q.query);
}
