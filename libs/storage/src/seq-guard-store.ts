// The SQL side of the DHT replay guard: the SeqGuardStore port of @polyhome/p2p (`highestSeq`, `remember`),
// kept in `dht_seq_guard`. It holds only the accounts this node pinned (hosted or looked up), so the table
// cannot be grown by a stranger's DHT records. Rows are read once at open: kad-dht's validator asks on every
// record it sees, and a database query per record would hand a flood the database.
import type { DataSource } from 'typeorm';
import { DhtSeqGuardEntity } from './entities/index.js';

/** A SeqGuardStore on PostgreSQL or PGlite (give it to `createPolyhomeHost({ recordGuard: { store } })`). */
export class SqlSeqGuardStore {
  readonly #dataSource: DataSource;
  readonly #seqs: Map<string, number>;

  private constructor(dataSource: DataSource, seqs: Map<string, number>) {
    this.#dataSource = dataSource;
    this.#seqs = seqs;
  }

  /** Reads every guarded account's seq. Another instance's later pins are seen after the next open. */
  static async open(dataSource: DataSource): Promise<SqlSeqGuardStore> {
    const rows = await dataSource.getRepository(DhtSeqGuardEntity).find();
    return new SqlSeqGuardStore(dataSource, new Map(rows.map((r) => [r.serverName, Number(r.seq)])));
  }

  /** The highest seq remembered for the account, or undefined when the account is not guarded. */
  async highestSeq(account: string): Promise<number | undefined> {
    return this.#seqs.get(account);
  }

  /** Guards the account, keeping the higher of `seq` and the seq already stored (by any instance). */
  async remember(account: string, seq: number): Promise<void> {
    const known = this.#seqs.get(account);
    if (known !== undefined && known >= seq) return;
    const rows = await this.#dataSource.query<Array<{ seq: string }>>(
      `INSERT INTO "dht_seq_guard" ("server_name", "seq") VALUES ($1, $2)
       ON CONFLICT ("server_name") DO UPDATE SET "seq" = GREATEST("dht_seq_guard"."seq", EXCLUDED."seq")
       RETURNING "seq"`,
      [account, String(seq)],
    );
    const stored = Number(rows[0]!.seq);
    this.#seqs.set(account, Math.max(stored, this.#seqs.get(account) ?? 0));
  }
}
