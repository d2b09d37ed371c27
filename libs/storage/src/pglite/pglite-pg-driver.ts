import { EventEmitter } from 'node:events';
import type { PGlite, Results } from '@electric-sql/pglite';
import { types } from '@electric-sql/pglite';
import { countSqlStatement } from '../sql-statements.js';

/** How long a caller waits for the single PGlite session before giving up. */
export const PGLITE_SESSION_WAIT_MS = 30_000;

type Callback<T> = (err: Error | null, result?: T) => void;

/** The subset of a `pg` query result that TypeORM's PostgreSQL driver reads. */
export interface PgLikeResult {
  rows: Record<string, unknown>[];
  rowCount: number;
  command: string;
  fields: { name: string; dataTypeID: number }[];
}

// Parse values the way `pg` does, so entities look the same on both backends:
// int8 and numeric stay strings (no silent precision loss), bytea becomes a Buffer.
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.NUMERIC]: (value: string) => value,
  [types.BYTEA]: (value: string) => Buffer.from(value.slice(2), 'hex'),
};

function commandOf(sql: string): string {
  const match = /^\s*([A-Za-z]+)/.exec(sql);
  return match?.[1]?.toUpperCase() ?? '';
}

function toPgResult(result: Results<Record<string, unknown>>, sql: string): PgLikeResult {
  const command = result.command ?? commandOf(sql);
  return {
    rows: result.rows,
    rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length,
    command,
    fields: result.fields,
  };
}

/**
 * One session on the embedded database, leased from the pool. PGlite has a single backend session,
 * so a lease is exclusive: that is what makes TypeORM transactions isolated on PGlite.
 */
class PgliteClient extends EventEmitter {
  private inTransaction = false;

  constructor(private readonly db: PGlite) {
    super();
  }

  /** Runs a query; with no parameters several statements may be sent at once, as with `pg`. */
  query(
    sql: string,
    params?: unknown[] | Callback<PgLikeResult>,
    callback?: Callback<PgLikeResult>,
  ): Promise<PgLikeResult> {
    const cb = typeof params === 'function' ? params : callback;
    const values = Array.isArray(params) ? params : undefined;
    const promise = this.run(sql, values);
    if (cb) {
      promise.then(
        (result) => cb(null, result),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
    }
    return promise;
  }

  private async run(sql: string, values: unknown[] | undefined): Promise<PgLikeResult> {
    countSqlStatement();
    const command = commandOf(sql);
    let result: PgLikeResult;
    if (values && values.length > 0) {
      result = toPgResult(await this.db.query<Record<string, unknown>>(sql, values, { parsers }), sql);
    } else {
      const all = await this.db.exec(sql, { parsers });
      const last = all[all.length - 1];
      result = last
        ? toPgResult(last as Results<Record<string, unknown>>, sql)
        : { rows: [], rowCount: 0, command, fields: [] };
    }
    if (command === 'BEGIN' || command === 'START') this.inTransaction = true;
    else if (command === 'COMMIT' || command === 'END' || (command === 'ROLLBACK' && !/\bTO\b/i.test(sql)))
      this.inTransaction = false;
    return result;
  }

  /** Ends a transaction its holder left open, so the next lease starts clean. */
  async reset(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    countSqlStatement();
    await this.db.exec('ROLLBACK');
  }
}

/** A `pg.Pool` look-alike over one PGlite instance: at most one client is leased at a time. */
export class PglitePool extends EventEmitter {
  private readonly client: PgliteClient;
  private leased = false;
  private readonly waiters: Array<() => void> = [];
  private ended = false;

  constructor(private readonly db: PGlite) {
    super();
    this.client = new PgliteClient(db);
  }

  /** Leases the session; the callback form is the one TypeORM uses. */
  connect(
    callback?: (err: Error | null, client?: PgliteClient, release?: (err?: unknown) => void) => void,
  ): Promise<PgliteClient> {
    const promise = this.acquire();
    if (callback) {
      promise.then(
        (client) => callback(null, client, () => this.release()),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    }
    return promise;
  }

  /** Runs one query on a short lease, like `pool.query` in `pg`. */
  async query(sql: string, params?: unknown[]): Promise<PgLikeResult> {
    const client = await this.acquire();
    try {
      return await client.query(sql, params);
    } finally {
      this.release();
    }
  }

  /** Closes the embedded database. */
  end(callback?: (err?: Error) => void): Promise<void> {
    this.ended = true;
    const promise = this.db.closed ? Promise.resolve() : this.db.close();
    if (callback)
      promise.then(
        () => callback(),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    return promise;
  }

  private async acquire(): Promise<PgliteClient> {
    if (this.ended) throw new Error('The embedded database is closed.');
    await this.db.waitReady;
    if (!this.leased) {
      this.leased = true;
      return this.client;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(grant);
        if (index !== -1) this.waiters.splice(index, 1);
        reject(
          new Error(
            `The embedded database session was busy for ${PGLITE_SESSION_WAIT_MS} ms: a query runner was not released, ` +
              'or a query was run outside the transaction that holds the session.',
          ),
        );
      }, PGLITE_SESSION_WAIT_MS);
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(grant);
    });
    return this.client;
  }

  private release(): void {
    this.client.reset().then(
      () => this.handOver(),
      (err: unknown) => {
        this.emit('error', err);
        this.handOver();
      },
    );
  }

  private handOver(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.leased = false;
  }
}

/**
 * A module shaped like `pg` for TypeORM's `driver` option. Each DataSource gets its own module, and so
 * its own PGlite instance: two DataSources never share tables or a session by accident.
 */
export function createPgliteDriverModule(db: PGlite): {
  Pool: new () => PglitePool;
  defaults: Record<string, unknown>;
} {
  class Pool extends PglitePool {
    constructor() {
      super(db);
    }
  }
  return { Pool, defaults: {} };
}
