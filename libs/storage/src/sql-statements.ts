import pg from 'pg';

let statements = 0;

/**
 * How many queries this process has sent to its databases, PostgreSQL and PGlite alike: one per query sent,
 * transaction control (`START TRANSACTION`, `COMMIT`) included. A string of several statements sent without
 * parameters (as migrations send them) counts once. Exported as the metric `polyhome_sql_statements_total`;
 * `npm run load` divides its increase by the ops accepted meanwhile.
 */
export function sqlStatementsSent(): number {
  return statements;
}

/** Counts one query sent; the PGlite driver calls it, and `CountingPgClient` for PostgreSQL. */
export function countSqlStatement(): void {
  statements++;
}

const pgQuery = pg.Client.prototype.query;

/**
 * A `pg` client that counts each query it is given. TypeORM's pool makes its clients from this class (the
 * pool's `Client` option), so every statement on PostgreSQL passes here: the pool's own `query` and every
 * query runner call `client.query`.
 */
export class CountingPgClient extends pg.Client {}

// The method is replaced on the prototype rather than overridden in the class body: `query` has a dozen
// overloads, and forwarding the arguments untouched keeps every one of them.
CountingPgClient.prototype.query = function query(this: pg.Client, ...args: unknown[]): unknown {
  statements++;
  return Reflect.apply(pgQuery, this, args);
} as typeof pgQuery;
