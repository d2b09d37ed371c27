// A pure in-memory replica of one account: the document in force, the op log of every origin
// (gapless from seq 1), ops waiting for a gap or a document, equivocation evidence, and the materialized
// state. The API passes replicas in and out like Automerge documents: every change returns a new handle
// and outdates the old one (using it throws StaleReplicaError), so no caller ever sees a replica change
// under it, while the engine avoids copying whole logs on every batch.
import {
  chooseDocument,
  decodeHex,
  encodeHex,
  peerIdFromPublicKey,
  verifyAccountDocument,
  type AccountDocument,
  type DocumentChoice,
  type Ed25519Options,
  type SecretKey,
} from '@polyhome/identity';
import { DocumentRejectedError, StaleReplicaError } from './errors.js';
import { createOp } from './op.js';
import { PendingBuffer, type PendingBudget, type PendingLimits } from './pending.js';
import {
  emptyApplyResult as emptyResult,
  listsOrigin,
  planApply,
  retractions,
  type ApplyPlan,
  type ApplyView,
} from './plan.js';
import {
  createKeyIndex,
  indexAdd,
  indexRemove,
  materialize,
  stateKey,
  type AccountState,
  type KeyIndex,
} from './state.js';
import type { ApplyResult, Op, OpContent, VersionVector } from './types.js';
import { accountOf } from './validate.js';

/** An opaque handle on one account's replica; pass it to the functions of this module. */
export interface Replica {
  /** The account's server name. */
  readonly account: string;
}

/** Options of a replica. */
export interface ReplicaOptions {
  /** Ed25519 backend for verifying ops and documents (tests pin one; production uses the default). */
  ed25519?: Ed25519Options;
  /** Caps of the pending buffer (default: DEFAULT_PENDING_LIMITS). */
  pendingLimits?: PendingLimits;
  /** A budget the pending buffer shares with other replicas (a store's accounts); copies made by cloneReplica leave it. */
  pendingBudget?: PendingBudget;
}

/** The outcome of offering a document to a replica. */
export interface DocumentOffer {
  /** What identity's chooseDocument decided (`accept`, `keep`, `rollback`, `equivocation`). */
  choice: DocumentChoice;
  /** Ops dropped from the log because the new document revoked their origin below their seq. */
  retracted: Op[];
  /** Pending ops the new document let through (accepted) or refused. */
  applied: ApplyResult;
}

/** One equivocation: every distinct op seen for one (origin, seq), the slot holder first. */
export interface Evidence {
  origin: string;
  seq: number;
  ops: Op[];
}

/** What a local change needs; the rest of the op is filled in from the replica. */
export type LocalChange = Pick<OpContent, 'op' | 'key' | 'body'>;

interface Slot {
  readonly op: Op;
  readonly hash: string;
}

interface ReplicaState {
  readonly account: string;
  document: AccountDocument;
  readonly logs: Map<string, Slot[]>;
  readonly pending: PendingBuffer;
  /** Ops that lost their slot to a lower hash, per origin and seq, by hash (capped per origin by the planner). */
  readonly evidence: Map<string, Map<number, Map<string, Op>>>;
  readonly index: KeyIndex;
  /** Per origin, the XOR of the content hashes of the ops holding its slots (see logDigests). */
  readonly digests: Map<string, Uint8Array>;
  maxLamport: number;
  readonly options: ReplicaOptions;
}

const states = new WeakMap<Replica, ReplicaState>();

/** A replica of the account a verified document describes, holding no ops yet. Throws DocumentRejectedError. */
export function createReplica(document: AccountDocument, options: ReplicaOptions = {}): Replica {
  const verified = verifyDocument(document, undefined, options);
  return wrap({
    account: accountOf(verified),
    document: verified,
    logs: new Map(),
    pending: new PendingBuffer(options.pendingLimits, options.pendingBudget),
    evidence: new Map(),
    index: createKeyIndex(),
    digests: new Map(),
    maxLamport: 0,
    options,
  });
}

/**
 * Validates and applies a batch of untrusted ops (as planApply plans it). Each op is accepted, held as
 * pending, reported as an equivocation or refused with a reason (`pending_full` when the pending buffer is
 * full); never half-applied. Batches larger than MAX_OPS_PER_BATCH are refused whole. Returns the new
 * replica handle (the old one is outdated).
 */
export function applyOps(replica: Replica, inputs: readonly unknown[]): [Replica, ApplyResult] {
  const st = read(replica);
  const plan = planApply(viewOf(st), inputs);
  plan.result.changed = [...carryOut(st, plan)].sort();
  return [rewrap(replica, st), plan.result];
}

/**
 * Offers an account document. A newer one replaces the held one: ops of a revoked origin above its
 * cutoff are retracted (so every replica holds the same op set), and pending ops are re-checked.
 * A replay or an equivocating document changes nothing and is reported in `choice`.
 * Throws DocumentRejectedError when the document does not verify or is for another account.
 */
export function offerDocument(replica: Replica, document: unknown): [Replica, DocumentOffer] {
  const st = read(replica);
  const verified = verifyDocument(document, st.account, st.options);
  const choice = chooseDocument(st.document, verified);
  if (choice.kind !== 'accept') return [replica, { choice, retracted: [], applied: emptyResult() }];
  st.document = choice.document;
  const changed = new Set<string>();
  const retracted: Op[] = [];
  for (const { origin, cutoff } of retractions(versionVectorOf(st), st.document)) {
    const log = st.logs.get(origin)!;
    for (const slot of log.splice(cutoff)) {
      toggleDigest(st, slot);
      if (indexRemove(st.index, slot.op)) changed.add(stateKey(slot.op));
      retracted.push(slot.op);
    }
    if (log.length === 0) st.logs.delete(origin);
  }
  const plan = planApply(viewOf(st), [], { recheckPending: true });
  for (const key of carryOut(st, plan)) changed.add(key);
  plan.result.changed = [...changed].sort();
  return [rewrap(replica, st), { choice, retracted, applied: plan.result }];
}

/** The account document in force. */
export function documentOf(replica: Replica): AccountDocument {
  return read(replica).document;
}

/** What this replica holds: origin -> highest gapless seq (origins with nothing held are left out). */
export function versionVector(replica: Replica): VersionVector {
  return versionVectorOf(read(replica));
}

/**
 * Per origin held, a digest of the ops holding its slots (hex of the first 16 bytes of the XOR of their
 * content hashes). Two replicas with the same seq for an origin but different digests hold different
 * versions of some op of it (equivocation): the session then sends that origin's whole log once, so
 * both see both versions and the lower hash wins on both.
 */
export function logDigests(replica: Replica): Record<string, string> {
  const st = read(replica);
  const out: Record<string, string> = {};
  for (const origin of [...st.logs.keys()].sort()) {
    const digest = digestOf(st, origin);
    if (digest !== undefined) out[origin] = digest;
  }
  return out;
}

/** Up to `limit` ops the holder of `vv` lacks, origin by origin (sorted), each origin in seq order. Ops are frozen. */
export function opsMissing(replica: Replica, vv: VersionVector, limit: number): Op[] {
  const st = read(replica);
  const out: Op[] = [];
  const max = Number.isSafeInteger(limit) ? Math.max(0, limit) : 0;
  for (const origin of [...st.logs.keys()].sort()) {
    if (out.length >= max) break;
    const log = st.logs.get(origin)!;
    const seen = Object.hasOwn(vv, origin) ? vv[origin] : undefined;
    const from = typeof seen === 'number' && Number.isSafeInteger(seen) && seen > 0 ? seen : 0;
    for (let i = from; i < log.length && out.length < max; i++) out.push(log[i]!.op);
  }
  return out;
}

/** The lamport clock value for the next local op: one more than any op this replica has accepted. */
export function nextLamport(replica: Replica): number {
  return read(replica).maxLamport + 1;
}

/** The replicated state as plain data: devices (not deleted), memberships, cross-signing keys. */
export function stateOf(replica: Replica): AccountState {
  return materialize(read(replica).index);
}

/** Number of ops waiting for an earlier seq or a newer document. */
export function pendingCount(replica: Replica): number {
  return read(replica).pending.size;
}

/** Origins seen signing two different ops with one seq, sorted: their owner should revoke them. */
export function flaggedOrigins(replica: Replica): string[] {
  return [...read(replica).evidence.keys()].sort();
}

/**
 * All equivocation evidence held, ordered by origin then seq: the op holding the slot (in the log, or
 * pending) first, then the ops that lost it, by content hash.
 */
export function evidenceOf(replica: Replica): Evidence[] {
  const st = read(replica);
  const out: Evidence[] = [];
  for (const origin of [...st.evidence.keys()].sort()) {
    const bySeq = st.evidence.get(origin)!;
    for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) {
      const losers = new Map(bySeq.get(seq)!);
      const holder = st.logs.get(origin)?.[seq - 1] ?? st.pending.get(origin, seq);
      if (holder !== undefined) losers.set(holder.hash, holder.op);
      const ops = [...losers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, op]) => op);
      out.push({ origin, seq, ops });
    }
  }
  return out;
}

/** Per origin with evidence, how many losing ops are kept (as SqlReplicaStore.equivocators reports them). */
export function equivocators(replica: Replica): Array<{ origin: string; ops: number }> {
  const st = read(replica);
  return [...st.evidence.keys()].sort().map((origin) => {
    let ops = 0;
    for (const losers of st.evidence.get(origin)!.values()) ops += losers.size;
    return { origin, ops };
  });
}

/** The op holding (origin, seq), if held. */
export function opAt(replica: Replica, origin: string, seq: number): Op | undefined {
  return read(replica).logs.get(origin)?.[seq - 1]?.op;
}

/** An independent copy of a replica (both handles stay usable). */
export function cloneReplica(replica: Replica): Replica {
  const st = read(replica);
  const index = createKeyIndex();
  for (const [key, set] of st.index.ops) index.ops.set(key, new Set(set));
  for (const [key, op] of st.index.winners) index.winners.set(key, op);
  return wrap({
    account: st.account,
    document: st.document,
    logs: new Map([...st.logs].map(([o, log]) => [o, [...log]])),
    pending: st.pending.clone(),
    evidence: new Map([...st.evidence].map(([o, m]) => [o, new Map([...m].map(([s, h]) => [s, new Map(h)]))])),
    index,
    digests: new Map([...st.digests].map(([o, d]) => [o, Uint8Array.from(d)])),
    maxLamport: st.maxLamport,
    options: st.options,
  });
}

/**
 * Makes and signs the next local op of the home holding `homeSecretKey` (seq, lamport and doc_seq from
 * the replica). Does not apply it: pass it to applyOps. Throws OpRejectedError for a change peers would refuse.
 */
export function makeLocalOp(replica: Replica, homeSecretKey: SecretKey, change: LocalChange, ts: number): Op {
  const st = read(replica);
  const origin = peerIdFromPublicKey(homeSecretKey.publicKey);
  return createOp(
    {
      account: st.account,
      origin,
      seq: (st.logs.get(origin)?.length ?? 0) + 1,
      lamport: st.maxLamport + 1,
      doc_seq: st.document.seq,
      ts,
      op: change.op,
      key: change.key,
      body: change.body,
    },
    homeSecretKey,
    { ...st.options.ed25519, userId: st.document.user_id },
  );
}

/** What the planner sees of a replica. */
function viewOf(st: ReplicaState): ApplyView {
  return {
    account: st.account,
    document: st.document,
    heads: versionVectorOf(st),
    heldHash: (origin, seq) => st.logs.get(origin)?.[seq - 1]?.hash,
    evidence: (origin, seq) => new Set(st.evidence.get(origin)?.get(seq)?.keys()),
    evidenceCount: (origin) => {
      let n = 0;
      for (const ops of st.evidence.get(origin)?.values() ?? []) n += ops.size;
      return n;
    },
    digest: (origin) => digestOf(st, origin),
    pending: st.pending,
    ed25519: st.options.ed25519,
  };
}

// The digest of an origin's log as logDigests reports it, undefined when nothing of it is held.
function digestOf(st: ReplicaState, origin: string): string | undefined {
  const digest = st.digests.get(origin);
  if (digest === undefined || (st.logs.get(origin)?.length ?? 0) === 0) return undefined;
  return encodeHex(digest.subarray(0, 16));
}

/** Carries out a plan on a replica; returns the state keys whose winner changed. */
function carryOut(st: ReplicaState, plan: ApplyPlan): Set<string> {
  const changed = new Set<string>();
  // Evidence first: an entry without its op is the slot's holder before the batch, replaced below.
  for (const e of plan.evidence) {
    const op = e.op ?? st.logs.get(e.origin)?.[e.seq - 1]?.op;
    if (op === undefined) throw new Error(`plan keeps evidence of ${e.origin} seq ${e.seq}, which is not held`);
    let bySeq = st.evidence.get(e.origin);
    if (bySeq === undefined) st.evidence.set(e.origin, (bySeq = new Map()));
    let ops = bySeq.get(e.seq);
    if (ops === undefined) bySeq.set(e.seq, (ops = new Map()));
    ops.set(e.hash, op);
  }
  for (const next of plan.replace) {
    const log = st.logs.get(next.op.origin)!;
    const held = log[next.op.seq - 1]!;
    log[next.op.seq - 1] = next;
    toggleDigest(st, held);
    toggleDigest(st, next);
    // Only the keys of the two ops can change: recompute those, nothing else.
    if (indexRemove(st.index, held.op)) changed.add(stateKey(held.op));
    if (indexAdd(st.index, next.op)) changed.add(stateKey(next.op));
    st.maxLamport = Math.max(st.maxLamport, next.op.lamport);
  }
  for (const slot of plan.append) {
    let log = st.logs.get(slot.op.origin);
    if (log === undefined) st.logs.set(slot.op.origin, (log = []));
    if (slot.op.seq !== log.length + 1) throw new Error(`plan appends seq ${slot.op.seq} after ${log.length}`);
    log.push(slot);
    toggleDigest(st, slot);
    if (indexAdd(st.index, slot.op)) changed.add(stateKey(slot.op));
    st.maxLamport = Math.max(st.maxLamport, slot.op.lamport);
  }
  const document = st.document;
  st.pending.apply(plan.pending, (origin) => listsOrigin(document, origin));
  return changed;
}

function versionVectorOf(st: ReplicaState): VersionVector {
  const vv: VersionVector = {};
  for (const origin of [...st.logs.keys()].sort()) {
    const length = st.logs.get(origin)!.length;
    if (length > 0) vv[origin] = length;
  }
  return vv;
}

// XOR is its own inverse: the same call adds a slot's hash to its origin's digest and removes it.
function toggleDigest(st: ReplicaState, slot: Slot): void {
  let digest = st.digests.get(slot.op.origin);
  if (digest === undefined) {
    digest = new Uint8Array(32);
    st.digests.set(slot.op.origin, digest);
  }
  const hash = decodeHex(slot.hash);
  for (let i = 0; i < digest.length; i++) digest[i] = digest[i]! ^ hash[i]!;
}

function verifyDocument(document: unknown, account: string | undefined, options: ReplicaOptions): AccountDocument {
  try {
    return verifyAccountDocument(document, {
      ...options.ed25519,
      ...(account === undefined ? {} : { expectedServerName: account }),
    });
  } catch (error) {
    throw new DocumentRejectedError((error as Error).message, { cause: error });
  }
}

function wrap(state: ReplicaState): Replica {
  const handle: Replica = Object.freeze({ account: state.account });
  states.set(handle, state);
  return handle;
}

function read(replica: Replica): ReplicaState {
  const state = states.get(replica);
  if (state === undefined) throw new StaleReplicaError();
  return state;
}

function rewrap(old: Replica, state: ReplicaState): Replica {
  states.delete(old);
  return wrap(state);
}
