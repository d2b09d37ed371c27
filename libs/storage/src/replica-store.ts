import { createHash } from 'node:crypto';
import {
  chooseDocument,
  canonicalJsonBytes,
  verifyAccountDocument,
  type AccountDocument,
  type Ed25519Options,
} from '@polyhome/identity';
import {
  MAX_OPS_PER_BATCH,
  MAX_PENDING_PER_ORIGIN,
  UnknownAccountError,
  compareOps,
  emptyState,
  fieldOf,
  isTombstone,
  kindsOf,
  namespaceOf,
  opHash,
  putState,
  validateOp,
  type ApplyResult,
  type JsonAccountState,
  type Op,
  type OpNamespace,
  type ReplicaStore,
  type VersionVector,
} from '@polyhome/sync';
import type { DataSource, EntityManager, QueryDeepPartialEntity } from 'typeorm';
import { AccountDocumentEntity } from './entities/account-document.entity.js';
import { AccountStateEntity } from './entities/account-state.entity.js';
import { AccountEntity, type AccountCustody } from './entities/account.entity.js';
import { OpEvidenceEntity } from './entities/op-evidence.entity.js';
import { OpLogHeadEntity } from './entities/op-log-head.entity.js';
import { OpEntity } from './entities/op.entity.js';
import { PeerDeliveryEntity } from './entities/peer-delivery.entity.js';

/** Options of the SQL replica store. */
export interface SqlReplicaStoreInit {
  /** Which Ed25519 implementation verifies op signatures (default: native where available). */
  ed25519?: Ed25519Options;
}

/** How a newly hosted account starts. */
export interface HostAccountInit {
  custody: AccountCustody;
  /** The sealed root key, for hosted custody only. */
  sealedRootKey?: Buffer | null;
  /** PeerId the document came from; null when made here. */
  receivedFrom?: string | null;
  /** Write within this open transaction instead of opening one, so the caller's other writes commit with it. */
  manager?: EntityManager;
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

function emptyResult(): ApplyResult {
  return { accepted: [], rejected: [], pending: 0, equivocations: [], changed: [] };
}

/** A value for a jsonb column in an insert or update (TypeORM's deep-partial type does not take `unknown` values). */
function json(value: object): QueryDeepPartialEntity<Record<string, unknown>> {
  return value as QueryDeepPartialEntity<Record<string, unknown>>;
}

function toOp(row: { content: Record<string, unknown> }): Op {
  return row.content as unknown as Op;
}

/**
 * The ReplicaStore on PostgreSQL or PGlite. Every batch is one transaction that first locks the account row,
 * so two batches for one account never interleave (on any number of server instances sharing the database),
 * and a batch is applied whole or not at all. Ops that arrive ahead of a gap wait in memory, bounded per
 * origin: they were not accepted, so their sender still has them (its acked vector does not cover them).
 */
export class SqlReplicaStore implements ReplicaStore {
  private readonly pending = new Map<string, Map<string, Map<number, unknown>>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly init: SqlReplicaStoreInit = {},
  ) {}

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
    await (init.manager !== undefined ? write(init.manager) : this.dataSource.transaction(write));
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
    if (this.pending.get(account)?.size) await this.apply(account, [], from, true);
    return inForce;
  }

  async versionVector(account: string): Promise<VersionVector> {
    return this.vectorIn(this.dataSource.manager, account);
  }

  async logDigests(account: string): Promise<Record<string, string>> {
    const rows = await this.dataSource
      .getRepository(OpLogHeadEntity)
      .find({ where: { account }, order: { origin: 'ASC' } });
    const out: Record<string, string> = {};
    // The first 16 bytes, as the in-memory replica reports them: both must compare equal.
    for (const row of rows) out[row.origin] = row.digest.subarray(0, 16).toString('hex');
    return out;
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

  async applyOps(account: string, ops: readonly unknown[], from: string): Promise<ApplyResult> {
    return this.apply(account, ops, from, false);
  }

  private async apply(
    account: string,
    ops: readonly unknown[],
    from: string,
    retryPending: boolean,
  ): Promise<ApplyResult> {
    const result = emptyResult();
    if (ops.length > MAX_OPS_PER_BATCH) {
      for (const op of ops) {
        result.rejected.push({
          op,
          reason: 'too_large',
          detail: `batch of ${ops.length} ops; at most ${MAX_OPS_PER_BATCH}`,
        });
      }
      return result;
    }
    await this.dataSource.transaction(async (manager) => {
      await this.lockAccount(manager, account);
      const document = await this.documentIn(manager, account);
      if (document === undefined) throw new UnknownAccountError(account);
      const vv = await this.vectorIn(manager, account);
      // New ops are written together at the end (one INSERT, one state read, one UPSERT per batch):
      // per-op round trips would cap ingest far below the verify rate.
      const fresh: Array<{ op: Op; hash: Buffer }> = [];
      const queue: unknown[] = retryPending ? [...ops, ...this.takePending(account)] : [...ops];
      while (queue.length > 0) {
        const input = queue.shift();
        const validation = validateOp(input, document, this.init.ed25519);
        if (!validation.ok) {
          result.rejected.push({ op: input, reason: validation.reason, detail: validation.detail });
          continue;
        }
        const op = validation.op;
        const next = (vv[op.origin] ?? 0) + 1;
        if (validation.origin === 'wait_for_document' || op.seq > next) {
          this.stash(account, op, result, input);
          continue;
        }
        const hash = Buffer.from(opHash(op), 'hex');
        if (op.seq < next) {
          // Rare: a duplicate or an equivocation. Settle the batch so far, then compare with what is held.
          await this.writeFresh(manager, account, fresh, result);
          await this.slotTaken(manager, account, op, hash, from, result);
          continue;
        }
        fresh.push({ op, hash });
        vv[op.origin] = op.seq;
        result.accepted.push(op);
        // A gap just filled: the op that waited for it is next.
        const waiting = this.pending.get(account)?.get(op.origin);
        const following = waiting?.get(op.seq + 1);
        if (following !== undefined) {
          waiting!.delete(op.seq + 1);
          queue.unshift(following);
        }
      }
      await this.writeFresh(manager, account, fresh, result);
    });
    result.pending = this.pendingCount(account);
    return result;
  }

  /**
   * Removes the ops of revoked origins above their cutoff. They were accepted before this home learnt of
   * the revocation; keeping them would leave homes that learnt at different times with different op sets.
   * Ops of such an origin still waiting in memory are refused when re-validated against the new document.
   */
  private async retractRevoked(manager: EntityManager, account: string, document: AccountDocument): Promise<void> {
    const heads = await manager.getRepository(OpLogHeadEntity).find({ where: { account } });
    for (const head of heads) {
      const cutoff = document.revoked[head.origin];
      if (cutoff === undefined || Number(head.seq) <= cutoff) continue;
      const where = 'account = :account AND origin = :origin AND seq > :cutoff';
      const params = { account, origin: head.origin, cutoff };
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
        head.origin,
        cutoff,
        removed.map((r) => r.hash),
      );
      const keys = new Map<string, Op>();
      for (const op of removed.map(toOp)) keys.set(`${namespaceOf(op.op)}:${op.key}`, op);
      for (const op of keys.values()) await this.recomputeKey(manager, account, namespaceOf(op.op), op.key);
    }
  }

  /** Records what a peer acknowledged (monotonic per origin), and when it was last heard from. */
  async recordAck(account: string, peerId: string, vv: VersionVector): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(PeerDeliveryEntity);
      // Make sure the row exists before locking it: two first acks racing on a missing row would each
      // insert their own vector, and the later, possibly smaller one would win.
      await repo.createQueryBuilder().insert().values({ account, peerId }).orIgnore().execute();
      const row = await repo.findOneOrFail({ where: { account, peerId }, lock: { mode: 'pessimistic_write' } });
      const merged: Record<string, number> = { ...row.ackedVv };
      for (const [origin, seq] of Object.entries(vv)) merged[origin] = Math.max(merged[origin] ?? 0, seq);
      await repo.update({ account, peerId }, { ackedVv: merged, lastSeenAt: new Date() });
    });
  }

  /** Marks a peer connected now. */
  async recordConnected(account: string, peerId: string): Promise<void> {
    const now = new Date();
    await this.dataSource
      .getRepository(PeerDeliveryEntity)
      .upsert({ account, peerId, lastConnectedAt: now, lastSeenAt: now }, ['account', 'peerId']);
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
    const rows = await this.dataSource
      .getRepository(AccountStateEntity)
      .find({ where: { account }, order: { key: 'ASC' } });
    const state: StoredAccountState = emptyState();
    for (const row of rows) {
      const field = fieldOf(row.namespace);
      // A namespace this version does not know was written by a newer one sharing the database: not served here.
      if (row.deleted || row.value === null || field === undefined) continue;
      putState(state, field, row.key, row.value);
    }
    return state;
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

  /** Ops waiting in memory for a gap or a document, for one account. */
  pendingCount(account: string): number {
    let n = 0;
    for (const byOrigin of this.pending.get(account)?.values() ?? []) n += byOrigin.size;
    return n;
  }

  /** Inserts the batch's new ops and moves each touched key's state to its winner; empties `fresh`. */
  private async writeFresh(
    manager: EntityManager,
    account: string,
    fresh: Array<{ op: Op; hash: Buffer }>,
    result: ApplyResult,
  ): Promise<void> {
    if (fresh.length === 0) return;
    await manager.getRepository(OpEntity).insert(fresh.map(({ op, hash }) => this.row(account, op, hash)));
    const byOrigin = new Map<string, { seq: number; hashes: Buffer[] }>();
    for (const { op, hash } of fresh) {
      const entry = byOrigin.get(op.origin) ?? { seq: 0, hashes: [] };
      entry.seq = Math.max(entry.seq, op.seq);
      entry.hashes.push(hash);
      byOrigin.set(op.origin, entry);
    }
    for (const [origin, { seq, hashes }] of byOrigin) await this.moveHead(manager, account, origin, seq, hashes);
    // The best new op per key, then one read of the current winners of those keys.
    const best = new Map<string, Op>();
    for (const { op } of fresh) {
      const key = `${namespaceOf(op.op)}:${op.key}`;
      const held = best.get(key);
      if (held === undefined || compareOps(op, held) > 0) best.set(key, op);
    }
    fresh.length = 0;
    const repo = manager.getRepository(AccountStateEntity);
    const current = new Map<string, AccountStateEntity>();
    const candidates = [...best.values()];
    for (let i = 0; i < candidates.length; i += STATE_READ_CHUNK) {
      const chunk = candidates.slice(i, i + STATE_READ_CHUNK);
      const rows = await repo.find({
        where: chunk.map((op) => ({ account, namespace: namespaceOf(op.op), key: op.key })),
      });
      for (const row of rows) current.set(`${row.namespace}:${row.key}`, row);
    }
    const winners: Op[] = [];
    for (const [key, op] of best) {
      const row = current.get(key);
      if (
        row &&
        compareOps(op, { lamport: Number(row.lamport), origin: row.origin, seq: Number(row.seq) } as Op) <= 0
      ) {
        continue;
      }
      winners.push(op);
      result.changed.push(key);
    }
    if (winners.length > 0) {
      await repo.upsert(
        winners.map((op) => this.stateRow(account, namespaceOf(op.op), op)),
        ['account', 'namespace', 'key'],
      );
    }
  }

  /**
   * An op for a slot already held: a duplicate is a no-op; a different op is equivocation. The lower content
   * hash holds the slot on every replica, so replicas agree whatever order they saw the two in.
   */
  private async slotTaken(
    manager: EntityManager,
    account: string,
    op: Op,
    hash: Buffer,
    from: string,
    result: ApplyResult,
  ): Promise<void> {
    const ops = manager.getRepository(OpEntity);
    const held = await ops.findOneByOrFail({ account, origin: op.origin, seq: String(op.seq) });
    const evidence = manager.getRepository(OpEvidenceEntity);
    if (
      held.hash.equals(hash) ||
      (await evidence.existsBy({ account, origin: op.origin, seq: String(op.seq), hash }))
    ) {
      result.rejected.push({ op, reason: 'duplicate', detail: `already held: ${op.origin} seq ${op.seq}` });
      return;
    }
    result.equivocations.push({
      origin: op.origin,
      seq: op.seq,
      held: held.hash.toString('hex'),
      other: hash.toString('hex'),
    });
    if (Buffer.compare(hash, held.hash) < 0) {
      // The newcomer takes the slot; the held op becomes evidence, and the keys of both are recomputed.
      const head = await manager.getRepository(OpLogHeadEntity).findOneByOrFail({ account, origin: op.origin });
      await this.moveHead(manager, account, op.origin, Number(head.seq), [held.hash, hash]);
      await evidence.insert({
        account,
        origin: op.origin,
        seq: held.seq,
        hash: held.hash,
        content: json(held.content),
        receivedFrom: null,
      });
      await ops.update({ account, origin: op.origin, seq: held.seq }, this.row(account, op, hash));
      const displaced = toOp(held);
      for (const changed of new Set([
        `${namespaceOf(displaced.op)}:${displaced.key}`,
        `${namespaceOf(op.op)}:${op.key}`,
      ])) {
        const [namespace, ...rest] = changed.split(':');
        await this.recomputeKey(manager, account, namespace as OpNamespace, rest.join(':'));
        result.changed.push(changed);
      }
    } else {
      await evidence.insert({
        account,
        origin: op.origin,
        seq: String(op.seq),
        hash,
        content: json(op),
        receivedFrom: from,
      });
    }
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
    const rows = await manager
      .getRepository(OpEntity)
      .createQueryBuilder('op')
      .select('op.content', 'content')
      .where('op.account = :account AND op.key = :key AND op.kind IN (:...kinds)', {
        account,
        key,
        kinds: kindsOf(namespace),
      })
      .getRawMany<{ content: Record<string, unknown> }>();
    let best: Op | undefined;
    for (const candidate of rows.map(toOp)) if (best === undefined || compareOps(candidate, best) > 0) best = candidate;
    const repo = manager.getRepository(AccountStateEntity);
    if (best === undefined) await repo.delete({ account, namespace, key });
    else await repo.upsert(this.stateRow(account, namespace, best), ['account', 'namespace', 'key']);
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

  private stash(account: string, op: Op, result: ApplyResult, input: unknown): void {
    let byOrigin = this.pending.get(account);
    if (byOrigin === undefined) this.pending.set(account, (byOrigin = new Map()));
    let bySeq = byOrigin.get(op.origin);
    if (bySeq === undefined) byOrigin.set(op.origin, (bySeq = new Map()));
    if (bySeq.has(op.seq)) {
      result.rejected.push({ op: input, reason: 'duplicate', detail: `already pending: ${op.origin} seq ${op.seq}` });
      return;
    }
    // Beyond the cap the op is dropped: the sender re-sends it, since our ack does not cover it.
    if (bySeq.size < MAX_PENDING_PER_ORIGIN) bySeq.set(op.seq, op);
  }

  private takePending(account: string): unknown[] {
    const byOrigin = this.pending.get(account);
    if (byOrigin === undefined) return [];
    // Lowest seq first per origin; they re-enter validation, since the document may have changed.
    const out: unknown[] = [];
    for (const bySeq of byOrigin.values())
      out.push(...[...bySeq.entries()].sort(([a], [b]) => a - b).map(([, op]) => op));
    this.pending.delete(account);
    return out;
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
    const rows = await manager.getRepository(OpLogHeadEntity).find({ where: { account }, order: { origin: 'ASC' } });
    const vv: VersionVector = {};
    for (const row of rows) vv[row.origin] = Number(row.seq);
    return vv;
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
    const digest = Buffer.from(head?.digest ?? Buffer.alloc(32));
    for (const hash of hashes) for (let i = 0; i < 32; i++) digest[i]! ^= hash[i]!;
    if (seq === 0) await repo.delete({ account, origin });
    else await repo.upsert({ account, origin, seq: String(seq), digest }, ['account', 'origin']);
  }
}
