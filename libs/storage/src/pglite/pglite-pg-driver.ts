import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { PGlite, Results } from '@electric-sql/pglite';
import { types } from '@electric-sql/pglite';
import { isReplicationWork } from '@polyhome/sync';
import { countSqlStatement } from '../sql-statements.js';

/** How long a caller waits for the single PGlite session before giving up. */
export const PGLITE_SESSION_WAIT_MS = 30_000;

/** While ordinary work waits for the embedded session, replication waiting too gets one turn in this many. */
export const REPLICATION_TURN_EVERY = 4;

/**
 * The longest the session runs queries back to back before it lets the event loop turn (timers, I/O, other
 * requests). PGlite runs in WebAssembly on this thread and its `query` resolves a promise, so a chain of awaited
 * queries would otherwise hold the loop for as long as the chain lasts.
 */
export const PGLITE_YIELD_AFTER_MS = 5;

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
 * Lets the event loop turn between queries. A stretch starts with the first query after the loop last turned;
 * it also schedules a `setImmediate` that marks the turn. A query asked for once the stretch has lasted
 * `yieldAfterMs` waits for that turn. The caller keeps its lease while it waits, so a transaction still has the
 * session to itself: only work outside the database (timers, I/O, handlers that will queue for the session)
 * runs in between.
 */
class EventLoopTurns {
  private stretchStart = 0;
  private turn: Promise<void> | undefined;
  /** How many times a query waited for the loop to turn (read by tests and the bench). */
  yields = 0;

  constructor(private readonly yieldAfterMs: number) {}

  /** Call before each query; resolves at once unless the loop is due a turn. */
  beforeQuery(): Promise<void> | undefined {
    if (!this.turn) {
      this.stretchStart = performance.now();
      this.turn = new Promise<void>((resolve) =>
        setImmediate(() => {
          this.turn = undefined;
          resolve();
        }),
      );
      return undefined;
    }
    if (performance.now() - this.stretchStart < this.yieldAfterMs) return undefined;
    this.yields += 1;
    return this.turn;
  }
}

/**
 * One session on the embedded database, leased from the pool. PGlite has a single backend session,
 * so a lease is exclusive: that is what makes TypeORM transactions isolated on PGlite.
 */
class PgliteClient extends EventEmitter {
  private inTransaction = false;

  constructor(
    private readonly db: PGlite,
    private readonly turns: EventLoopTurns,
  ) {
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
    const turn = this.turns.beforeQuery();
    if (turn) await turn;
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
    const turn = this.turns.beforeQuery();
    if (turn) await turn;
    countSqlStatement();
    await this.db.exec('ROLLBACK');
  }
}

/** Options of the PGlite pool. */
export interface PglitePoolOptions {
  /** See PGLITE_YIELD_AFTER_MS; `Infinity` never yields (the bench's "before"). */
  yieldAfterMs?: number;
}

/** A `pg.Pool` look-alike over one PGlite instance: at most one client is leased at a time. */
export class PglitePool extends EventEmitter {
  private readonly client: PgliteClient;
  private readonly turns: EventLoopTurns;
  private leased = false;
  // Two lanes: ordinary work (clients' requests, jobs), then replication (sync sessions), which is served once
  // in every REPLICATION_TURN_EVERY hand-overs while ordinary work waits, so it is never starved.
  private readonly waiters: Array<() => void> = [];
  private readonly replicationWaiters: Array<() => void> = [];
  private ordinaryInARow = 0;
  private ended = false;

  constructor(
    private readonly db: PGlite,
    options: PglitePoolOptions = {},
  ) {
    super();
    const yieldAfterMs = options.yieldAfterMs ?? PGLITE_YIELD_AFTER_MS;
    if (!(yieldAfterMs >= 0)) throw new Error(`yieldAfterMs must be a number >= 0, got ${String(yieldAfterMs)}.`);
    this.turns = new EventLoopTurns(yieldAfterMs);
    this.client = new PgliteClient(db, this.turns);
  }

  /** How many times a query has waited for the event loop to turn on this pool. */
  get yields(): number {
    return this.turns.yields;
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
      const lane = isReplicationWork() ? this.replicationWaiters : this.waiters;
      const timer = setTimeout(() => {
        const index = lane.indexOf(grant);
        if (index !== -1) lane.splice(index, 1);
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
      lane.push(grant);
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
    const replicationTurn =
      this.replicationWaiters.length > 0 &&
      (this.waiters.length === 0 || this.ordinaryInARow >= REPLICATION_TURN_EVERY);
    const next = replicationTurn ? this.replicationWaiters.shift() : this.waiters.shift();
    this.ordinaryInARow = replicationTurn || next === undefined ? 0 : this.ordinaryInARow + 1;
    if (next) next();
    else this.leased = false;
  }
}

/**
 * A module shaped like `pg` for TypeORM's `driver` option. Each DataSource gets its own module, and so
 * its own PGlite instance: two DataSources never share tables or a session by accident.
 */
export function createPgliteDriverModule(
  db: PGlite,
  options: PglitePoolOptions = {},
): {
  Pool: new () => PglitePool;
  defaults: Record<string, unknown>;
} {
  class Pool extends PglitePool {
    constructor() {
      super(db, options);
    }
  }
  return { Pool, defaults: {} };
}
