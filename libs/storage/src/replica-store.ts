import { createHash } from 'node:crypto';
import {
  chooseDocument,
  canonicalJsonBytes,
  verifyAccountDocument,
  type AccountDocument,
  type Ed25519Options,
  type RevokedEntry,
} from '@polyhome/identity';
import {
  PendingBudget,
  PendingBuffer,
  UnknownAccountError,
  emptyState,
  fieldOf,
  isOpKind,
  isTombstone,
  LAZY_NAMESPACES,
  kindsOf,
  namespaceOf,
  nextWinner,
  putState,
  listsOrigin,
  planApply,
  retractions,
  slotsToRead,
  summaryGroupOf,
  summaryOf,
  summaryRowHash,
  xorInto,
  type ApplyPlan,
  type ApplyResult,
  type JsonAccountState,
  type Op,
  type OpNamespace,
  type PendingLimits,
  type ReplicaStore,
  type StateSummary,
  type VersionVector,
  winnerOf,
  verifyOpsAhead,
  heldVector,
} from '@polyhome/sync';
import { In, Not, type DataSource, type EntityManager, type QueryDeepPartialEntity } from 'typeorm';
import { AccountDocumentEntity } from './entities/account-document.entity.js';
import { AccountStateSummaryEntity } from './entities/account-state-summary.entity.js';
import { AccountStateEntity } from './entities/account-state.entity.js';
import { AccountEntity, type AccountCustody } from './entities/account.entity.js';
import { OpEvidenceEntity } from './entities/op-evidence.entity.js';
import { OpLogHeadEntity } from './entities/op-log-head.entity.js';
import { OpEntity } from './entities/op.entity.js';
import { PeerDeliveryEntity } from './entities/peer-delivery.entity.js';
import { managerOf, type StorageTransaction } from './repositories/transaction.js';

/** Options of the SQL replica store. */
export interface SqlReplicaStoreInit {
  /** Which Ed25519 implementation verifies op signatures (default: native where available). */
  ed25519?: Ed25519Options;
  /** Caps of each account's pending buffer (default: DEFAULT_PENDING_LIMITS of @polyhome/sync). */
  pendingLimits?: PendingLimits;
  /**
   * What the pending buffers of all accounts may hold together. Default: a budget of this store's own,
   * which bounds the process since it runs one store (pass one budget to several stores to share it).
   */
  pendingBudget?: PendingBudget;
}

/** How a newly hosted account starts. */
export interface HostAccountInit {
  custody: AccountCustody;
  /** The sealed root key, for hosted custody only. */
  sealedRootKey?: Buffer | null;
  /** PeerId the document came from; null when made here. */
  receivedFrom?: string | null;
  /** Write within this open transaction instead of opening one, so the caller's other writes commit with it. */
  transaction?: StorageTransaction;
}

/** The state of one account as Matrix APIs serve it, read from `account_state` (fields from the op-kind registry). */
export type StoredAccountState = JsonAccountState;

/** The next op a home makes for an account: its seq, a lamport above everything held, the document seq. */
export interface LocalOpContext {
  seq: number;
  lamport: number;
  docSeq: number;
}

/** Rows per multi-row insert when many accounts are hosted at once. */
const BULK_ROWS = 500;

/** Keys whose current state is read per query when a batch is written. */
const STATE_READ_CHUNK = 100;

function documentHash(document: AccountDocument): Buffer {
  const { signatures: _s, ...content } = document as AccountDocument & { signatures?: unknown };
  return createHash('sha256').update(canonicalJsonBytes(content)).digest();
}

/** A value for a jsonb column in an insert or update (TypeORM's deep-partial type does not take `unknown` values). */
function json(value: object): QueryDeepPartialEntity<Record<string, unknown>> {
  return value as QueryDeepPartialEntity<Record<string, unknown>>;
}

function toOp(row: { content: Record<string, unknown> }): Op {
  return row.content as unknown as Op;
}

/**
 * The winning op a state row stands for, as far as choosing the next winner needs it: its order (lamport,
 * origin, seq), whether it is a tombstone (the kind of its namespace that is or is not one) and its body.
 */
/** The fields of a state row that choosing a winner and keeping summaries read. */
type StateRowFields = Pick<
  AccountStateEntity,
  'namespace' | 'key' | 'lamport' | 'origin' | 'seq' | 'deleted' | 'value'
>;

function heldOp(row: StateRowFields): Op {
  const kind = kindsOf(row.namespace as OpNamespace).find((k) => isTombstone(k) === row.deleted)!;
  return {
    op: kind,
    key: row.key,
    lamport: Number(row.lamport),
    origin: row.origin,
    seq: Number(row.seq),
    body: row.value ?? {},
  } as Op;
}

/** What a state row holds, as far as a summary sees it: the live value, or null (tombstone or no row). */
type Live = Record<string, unknown> | null;

/** The changes a write makes to the summaries of grouped namespaces (`summaryGroupOf`), per namespace and group. */
class SummaryChanges {
  readonly groups = new Map<string, { namespace: string; group: string; count: number; digest: Uint8Array }>();

  /** Key `key` of `namespace` goes from `before` to `after`. */
  note(namespace: string, key: string, before: Live, after: Live): void {
    if (before === null && after === null) return;
    const group = summaryGroupOf(namespace, key);
    if (group === undefined) return;
    const id = `${namespace}\u0000${group}`;
    let entry = this.groups.get(id);
    if (entry === undefined) this.groups.set(id, (entry = { namespace, group, count: 0, digest: new Uint8Array(32) }));
    if (before !== null) {
      entry.count--;
      xorInto(entry.digest, summaryRowHash(key, before));
    }
    if (after !== null) {
      entry.count++;
      xorInto(entry.digest, summaryRowHash(key, after));
    }
  }
}

function liveOf(row: StateRowFields | undefined): Live {
  return row === undefined || row.deleted ? null : row.value;
}

function liveOp(op: Op): Live {
  return isTombstone(op.op) ? null : op.body;
}

/**
 * The SET of an upsert into `peer_delivery` (EXCLUDED is the row proposed): the acknowledged vector merged to the
 * highest seq per origin, and the peer seen now.
 */
const MERGED_ACKS = `
  acked_vv = (
    SELECT COALESCE(jsonb_object_agg(k, GREATEST(COALESCE((peer_delivery.acked_vv ->> k)::bigint, 0),
                                                 COALESCE((EXCLUDED.acked_vv ->> k)::bigint, 0))), '{}'::jsonb)
    FROM (SELECT jsonb_object_keys(peer_delivery.acked_vv) AS k
          UNION SELECT jsonb_object_keys(EXCLUDED.acked_vv)) AS keys
  ),
  last_seen_at = now(), updated_at = now()`;

/** One head as the JSON of `HEADS_JSON` gives it: origin, seq as text, the full digest as hex. */
type HeadRow = [string, string, string];

/** One state row as the JSON of `headsAndStateIn` gives it. */
type StateJsonRow = [string, string, string, string, string, boolean, Record<string, unknown> | null];

/** The heads of the account `a.server_name`, as a JSON array of HeadRow (a subquery of one statement). */
const HEADS_JSON = `(SELECT COALESCE(json_agg(json_build_array(h.origin, h.seq::text, encode(h.digest, 'hex'))
                                     ORDER BY h.origin), '[]'::json)
                    FROM op_log_head h WHERE h.account = a.server_name)`;

/** A json column: the pg driver parses it, PGlite may hand over the text. */
function parsedJson<T>(value: T[] | string): T[] {
  return typeof value === 'string' ? (JSON.parse(value) as T[]) : value;
}

function headsOf(value: HeadRow[] | string): {
  vv: VersionVector;
  digests: Record<string, string>;
  full: Map<string, Buffer>;
} {
  const vv: VersionVector = {};
  const digests: Record<string, string> = {};
  const full = new Map<string, Buffer>();
  for (const [origin, seq, digest] of parsedJson(value)) {
    vv[origin] = Number(seq);
    digests[origin] = digest.slice(0, 32);
    full.set(origin, Buffer.from(digest, 'hex'));
  }
  return { vv, digests, full };
}

/** `digest` (32 zero bytes when undefined) XORed with each hash, as a new buffer. */
function xorHashes(digest: Buffer | undefined, hashes: readonly Buffer[]): Buffer {
  const out = Buffer.from(digest ?? Buffer.alloc(32));
  for (const hash of hashes) for (let i = 0; i < 32; i++) out[i]! ^= hash[i]!;
  return out;
}

/** The heads after appending `append` to heads `vv` with full digests `full` (slots appended in seq order). */
function headsAfter(
  vv: VersionVector,
  full: Map<string, Buffer>,
  append: ReadonlyArray<{ op: Op; hash: string }>,
): { vv: VersionVector; digests: Record<string, string> } {
  const next: VersionVector = { ...vv };
  const hashes = new Map<string, Buffer[]>();
  for (const { op, hash } of append) {
    next[op.origin] = Math.max(next[op.origin] ?? 0, op.seq);
    const list = hashes.get(op.origin);
    if (list === undefined) hashes.set(op.origin, [Buffer.from(hash, 'hex')]);
    else list.push(Buffer.from(hash, 'hex'));
  }
  const digests: Record<string, string> = {};
  for (const origin of Object.keys(next).sort()) {
    const digest = hashes.has(origin) ? xorHashes(full.get(origin), hashes.get(origin)!) : full.get(origin)!;
    digests[origin] = digest.subarray(0, 16).toString('hex');
  }
  const sorted: VersionVector = {};
  for (const origin of Object.keys(next).sort()) sorted[origin] = next[origin]!;
  return { vv: sorted, digests };
}

/**
 * The state keys a batch's untrusted ops name (well-formed kinds only), so their rows are read with the heads; a
 * key of an op that was waiting (pending) is read when it is written.
 */
function candidateKeys(ops: readonly unknown[]): Array<{ namespace: string; key: string }> {
  const out = new Map<string, { namespace: string; key: string }>();
  for (const input of ops) {
    const { op: kind, key } = (input ?? {}) as { op?: unknown; key?: unknown };
    if (typeof kind !== 'string' || typeof key !== 'string' || !isOpKind(kind)) continue;
    const namespace = namespaceOf(kind);
    out.set(`${namespace}:${key}`, { namespace, key });
  }
  return [...out.values()];
}

/** The op columns of the insert of a batch, as arrays (JSON as text, hashes as hex). */
function opColumns(fresh: ReadonlyArray<{ op: Op; hash: Buffer }>): unknown[] {
  return [
    fresh.map(({ op }) => op.origin),
    fresh.map(({ op }) => String(op.seq)),
    fresh.map(({ op }) => String(op.lamport)),
    fresh.map(({ op }) => String(op.doc_seq)),
    fresh.map(({ op }) => String(op.ts)),
    fresh.map(({ op }) => op.op),
    fresh.map(({ op }) => op.key),
    fresh.map(({ op }) => JSON.stringify(op)),
    fresh.map(({ hash }) => hash.toString('hex')),
  ];
}

/** The state columns of the upsert of winners, as arrays. */
function stateColumns(winners: readonly Op[]): unknown[] {
  return [
    winners.map((op) => namespaceOf(op.op)),
    winners.map((op) => op.key),
    winners.map((op) => String(op.lamport)),
    winners.map((op) => op.origin),
    winners.map((op) => String(op.seq)),
    winners.map((op) => isTombstone(op.op)),
    winners.map((op) => (isTombstone(op.op) ? null : JSON.stringify(op.body))),
  ];
}

/**
 * The ReplicaStore on PostgreSQL or PGlite. Every batch is one transaction that first locks the account row,
 * so two batches for one account never interleave (on any number of server instances sharing the database),
 * and a batch is applied whole or not at all. What to do with a batch is decided by planApply of
 * @polyhome/sync, the rules the in-memory replica follows too; this store reads the view it needs (a few
 * queries a batch, none per op) and writes the plan. Ops that arrive ahead of a gap wait in memory, in one
 * PendingBuffer per account, capped per origin, per account, on unknown origins and, on the store's
 * PendingBudget, for all accounts together: they were not accepted, so their sender still has them (its
 * acked vector does not cover them).
 */
export class SqlReplicaStore implements ReplicaStore {
  private readonly pending = new Map<string, PendingBuffer>();
  /** What every account's pending buffer holds together (one store per process: a process-wide bound). */
  readonly pendingBudget: PendingBudget;

  constructor(
    private readonly dataSource: DataSource,
    private readonly init: SqlReplicaStoreInit = {},
  ) {
    this.pendingBudget = init.pendingBudget ?? new PendingBudget();
  }

  /** Starts hosting an account with its first verified document. Throws when it is already hosted. */
  async hostAccount(document: AccountDocument, init: HostAccountInit): Promise<string> {
    const verified = verifyAccountDocument(document, this.init.ed25519);
    const serverName = verified.user_id.slice(verified.user_id.indexOf(':') + 1);
    const write = async (manager: EntityManager): Promise<void> => {
      await manager.getRepository(AccountEntity).insert({
        serverName,
        userId: verified.user_id,
        custody: init.custody,
        sealedRootKey: init.sealedRootKey ?? null,
        docSeq: String(verified.seq),
      });
      await manager.getRepository(AccountDocumentEntity).insert({
        serverName,
        seq: String(verified.seq),
        document: json(verified),
        contentHash: documentHash(verified),
        receivedFrom: init.receivedFrom ?? null,
      });
    };
    await (init.transaction !== undefined ? write(managerOf(init.transaction)) : this.dataSource.transaction(write));
    return serverName;
  }

  /**
   * Starts hosting many accounts at once (bulk creation): every document is verified, then the rows are written
   * in multi-row inserts within one transaction. Throws, writing nothing, when one is invalid or already hosted.
   */
  async hostAccounts(
    documents: readonly AccountDocument[],
    init: { custody: AccountCustody; receivedFrom?: string | null },
  ): Promise<string[]> {
    const verified = documents.map((document) => verifyAccountDocument(document, this.init.ed25519));
    const serverNames = verified.map((d) => d.user_id.slice(d.user_id.indexOf(':') + 1));
    await this.dataSource.transaction(async (manager) => {
      for (let i = 0; i < verified.length; i += BULK_ROWS) {
        const chunk = verified.slice(i, i + BULK_ROWS);
        const names = serverNames.slice(i, i + BULK_ROWS);
        await manager.getRepository(AccountEntity).insert(
          chunk.map((d, j) => ({
            serverName: names[j]!,
            userId: d.user_id,
            custody: init.custody,
            sealedRootKey: null,
            docSeq: String(d.seq),
          })),
        );
        await manager.getRepository(AccountDocumentEntity).insert(
          chunk.map((d, j) => ({
            serverName: names[j]!,
            seq: String(d.seq),
            document: json(d),
            contentHash: documentHash(d),
            receivedFrom: init.receivedFrom ?? null,
          })),
        );
      }
    });
    return serverNames;
  }

  /**
   * Hosted accounts in server-name order, a page at a time, with the PeerIds of the homes their document in
   * force lists (empty when they hold none yet): one query a page. Pass the last account of a page as `after`.
   */
  async listHomes(options: { after?: string; limit: number }): Promise<Array<{ account: string; homes: string[] }>> {
    const rows = await this.dataSource.query<Array<{ account: string; homes: string[] | null }>>(
      `SELECT a.server_name AS account, jsonb_path_query_array(d.document, '$.homes[*].peer_id') AS homes
       FROM account a
       LEFT JOIN account_document d ON d.server_name = a.server_name AND d.seq = a.doc_seq
       WHERE a.server_name > $1
       ORDER BY a.server_name
       LIMIT $2`,
      [options.after ?? '', options.limit],
    );
    return rows.map((r) => ({ account: r.account, homes: r.homes ?? [] }));
  }

  /**
   * The homes, other than those in `exclude` (this home and its sibling instances), that lack ops held here
   * (per what they acknowledged), for a page of accounts in server-name order: one query a page instead of a
   * few per account. `next` is the `after` of the next page, undefined after the last one.
   */
  async homesBehind(
    exclude: readonly string[],
    options: { after?: string; limit: number },
  ): Promise<{ behind: Array<{ account: string; peer: string }>; next: string | undefined }> {
    // Three plain queries a page (homes, heads, acknowledgements) compared here: one query joining them is
    // planned expensive enough for PostgreSQL to JIT-compile it, which costs more than it saves, every page.
    const page = await this.listHomes(options);
    const next = page.length < options.limit ? undefined : page[page.length - 1]!.account;
    if (page.length === 0) return { behind: [], next };
    const accounts = page.map((p) => p.account);
    const heads = await this.dataSource.query<Array<{ account: string; origin: string; seq: string }>>(
      `SELECT account, origin, seq FROM op_log_head WHERE account = ANY($1)`,
      [accounts],
    );
    if (heads.length === 0) return { behind: [], next };
    const acks = await this.dataSource.query<
      Array<{ account: string; peer_id: string; acked_vv: Record<string, number> }>
    >(`SELECT account, peer_id, acked_vv FROM peer_delivery WHERE account = ANY($1)`, [accounts]);
    const held = new Map<string, Array<[string, number]>>();
    for (const h of heads) {
      const list = held.get(h.account) ?? [];
      list.push([h.origin, Number(h.seq)]);
      held.set(h.account, list);
    }
    const acked = new Map(acks.map((a) => [`${a.account} ${a.peer_id}`, a.acked_vv]));
    const skip = new Set(exclude);
    const behind: Array<{ account: string; peer: string }> = [];
    for (const { account, homes } of page) {
      const vv = held.get(account);
      if (vv === undefined) continue;
      for (const peer of [...new Set(homes)].sort()) {
        if (skip.has(peer)) continue;
        const known = acked.get(`${account} ${peer}`) ?? {};
        // A home never lacks its own ops.
        if (vv.some(([origin, seq]) => origin !== peer && (known[origin] ?? 0) < seq)) behind.push({ account, peer });
      }
    }
    return { behind, next };
  }

  /** Documents in force, in server-name order, a page at a time (one query a page); `after` as in listHomes. */
  async documentsPage(options: {
    after?: string;
    limit: number;
  }): Promise<Array<{ account: string; document: AccountDocument }>> {
    const rows = await this.dataSource.query<Array<{ account: string; document: AccountDocument }>>(
      `SELECT a.server_name AS account, d.document
       FROM account a JOIN account_document d ON d.server_name = a.server_name AND d.seq = a.doc_seq
       WHERE a.server_name > $1
       ORDER BY a.server_name
       LIMIT $2`,
      [options.after ?? '', options.limit],
    );
    return rows;
  }

  async document(account: string): Promise<AccountDocument | undefined> {
    return this.documentIn(this.dataSource.manager, account);
  }

  async offerDocument(account: string, document: AccountDocument, from: string): Promise<AccountDocument> {
    const verified = verifyAccountDocument(document, { ...this.init.ed25519, expectedServerName: account });
    const inForce = await this.dataSource.transaction(async (manager) => {
      await this.lockAccount(manager, account);
      const held = await this.documentIn(manager, account);
      // A replayed older document or an equivocating one leaves the held one in force; nothing is written.
      const choice = chooseDocument(held, verified);
      if (choice.kind !== 'accept') return held ?? verified;
      const chosen = choice.document;
      {
        await manager.getRepository(AccountDocumentEntity).insert({
          serverName: account,
          seq: String(chosen.seq),
          document: json(chosen),
          contentHash: documentHash(chosen),
          receivedFrom: from,
        });
        await manager.getRepository(AccountEntity).update({ serverName: account }, { docSeq: String(chosen.seq) });
        await this.retractRevoked(manager, account, chosen);
      }
      return chosen;
    });
    // Ops that waited for a newer document may apply now.
    if (this.pending.get(account)?.size) await this.apply(account, [], true);
    return inForce;
  }

  async versionVector(account: string): Promise<VersionVector> {
    return this.vectorIn(this.dataSource.manager, account);
  }

  async heads(account: string): Promise<{ vv: VersionVector; digests: Record<string, string> }> {
    const { vv, digests } = await this.headsIn(this.dataSource.manager, account);
    return { vv, digests };
  }

  /** The document in force with the heads, in one query (one snapshot): a sync session's view of the account. */
  async local(
    account: string,
  ): Promise<{ document: AccountDocument; vv: VersionVector; digests: Record<string, string> } | undefined> {
    const rows = await this.dataSource.query<Array<{ document: AccountDocument; heads: HeadRow[] | string }>>(
      `SELECT d.document, ${HEADS_JSON} AS heads FROM account a
       JOIN account_document d ON d.server_name = a.server_name AND d.seq = a.doc_seq
       WHERE a.server_name = $1`,
      [account],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    const { vv, digests } = headsOf(row.heads);
    return { document: row.document, vv, digests };
  }

  async logDigests(account: string): Promise<Record<string, string>> {
    return (await this.headsIn(this.dataSource.manager, account)).digests;
  }

  /**
   * What revoking `origin` pins (one read, so seq and digest agree): the head seq held from it with its log
   * digest, or a bare 0 when nothing of it is held.
   */
  async revocationPin(account: string, origin: string): Promise<RevokedEntry> {
    const row = await this.dataSource.getRepository(OpLogHeadEntity).findOneBy({ account, origin });
    return row === null ? 0 : { seq: Number(row.seq), digest: row.digest.subarray(0, 16).toString('hex') };
  }

  async opsMissing(account: string, vv: VersionVector, limit: number): Promise<Op[]> {
    const ours = await this.versionVector(account);
    const out: Op[] = [];
    for (const origin of Object.keys(ours).sort()) {
      const from = vv[origin] ?? 0;
      if ((ours[origin] ?? 0) <= from || out.length >= limit) continue;
      const rows = await this.dataSource
        .getRepository(OpEntity)
        .createQueryBuilder('op')
        .select('op.content', 'content')
        .where('op.account = :account AND op.origin = :origin AND op.seq > :from', { account, origin, from })
        .orderBy('op.seq', 'ASC')
        .limit(limit - out.length)
        .getRawMany<{ content: Record<string, unknown> }>();
      out.push(...rows.map(toOp));
    }
    return out;
  }

  async applyOps(
    account: string,
    ops: readonly unknown[],
    from: string,
    options: { recordHeld?: boolean } = {},
  ): Promise<ApplyResult> {
    return this.apply(account, ops, false, from, options.recordHeld === true);
  }

  private async apply(
    account: string,
    ops: readonly unknown[],
    recheckPending: boolean,
    from: string | null = null,
    recordHeld = false,
  ): Promise<ApplyResult> {
    // Signatures are verified before the account's lock is taken, on the thread pool (a session started this when
    // the batch arrived); planApply's checks inside the transaction then find them in the signature memo.
    if (this.init.ed25519?.backend === undefined) await verifyOpsAhead(ops);
    return this.dataSource.transaction(async (manager) => {
      const document = await this.lockAccountWithDocument(manager, account);
      const { vv: heads, digests, full, state } = await this.headsAndStateIn(manager, account, candidateKeys(ops));
      let buffer = this.pending.get(account);
      if (buffer === undefined) {
        buffer = new PendingBuffer(this.init.pendingLimits, this.pendingBudget);
        this.pending.set(account, buffer);
      }
      const slots = await this.readSlots(manager, account, slotsToRead(heads, buffer, ops));
      const plan = planApply(
        {
          account,
          document,
          heads,
          heldHash: (origin, seq) => slots.held.get(`${origin} ${seq}`),
          evidence: (origin, seq) => slots.evidence.get(`${origin} ${seq}`) ?? new Set(),
          evidenceCount: (origin) => slots.evidenceCount.get(origin) ?? 0,
          digest: (origin) => digests[origin],
          pending: buffer,
          ed25519: this.init.ed25519,
        },
        ops,
        { recheckPending },
      );
      // The pending change is made in the same tick as the plan, so no other account's batch plans against
      // the store's budget in between; it is undone if the writes fail.
      const undo = buffer.apply(plan.pending, (origin) => listsOrigin(document, origin));
      try {
        await this.carryOut(manager, account, heads, plan, from, full, state, recordHeld);
      } catch (error) {
        undo();
        throw error;
      } finally {
        if (buffer.size === 0) this.pending.delete(account);
      }
      plan.result.changed = [...new Set(plan.result.changed)].sort();
      // The heads after the batch, known without a read unless a slot was replaced (then moveHead read them).
      if (plan.replace.length === 0) plan.result.after = { document, ...headsAfter(heads, full, plan.append) };
      return plan.result;
    });
  }

  /**
   * The hashes of the ops holding the given slots, of the evidence kept for them, and how much evidence each
   * of their origins has: one query, and none when the batch touches no held or pending slot (the usual case).
   */
  private async readSlots(
    manager: EntityManager,
    account: string,
    slots: Array<{ origin: string; seq: number }>,
  ): Promise<{ held: Map<string, string>; evidence: Map<string, Set<string>>; evidenceCount: Map<string, number> }> {
    const out = { held: new Map<string, string>(), evidence: new Map<string, Set<string>>(), evidenceCount: new Map() };
    if (slots.length === 0) return out;
    const rows = await manager.query<Array<{ kind: string; origin: string; seq: string; hash: Buffer | null }>>(
      `WITH slot AS (SELECT * FROM unnest($2::varchar[], $3::bigint[]) AS s(origin, seq))
       SELECT 'held' AS kind, o.origin, o.seq, o.hash FROM op o
         JOIN slot ON slot.origin = o.origin AND slot.seq = o.seq WHERE o.account = $1
       UNION ALL
       SELECT 'evidence', e.origin, e.seq, e.hash FROM op_evidence e
         JOIN slot ON slot.origin = e.origin AND slot.seq = e.seq WHERE e.account = $1
       UNION ALL
       SELECT 'count', e.origin, COUNT(*), NULL FROM op_evidence e
         WHERE e.account = $1 AND e.origin = ANY($2::varchar[]) GROUP BY e.origin`,
      [account, slots.map((s) => s.origin), slots.map((s) => s.seq)],
    );
    for (const row of rows) {
      const key = `${row.origin} ${Number(row.seq)}`;
      if (row.kind === 'held') out.held.set(key, row.hash!.toString('hex'));
      else if (row.kind === 'evidence')
        out.evidence.set(key, (out.evidence.get(key) ?? new Set()).add(row.hash!.toString('hex')));
      else out.evidenceCount.set(row.origin, Number(row.seq));
    }
    return out;
  }

  /** Writes a plan: evidence, slots held by a lower hash, then the new ops (with heads and state). */
  private async carryOut(
    manager: EntityManager,
    account: string,
    heads: VersionVector,
    plan: ApplyPlan,
    from: string | null,
    headDigests: Map<string, Buffer>,
    state: Map<string, StateRowFields | null>,
    recordHeld: boolean,
  ): Promise<void> {
    const ops = manager.getRepository(OpEntity);
    // The ops that held the replaced slots: kept as evidence, and their keys recomputed.
    const displaced = new Map<string, Op>();
    if (plan.replace.length > 0) {
      const rows = await manager.query<Array<{ origin: string; seq: string; content: Record<string, unknown> }>>(
        `SELECT o.origin, o.seq, o.content FROM op o
         JOIN unnest($2::varchar[], $3::bigint[]) AS s(origin, seq) ON s.origin = o.origin AND s.seq = o.seq
         WHERE o.account = $1`,
        [account, plan.replace.map((r) => r.op.origin), plan.replace.map((r) => r.op.seq)],
      );
      for (const row of rows) displaced.set(`${row.origin} ${Number(row.seq)}`, toOp(row));
    }
    if (plan.evidence.length > 0) {
      await manager
        .getRepository(OpEvidenceEntity)
        .createQueryBuilder()
        .insert()
        .values(
          plan.evidence.map((e) => {
            const op = e.op ?? displaced.get(`${e.origin} ${e.seq}`);
            if (op === undefined) throw new Error(`plan keeps evidence of ${e.origin} seq ${e.seq}, which is not held`);
            return {
              account,
              origin: e.origin,
              seq: String(e.seq),
              hash: Buffer.from(e.hash, 'hex'),
              content: json(op),
              receivedFrom: e.received ? from : null,
            };
          }),
        )
        .orIgnore()
        .execute();
    }
    const result = plan.result;
    for (const next of plan.replace) {
      const { origin, seq } = next.op;
      const held = displaced.get(`${origin} ${seq}`);
      if (held === undefined) throw new Error(`plan replaces ${origin} seq ${seq}, which is not held`);
      const hash = Buffer.from(next.hash, 'hex');
      await ops.update({ account, origin, seq: String(seq) }, this.row(account, next.op, hash));
      // Replaced slots are at or below the head before the batch; appends move it afterwards.
      await this.moveHead(manager, account, origin, heads[origin]!, [Buffer.from(next.displaced, 'hex'), hash]);
      for (const key of new Set([`${namespaceOf(held.op)}:${held.key}`, `${namespaceOf(next.op.op)}:${next.op.key}`])) {
        const [namespace, ...rest] = key.split(':');
        await this.recomputeKey(manager, account, namespace as OpNamespace, rest.join(':'));
        result.changed.push(key);
      }
    }
    await this.writeFresh(
      manager,
      account,
      plan.append.map(({ op, hash }) => ({ op, hash: Buffer.from(hash, 'hex') })),
      result,
      plan.replace.length === 0 ? { digests: headDigests, state, from: recordHeld ? from : null } : undefined,
    );
  }

  /**
   * Removes the ops of revoked origins above their cutoff. They were accepted before this home learnt of
   * the revocation; keeping them would leave homes that learnt at different times with different op sets.
   * Ops of such an origin still waiting in memory are refused when re-validated against the new document.
   */
  private async retractRevoked(manager: EntityManager, account: string, document: AccountDocument): Promise<void> {
    for (const { origin, cutoff } of retractions(await this.vectorIn(manager, account), document)) {
      const where = 'account = :account AND origin = :origin AND seq > :cutoff';
      const params = { account, origin, cutoff };
      const ops = manager.getRepository(OpEntity);
      const removed = await ops
        .createQueryBuilder('op')
        .select('op.content', 'content')
        .addSelect('op.hash', 'hash')
        .where(`op.${where.replaceAll(' AND ', ' AND op.')}`, params)
        .getRawMany<{ content: Record<string, unknown>; hash: Buffer }>();
      await ops.createQueryBuilder().delete().where(where, params).execute();
      await this.moveHead(
        manager,
        account,
        origin,
        cutoff,
        removed.map((r) => r.hash),
      );
      const keys = new Map<string, Op>();
      for (const op of removed.map(toOp)) keys.set(`${namespaceOf(op.op)}:${op.key}`, op);
      for (const op of keys.values()) await this.recomputeKey(manager, account, namespaceOf(op.op), op.key);
    }
  }

  /**
   * Records what a peer acknowledged (monotonic per origin), and when it was last heard from: one statement. The
   * upsert locks the row it merges into, so concurrent acks of one peer each merge into what the other wrote.
   */
  async recordAck(account: string, peerId: string, vv: VersionVector): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO peer_delivery (account, peer_id, acked_vv, last_seen_at) VALUES ($1, $2, $3::jsonb, now())
       ON CONFLICT (account, peer_id) DO UPDATE SET ${MERGED_ACKS}`,
      [account, peerId, JSON.stringify(vv)],
    );
  }

  /** Marks a peer connected now, for each of the accounts given: one statement. */
  async recordConnected(accounts: readonly string[], peerId: string): Promise<void> {
    if (accounts.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO peer_delivery (account, peer_id, last_connected_at, last_seen_at)
       SELECT a, $2, now(), now() FROM unnest($1::varchar[]) AS a
       ON CONFLICT (account, peer_id) DO UPDATE SET last_connected_at = now(), last_seen_at = now(), updated_at = now()`,
      [[...new Set(accounts)], peerId],
    );
  }

  /** What each peer has acknowledged, and when it was last connected and seen. */
  async deliveryState(account: string): Promise<PeerDeliveryEntity[]> {
    return this.dataSource.getRepository(PeerDeliveryEntity).find({ where: { account }, order: { peerId: 'ASC' } });
  }

  /** The seq, lamport and document seq of the next op `origin` makes for the account. */
  async localOpContext(account: string, origin: string): Promise<LocalOpContext> {
    const document = await this.document(account);
    if (document === undefined) throw new UnknownAccountError(account);
    const row = await this.dataSource
      .getRepository(OpEntity)
      .createQueryBuilder('op')
      .select('MAX(op.lamport)', 'lamport')
      .addSelect('MAX(CASE WHEN op.origin = :origin THEN op.seq END)', 'seq')
      .where('op.account = :account', { account, origin })
      .getRawOne<{ lamport: string | null; seq: string | null }>();
    return { seq: Number(row?.seq ?? 0) + 1, lamport: Number(row?.lamport ?? 0) + 1, docSeq: document.seq };
  }

  /** The replicated state: each namespace's rows in the field the op-kind registry gives it, tombstones hidden. */
  async state(account: string): Promise<StoredAccountState> {
    // Lazy namespaces (key backup: thousands of keys) are read a prefix at a time (stateRows), never here.
    const rows = await this.dataSource
      .getRepository(AccountStateEntity)
      .find({ where: { account, namespace: Not(In([...LAZY_NAMESPACES])) }, order: { key: 'ASC' } });
    const state: StoredAccountState = emptyState();
    for (const row of rows) {
      const field = fieldOf(row.namespace);
      // A namespace this version does not know was written by a newer one sharing the database: not served here.
      if (row.deleted || row.value === null || field === undefined) continue;
      putState(state, field, row.key, row.value);
    }
    return state;
  }

  /**
   * The rows of one namespace whose keys start with `keyPrefix` (all of them without one), tombstones included
   * (`value` null), in no particular order: how lazy namespaces are read.
   */
  async stateRows(
    account: string,
    namespace: string,
    keyPrefix = '',
  ): Promise<Array<{ key: string; value: Record<string, unknown> | null }>> {
    return this.rowsIn(this.dataSource.manager, account, namespace, keyPrefix);
  }

  private async rowsIn(
    manager: EntityManager,
    account: string,
    namespace: string,
    keyPrefix: string,
  ): Promise<Array<{ key: string; value: Record<string, unknown> | null }>> {
    const query = manager
      .getRepository(AccountStateEntity)
      .createQueryBuilder('s')
      .select(['s.key', 's.value', 's.deleted'])
      .where('s.account = :account AND s.namespace = :namespace', { account, namespace });
    if (keyPrefix !== '') {
      query.andWhere("s.key LIKE :prefix ESCAPE '\\'", { prefix: `${keyPrefix.replace(/[\\%_]/g, '\\$&')}%` });
    }
    const rows = await query.getMany();
    // LIKE is only a filter here: the exact prefix test decides.
    return rows
      .filter((row) => row.key.startsWith(keyPrefix))
      .map((row) => ({ key: row.key, value: row.deleted ? null : row.value }));
  }

  /** Origins caught signing two different ops with one seq, with how many losing ops are kept. */
  async equivocators(account: string): Promise<Array<{ origin: string; ops: number }>> {
    const rows = await this.dataSource
      .getRepository(OpEvidenceEntity)
      .createQueryBuilder('e')
      .select('e.origin', 'origin')
      .addSelect('COUNT(*)', 'ops')
      .where('e.account = :account', { account })
      .groupBy('e.origin')
      .orderBy('e.origin')
      .getRawMany<{ origin: string; ops: string }>();
    return rows.map((r) => ({ origin: r.origin, ops: Number(r.ops) }));
  }

  /** Accounts, in server-name order after `after`, whose state holds a `member` row joined or invited. */
  async accountsInRooms(options: { after?: string; limit: number }): Promise<string[]> {
    const rows = await this.dataSource.query<Array<{ account: string }>>(
      `SELECT DISTINCT account FROM account_state
       WHERE namespace = 'member' AND NOT deleted AND value ->> 'membership' IN ('join', 'invite') AND account > $1
       ORDER BY account LIMIT $2`,
      [options.after ?? '', options.limit],
    );
    return rows.map((r) => r.account);
  }

  /** Ops waiting in memory for a gap or a document, for one account. */
  pendingCount(account: string): number {
    return this.pending.get(account)?.size ?? 0;
  }

  /** Inserts the batch's new ops and moves each touched key's state to its winner; empties `fresh`. */
  private async writeFresh(
    manager: EntityManager,
    account: string,
    fresh: Array<{ op: Op; hash: Buffer }>,
    result: ApplyResult,
    // `from`: the peer whose held vector is recorded with the batch (null: none, e.g. a local write).
    read?: { digests: Map<string, Buffer>; state: Map<string, StateRowFields | null>; from: string | null },
  ): Promise<void> {
    if (fresh.length === 0) return;
    const byOrigin = new Map<string, { seq: number; hashes: Buffer[] }>();
    for (const { op, hash } of fresh) {
      const entry = byOrigin.get(op.origin) ?? { seq: 0, hashes: [] };
      entry.seq = Math.max(entry.seq, op.seq);
      entry.hashes.push(hash);
      byOrigin.set(op.origin, entry);
    }
    // With the heads read under the lock, the ops, the heads and the states are written together (writeBatch);
    // otherwise (a slot was replaced in this batch) one at a time, the heads read again.
    const together = read !== undefined;
    if (!together) {
      await this.insertOps(manager, account, fresh);
      for (const [origin, { seq, hashes }] of byOrigin) await this.moveHead(manager, account, origin, seq, hashes);
    }
    // The batch's ops per key, then the current winners of those keys: read with the heads, or now.
    const byKey = new Map<string, Op[]>();
    for (const { op } of fresh) {
      const key = `${namespaceOf(op.op)}:${op.key}`;
      const list = byKey.get(key);
      if (list === undefined) byKey.set(key, [op]);
      else list.push(op);
    }
    const batch = [...fresh];
    fresh.length = 0;
    const unread = [...byKey.entries()].filter(([key]) => !read?.state.has(key)).map(([, ops]) => ops[0]!);
    const current = new Map<string, StateRowFields>();
    for (const [key, row] of read?.state ?? []) if (byKey.has(key) && row !== null) current.set(key, row);
    if (unread.length > 0) {
      const rows = await manager.query<StateRowFields[]>(
        `SELECT s.namespace, s.key, s.lamport, s.origin, s.seq, s.deleted, s.value FROM account_state s
         JOIN unnest($2::varchar[], $3::varchar[]) AS k(namespace, key) ON k.namespace = s.namespace AND k.key = s.key
         WHERE s.account = $1`,
        [account, unread.map((op) => namespaceOf(op.op)), unread.map((op) => op.key)],
      );
      for (const row of rows) current.set(`${row.namespace}:${row.key}`, row);
    }
    const winners: Op[] = [];
    const summaries = new SummaryChanges();
    const recompute: Array<{ namespace: OpNamespace; key: string }> = [];
    for (const [key, ops] of byKey) {
      const row = current.get(key);
      const held = row === undefined ? undefined : heldOp(row);
      // Each op folded into the winner; a kind ranked by value may need the key's other ops to tell.
      let winner: Op | undefined = held;
      for (const op of ops) {
        winner = nextWinner(winner, op);
        if (winner === undefined) break;
      }
      if (winner === undefined) recompute.push({ namespace: namespaceOf(ops[0]!.op), key: ops[0]!.key });
      else if (winner !== held) {
        winners.push(winner);
        result.changed.push(key);
        summaries.note(namespaceOf(winner.op), winner.key, liveOf(row), liveOp(winner));
      }
    }
    if (together) {
      // What the sender holds (as the session reports it to the delivery tracking): recorded with the batch.
      const held =
        read.from === null
          ? {}
          : heldVector([
              ...result.accepted,
              ...result.rejected.filter((r) => r.reason === 'duplicate').map((r) => r.op),
            ]);
      const sender = read.from !== null && Object.keys(held).length > 0 ? { peer: read.from, vv: held } : undefined;
      await this.writeBatch(manager, account, batch, byOrigin, read.digests, winners, sender);
      if (sender !== undefined) result.heldRecorded = true;
    } else await this.upsertState(manager, account, winners);
    await this.writeSummaries(manager, account, summaries);
    for (const { namespace, key } of await this.recomputeKeys(manager, account, recompute)) {
      result.changed.push(`${namespace}:${key}`);
    }
  }

  /** Inserts a batch's new ops: one statement, its columns as arrays (not a parameter per value). */
  private async insertOps(
    manager: EntityManager,
    account: string,
    fresh: Array<{ op: Op; hash: Buffer }>,
  ): Promise<void> {
    await manager.query(
      `INSERT INTO op (account, origin, seq, lamport, doc_seq, ts, kind, key, content, hash)
       SELECT $1, o.origin, o.seq, o.lamport, o.doc_seq, o.ts, o.kind, o.key, o.content::jsonb, decode(o.hash, 'hex')
       FROM unnest($2::varchar[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::varchar[], $8::varchar[],
                   $9::text[], $10::text[]) AS o(origin, seq, lamport, doc_seq, ts, kind, key, content, hash)`,
      [account, ...opColumns(fresh)],
    );
  }

  /** Sets each op as the state of its key (insert or replace): one statement, its columns as arrays. */
  private async upsertState(manager: EntityManager, account: string, winners: readonly Op[]): Promise<void> {
    if (winners.length === 0) return;
    await manager.query(
      `INSERT INTO account_state (account, namespace, key, lamport, origin, seq, deleted, value)
       SELECT $1, w.namespace, w.key, w.lamport, w.origin, w.seq, w.deleted, w.value::jsonb
       FROM unnest($2::varchar[], $3::varchar[], $4::bigint[], $5::varchar[], $6::bigint[], $7::boolean[], $8::text[])
         AS w(namespace, key, lamport, origin, seq, deleted, value)
       ON CONFLICT (account, namespace, key) DO UPDATE SET lamport = EXCLUDED.lamport, origin = EXCLUDED.origin,
         seq = EXCLUDED.seq, deleted = EXCLUDED.deleted, value = EXCLUDED.value, updated_at = now()`,
      [account, ...stateColumns(winners)],
    );
  }

  private row(account: string, op: Op, hash: Buffer): QueryDeepPartialEntity<OpEntity> {
    return {
      account,
      origin: op.origin,
      seq: String(op.seq),
      lamport: String(op.lamport),
      docSeq: String(op.doc_seq),
      ts: String(op.ts),
      kind: op.op,
      key: op.key,
      content: json(op),
      hash,
    };
  }

  private async recomputeKey(
    manager: EntityManager,
    account: string,
    namespace: OpNamespace,
    key: string,
  ): Promise<void> {
    await this.recomputeKeys(manager, account, [{ namespace, key }]);
  }

  /**
   * Sets the state of each key to the winner of all its ops (`winnerOf`), a chunk of keys per query; returns the
   * keys whose winner changed.
   */
  private async recomputeKeys(
    manager: EntityManager,
    account: string,
    keys: Array<{ namespace: OpNamespace; key: string }>,
  ): Promise<Array<{ namespace: OpNamespace; key: string }>> {
    const changed: Array<{ namespace: OpNamespace; key: string }> = [];
    const summaries = new SummaryChanges();
    const repo = manager.getRepository(AccountStateEntity);
    for (let i = 0; i < keys.length; i += STATE_READ_CHUNK) {
      const chunk = keys.slice(i, i + STATE_READ_CHUNK);
      const kinds = [...new Set(chunk.flatMap(({ namespace }) => kindsOf(namespace)))];
      const rows = await manager
        .getRepository(OpEntity)
        .createQueryBuilder('op')
        .select('op.content', 'content')
        .where('op.account = :account AND op.kind IN (:...kinds) AND op.key IN (:...keys)', {
          account,
          kinds,
          keys: [...new Set(chunk.map((k) => k.key))],
        })
        .getRawMany<{ content: Record<string, unknown> }>();
      const ops = new Map<string, Op[]>();
      for (const op of rows.map(toOp)) {
        const id = `${namespaceOf(op.op)}:${op.key}`;
        const list = ops.get(id);
        if (list === undefined) ops.set(id, [op]);
        else list.push(op);
      }
      const held = new Map<string, AccountStateEntity>();
      for (const row of await repo.find({ where: chunk.map(({ namespace, key }) => ({ account, namespace, key })) })) {
        held.set(`${row.namespace}:${row.key}`, row);
      }
      for (const { namespace, key } of chunk) {
        const id = `${namespace}:${key}`;
        const best = winnerOf(ops.get(id) ?? []);
        const row = held.get(id);
        summaries.note(namespace, key, liveOf(row), best === undefined ? null : liveOp(best));
        if (best === undefined) {
          if (row !== undefined) {
            await repo.delete({ account, namespace, key });
            changed.push({ namespace, key });
          }
          continue;
        }
        // Written even when the same slot still wins: its op may be another one now (equivocation).
        await repo.upsert(this.stateRow(account, namespace, best), ['account', 'namespace', 'key']);
        if (row === undefined || row.origin !== best.origin || Number(row.seq) !== best.seq) {
          changed.push({ namespace, key });
        }
      }
    }
    await this.writeSummaries(manager, account, summaries);
    return changed;
  }

  /**
   * Applies summary changes within the batch's transaction (the account row is locked): a group with a summary
   * row takes the change; a group without one (new, or written before summaries were kept) is computed whole
   * from `account_state`, which already holds the batch's rows.
   */
  private async writeSummaries(manager: EntityManager, account: string, changes: SummaryChanges): Promise<void> {
    if (changes.groups.size === 0) return;
    const repo = manager.getRepository(AccountStateSummaryEntity);
    for (const { namespace, group, count, digest } of changes.groups.values()) {
      const row = await repo.findOneBy({ account, namespace, groupKey: group });
      let summary: StateSummary;
      if (row === null) summary = summaryOf(await this.rowsIn(manager, account, namespace, group));
      else {
        const next = new Uint8Array(row.digest);
        xorInto(next, digest);
        summary = { count: Number(row.count) + count, digest: next };
      }
      await repo.upsert(
        { account, namespace, groupKey: group, count: String(summary.count), digest: Buffer.from(summary.digest) },
        ['account', 'namespace', 'groupKey'],
      );
    }
  }

  /**
   * The summary of a group of a grouped lazy namespace (count of live keys, XOR of their row hashes), without
   * reading its rows once the summary is kept; a group never summarised is computed once, under the account's
   * lock, and kept from then on.
   */
  async stateSummary(account: string, namespace: string, group: string): Promise<StateSummary> {
    const repo = this.dataSource.getRepository(AccountStateSummaryEntity);
    const row = await repo.findOneBy({ account, namespace, groupKey: group });
    if (row !== null) return { count: Number(row.count), digest: new Uint8Array(row.digest) };
    return this.dataSource.transaction(async (manager) => {
      await this.lockAccount(manager, account);
      const held = await manager
        .getRepository(AccountStateSummaryEntity)
        .findOneBy({ account, namespace, groupKey: group });
      if (held !== null) return { count: Number(held.count), digest: new Uint8Array(held.digest) };
      const summary = summaryOf(await this.rowsIn(manager, account, namespace, group));
      await manager.getRepository(AccountStateSummaryEntity).insert({
        account,
        namespace,
        groupKey: group,
        count: String(summary.count),
        digest: Buffer.from(summary.digest),
      });
      return summary;
    });
  }

  private stateRow(account: string, namespace: OpNamespace, op: Op): QueryDeepPartialEntity<AccountStateEntity> {
    const deleted = isTombstone(op.op);
    return {
      account,
      namespace,
      key: op.key,
      lamport: String(op.lamport),
      origin: op.origin,
      seq: String(op.seq),
      deleted,
      value: deleted ? null : json(op.body),
    };
  }

  /** Locks the account's row and reads its document in force, in one query. Throws UnknownAccountError. */
  private async lockAccountWithDocument(manager: EntityManager, account: string): Promise<AccountDocument> {
    const rows = await manager.query<Array<{ document: AccountDocument | null }>>(
      `SELECT d.document FROM account a
       LEFT JOIN account_document d ON d.server_name = a.server_name AND d.seq = a.doc_seq
       WHERE a.server_name = $1 FOR UPDATE OF a`,
      [account],
    );
    const document = rows[0]?.document;
    if (document === undefined || document === null) throw new UnknownAccountError(account);
    return document;
  }

  private async lockAccount(manager: EntityManager, account: string): Promise<void> {
    const row = await manager
      .getRepository(AccountEntity)
      .createQueryBuilder('a')
      .select('a.serverName')
      .where('a.serverName = :account', { account })
      .setLock('pessimistic_write')
      .getOne();
    if (row === null) throw new UnknownAccountError(account);
  }

  private async documentIn(manager: EntityManager, account: string): Promise<AccountDocument | undefined> {
    const row = await manager
      .getRepository(AccountDocumentEntity)
      .createQueryBuilder('d')
      .innerJoin(AccountEntity, 'a', 'a.server_name = d.server_name AND a.doc_seq = d.seq')
      .where('d.server_name = :account', { account })
      .getOne();
    return row ? (row.document as unknown as AccountDocument) : undefined;
  }

  private async vectorIn(manager: EntityManager, account: string): Promise<VersionVector> {
    return (await this.headsIn(manager, account)).vv;
  }

  /** The version vector and the log digests (the first 16 bytes, as the in-memory replica reports them). */
  private async headsIn(
    manager: EntityManager,
    account: string,
  ): Promise<{ vv: VersionVector; digests: Record<string, string>; full: Map<string, Buffer> }> {
    const rows = await manager.getRepository(OpLogHeadEntity).find({ where: { account }, order: { origin: 'ASC' } });
    const vv: VersionVector = {};
    const digests: Record<string, string> = {};
    const full = new Map<string, Buffer>();
    for (const row of rows) {
      vv[row.origin] = Number(row.seq);
      digests[row.origin] = row.digest.subarray(0, 16).toString('hex');
      full.set(row.origin, row.digest);
    }
    return { vv, digests, full };
  }

  /**
   * The heads (as headsIn) and the state rows of `keys`, in one query under the account's lock: the rows a batch's
   * winners are chosen against, read for the keys its ops name (a key read and not held maps to null).
   */
  private async headsAndStateIn(
    manager: EntityManager,
    account: string,
    keys: ReadonlyArray<{ namespace: string; key: string }>,
  ): Promise<{
    vv: VersionVector;
    digests: Record<string, string>;
    full: Map<string, Buffer>;
    state: Map<string, StateRowFields | null>;
  }> {
    const rows = await manager.query<Array<{ heads: HeadRow[] | string; state: StateJsonRow[] | string }>>(
      `SELECT ${HEADS_JSON} AS heads,
         (SELECT COALESCE(json_agg(json_build_array(s.namespace, s.key, s.lamport::text, s.origin, s.seq::text,
                                                    s.deleted, s.value)), '[]'::json)
          FROM account_state s
          JOIN unnest($2::varchar[], $3::varchar[]) AS k(namespace, key) ON k.namespace = s.namespace AND k.key = s.key
          WHERE s.account = $1) AS state
       FROM (SELECT $1::char(64) AS server_name) a`,
      [account, keys.map((k) => k.namespace), keys.map((k) => k.key)],
    );
    const row = rows[0]!;
    const state = new Map<string, StateRowFields | null>(keys.map((k) => [`${k.namespace}:${k.key}`, null]));
    for (const [namespace, key, lamport, origin, seq, deleted, value] of parsedJson(row.state)) {
      state.set(`${namespace}:${key}`, { namespace, key, lamport, origin, seq, deleted, value });
    }
    return { ...headsOf(row.heads), state };
  }

  /**
   * Writes a batch in one statement: its new ops, the heads of its origins (each digest XORed, in memory, with the
   * hashes of the origin's new ops, from the digests read under the account's lock at the start of the batch) and
   * the keys whose winner changed. The three tables are written by data-modifying CTEs, which PostgreSQL and
   * PGlite run as one statement.
   */
  private async writeBatch(
    manager: EntityManager,
    account: string,
    fresh: ReadonlyArray<{ op: Op; hash: Buffer }>,
    byOrigin: Map<string, { seq: number; hashes: Buffer[] }>,
    digests: Map<string, Buffer>,
    winners: readonly Op[],
    sender: { peer: string; vv: VersionVector } | undefined,
  ): Promise<void> {
    const origins: string[] = [];
    const seqs: string[] = [];
    const hex: string[] = [];
    for (const [origin, { seq, hashes }] of byOrigin) {
      origins.push(origin);
      seqs.push(String(seq));
      hex.push(xorHashes(digests.get(origin), hashes).toString('hex'));
    }
    await manager.query(
      `WITH fresh AS (
         INSERT INTO op (account, origin, seq, lamport, doc_seq, ts, kind, key, content, hash)
         SELECT $1, o.origin, o.seq, o.lamport, o.doc_seq, o.ts, o.kind, o.key, o.content::jsonb, decode(o.hash, 'hex')
         FROM unnest($2::varchar[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::varchar[],
                     $8::varchar[], $9::text[], $10::text[]) AS o(origin, seq, lamport, doc_seq, ts, kind, key, content, hash)
       ), heads AS (
         INSERT INTO op_log_head (account, origin, seq, digest)
         SELECT $1, h.origin, h.seq, decode(h.digest, 'hex')
         FROM unnest($11::varchar[], $12::bigint[], $13::text[]) AS h(origin, seq, digest)
         ON CONFLICT (account, origin) DO UPDATE SET seq = EXCLUDED.seq, digest = EXCLUDED.digest
       ), held AS (
         INSERT INTO peer_delivery (account, peer_id, acked_vv, last_seen_at)
         SELECT $1, $21::varchar, $22::jsonb, now() WHERE $21::varchar IS NOT NULL
         ON CONFLICT (account, peer_id) DO UPDATE SET ${MERGED_ACKS}
       )
       INSERT INTO account_state (account, namespace, key, lamport, origin, seq, deleted, value)
       SELECT $1, w.namespace, w.key, w.lamport, w.origin, w.seq, w.deleted, w.value::jsonb
       FROM unnest($14::varchar[], $15::varchar[], $16::bigint[], $17::varchar[], $18::bigint[], $19::boolean[],
                   $20::text[]) AS w(namespace, key, lamport, origin, seq, deleted, value)
       ON CONFLICT (account, namespace, key) DO UPDATE SET lamport = EXCLUDED.lamport, origin = EXCLUDED.origin,
         seq = EXCLUDED.seq, deleted = EXCLUDED.deleted, value = EXCLUDED.value, updated_at = now()`,
      [
        account,
        ...opColumns(fresh),
        origins,
        seqs,
        hex,
        ...stateColumns(winners),
        sender?.peer ?? null,
        JSON.stringify(sender?.vv ?? {}),
      ],
    );
  }

  /** XORs `hashes` into the digest of an origin's log and sets its head seq (a head at seq 0 is removed). */
  private async moveHead(
    manager: EntityManager,
    account: string,
    origin: string,
    seq: number,
    hashes: Buffer[],
  ): Promise<void> {
    const repo = manager.getRepository(OpLogHeadEntity);
    const head = await repo.findOneBy({ account, origin });
    const digest = xorHashes(head?.digest, hashes);
    if (seq === 0) await repo.delete({ account, origin });
    else await repo.upsert({ account, origin, seq: String(seq), digest }, ['account', 'origin']);
  }
}
