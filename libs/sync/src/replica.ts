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
import {
  MAX_EVIDENCE_PER_ORIGIN,
  MAX_OPS_PER_BATCH,
  MAX_PENDING_PER_ORIGIN,
  MAX_PENDING_TOTAL,
  MAX_PENDING_UNKNOWN_ORIGINS,
} from './constants.js';
import { DocumentRejectedError, OpRejectedError, StaleReplicaError } from './errors.js';
import { createOp, opHash } from './op.js';
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
import { accountOf, checkOrigin, parseOp, verifyOpSignature, type OriginCheck } from './validate.js';

/** An opaque handle on one account's replica; pass it to the functions of this module. */
export interface Replica {
  /** The account's server name. */
  readonly account: string;
}

/** Options of a replica. */
export interface ReplicaOptions {
  /** Ed25519 backend for verifying ops and documents (tests pin one; production uses the default). */
  ed25519?: Ed25519Options;
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
  readonly pending: Map<string, Map<number, Slot>>;
  pendingTotal: number;
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
    pending: new Map(),
    pendingTotal: 0,
    evidence: new Map(),
    index: createKeyIndex(),
    digests: new Map(),
    maxLamport: 0,
    options,
  });
}

/**
 * Validates and applies a batch of untrusted ops. Each op is accepted, held as pending, reported as an
 * equivocation, dropped (pending full) or refused with a reason; never half-applied. Batches larger than
 * MAX_OPS_PER_BATCH are refused whole. Returns the new replica handle (the old one is outdated).
 */
export function applyOps(replica: Replica, inputs: readonly unknown[]): [Replica, ApplyResult] {
  const st = read(replica);
  const result = emptyResult();
  if (!Array.isArray(inputs) || inputs.length > MAX_OPS_PER_BATCH) {
    const count = Array.isArray(inputs) ? inputs.length : 0;
    for (const input of Array.isArray(inputs) ? inputs : [inputs]) {
      result.rejected.push({
        op: input,
        reason: 'too_large',
        detail: `batch of ${count} ops, at most ${MAX_OPS_PER_BATCH}`,
      });
    }
    return [replica, result];
  }
  const changed = new Set<string>();
  for (const input of inputs) offer(st, input, result, changed);
  result.changed = [...changed].sort();
  return [rewrap(replica, st), result];
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
  const applied = emptyResult();
  if (choice.kind !== 'accept') return [replica, { choice, retracted: [], applied }];
  st.document = choice.document;
  const changed = new Set<string>();
  const retracted: Op[] = [];
  for (const [origin, cutoff] of Object.entries(st.document.revoked)) {
    const log = st.logs.get(origin);
    if (log === undefined || log.length <= cutoff) continue;
    for (const slot of log.splice(cutoff)) {
      toggleDigest(st, slot);
      if (indexRemove(st.index, slot.op)) changed.add(stateKey(slot.op));
      retracted.push(slot.op);
    }
    if (log.length === 0) st.logs.delete(origin);
  }
  for (const [origin, waiting] of [...st.pending]) {
    for (const [seq, slot] of [...waiting]) {
      try {
        checkOrigin(slot.op, st.document);
      } catch (error) {
        if (!(error instanceof OpRejectedError)) throw error;
        removePending(st, origin, seq);
        applied.rejected.push({ op: slot.op, reason: error.reason, detail: error.detail });
      }
    }
    drain(st, origin, applied, changed);
  }
  applied.changed = [...changed].sort();
  return [rewrap(replica, st), { choice, retracted, applied }];
}

/** The account document in force. */
export function documentOf(replica: Replica): AccountDocument {
  return read(replica).document;
}

/** What this replica holds: origin -> highest gapless seq (origins with nothing held are left out). */
export function versionVector(replica: Replica): VersionVector {
  const st = read(replica);
  const vv: VersionVector = {};
  for (const origin of [...st.logs.keys()].sort()) {
    const length = st.logs.get(origin)!.length;
    if (length > 0) vv[origin] = length;
  }
  return vv;
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
    const digest = st.digests.get(origin);
    if (digest !== undefined && (st.logs.get(origin)?.length ?? 0) > 0) out[origin] = encodeHex(digest.subarray(0, 16));
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
  return read(replica).pendingTotal;
}

/** Origins seen signing two different ops with one seq, sorted: their owner should revoke them. */
export function flaggedOrigins(replica: Replica): string[] {
  return [...read(replica).evidence.keys()].sort();
}

/** All equivocation evidence held, ordered by origin then seq; the op holding the slot comes first. */
export function evidenceOf(replica: Replica): Evidence[] {
  const st = read(replica);
  const out: Evidence[] = [];
  for (const origin of [...st.evidence.keys()].sort()) {
    const bySeq = st.evidence.get(origin)!;
    for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) {
      const ops = [...bySeq.get(seq)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, op]) => op);
      out.push({ origin, seq, ops });
    }
  }
  return out;
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
    pending: new Map([...st.pending].map(([o, m]) => [o, new Map(m)])),
    pendingTotal: st.pendingTotal,
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

function offer(st: ReplicaState, input: unknown, result: ApplyResult, changed: Set<string>): void {
  let op: Op;
  let origin: OriginCheck;
  try {
    op = parseOp(input, { account: st.account, userId: st.document.user_id });
    origin = checkOrigin(op, st.document);
  } catch (error) {
    if (error instanceof OpRejectedError) return refuse(result, input, error);
    throw error;
  }
  const hash = opHash(op);
  const log = st.logs.get(op.origin);
  const head = log?.length ?? 0;
  // Duplicates are recognised by content hash before any signature work: they are free.
  if (log !== undefined && op.seq <= head) {
    const held = log[op.seq - 1]!;
    if (held.hash === hash) return refuse(result, input, duplicate(op, 'already held'));
    if (!verified(st, op, input, result)) return;
    equivocateInLog(st, log, held, { op: own(op), hash }, result, changed);
    return;
  }
  const waiting = st.pending.get(op.origin);
  const waitingSlot = waiting?.get(op.seq);
  if (waitingSlot !== undefined && waitingSlot.hash === hash) {
    return refuse(result, input, duplicate(op, 'already pending'));
  }
  if (!verified(st, op, input, result)) return;
  const slot = { op: own(op), hash };
  if (waiting !== undefined && waitingSlot !== undefined) {
    const winner = recordEquivocation(st, waitingSlot, slot, result);
    if (winner === slot) waiting.set(op.seq, slot);
    return;
  }
  if (origin === 'ok' && op.seq === head + 1) {
    append(st, slot, result, changed);
    drain(st, op.origin, result, changed);
    return;
  }
  hold(st, slot, origin, result);
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

function verified(st: ReplicaState, op: Op, input: unknown, result: ApplyResult): boolean {
  try {
    verifyOpSignature(op, st.options.ed25519);
    return true;
  } catch (error) {
    if (error instanceof OpRejectedError) {
      refuse(result, input, error);
      return false;
    }
    throw error;
  }
}

function append(st: ReplicaState, slot: Slot, result: ApplyResult, changed: Set<string>): void {
  let log = st.logs.get(slot.op.origin);
  if (log === undefined) {
    log = [];
    st.logs.set(slot.op.origin, log);
  }
  log.push(slot);
  toggleDigest(st, slot);
  if (indexAdd(st.index, slot.op)) changed.add(stateKey(slot.op));
  st.maxLamport = Math.max(st.maxLamport, slot.op.lamport);
  result.accepted.push(slot.op);
}

// Moves pending ops into the log while the next seq of the origin is waiting and its origin is accepted.
function drain(st: ReplicaState, origin: string, result: ApplyResult, changed: Set<string>): void {
  const waiting = st.pending.get(origin);
  if (waiting === undefined) return;
  for (;;) {
    const seq = (st.logs.get(origin)?.length ?? 0) + 1;
    const next = waiting.get(seq);
    if (next === undefined) return;
    let check: OriginCheck;
    try {
      check = checkOrigin(next.op, st.document);
    } catch (error) {
      if (!(error instanceof OpRejectedError)) throw error;
      removePending(st, origin, seq);
      result.rejected.push({ op: next.op, reason: error.reason, detail: error.detail });
      return;
    }
    if (check !== 'ok') return;
    removePending(st, origin, seq);
    append(st, next, result, changed);
  }
}

function hold(st: ReplicaState, slot: Slot, origin: OriginCheck, result: ApplyResult): void {
  let waiting = st.pending.get(slot.op.origin);
  if (waiting === undefined) {
    if (origin === 'wait_for_document' && unknownPendingOrigins(st) >= MAX_PENDING_UNKNOWN_ORIGINS) {
      result.dropped = (result.dropped ?? 0) + 1;
      return;
    }
    waiting = new Map();
    st.pending.set(slot.op.origin, waiting);
  }
  if (waiting.size >= MAX_PENDING_PER_ORIGIN || st.pendingTotal >= MAX_PENDING_TOTAL) {
    // Safe to drop: the sender's acked vector does not cover this op, so it is sent again later.
    if (waiting.size === 0) st.pending.delete(slot.op.origin);
    result.dropped = (result.dropped ?? 0) + 1;
    return;
  }
  waiting.set(slot.op.seq, slot);
  st.pendingTotal += 1;
  result.pending += 1;
}

function removePending(st: ReplicaState, origin: string, seq: number): void {
  const waiting = st.pending.get(origin);
  if (waiting === undefined || !waiting.delete(seq)) return;
  st.pendingTotal -= 1;
  if (waiting.size === 0) st.pending.delete(origin);
}

function unknownPendingOrigins(st: ReplicaState): number {
  let count = 0;
  for (const origin of st.pending.keys()) {
    if (!st.document.homes.some((h) => h.peer_id === origin) && !Object.hasOwn(st.document.revoked, origin)) count++;
  }
  return count;
}

// The lower content hash holds the slot, so every replica that has seen both picks the same op.
function equivocateInLog(
  st: ReplicaState,
  log: Slot[],
  held: Slot,
  other: Slot,
  result: ApplyResult,
  changed: Set<string>,
): void {
  const winner = recordEquivocation(st, held, other, result);
  if (winner === held) return;
  log[other.op.seq - 1] = other;
  toggleDigest(st, held);
  toggleDigest(st, other);
  // Only the keys of the two ops can change: recompute those, nothing else.
  if (indexRemove(st.index, held.op)) changed.add(stateKey(held.op));
  if (indexAdd(st.index, other.op)) changed.add(stateKey(other.op));
  st.maxLamport = Math.max(st.maxLamport, other.op.lamport);
  result.accepted.push(other.op);
}

function recordEquivocation(st: ReplicaState, held: Slot, other: Slot, result: ApplyResult): Slot {
  const origin = held.op.origin;
  const seq = held.op.seq;
  let bySeq = st.evidence.get(origin);
  if (bySeq === undefined) {
    bySeq = new Map();
    st.evidence.set(origin, bySeq);
  }
  let kept = 0;
  for (const ops of bySeq.values()) kept += ops.size;
  let ops = bySeq.get(seq);
  if (ops === undefined) {
    ops = new Map();
    bySeq.set(seq, ops);
  }
  for (const slot of [held, other]) {
    if (!ops.has(slot.hash) && kept < MAX_EVIDENCE_PER_ORIGIN) {
      ops.set(slot.hash, slot.op);
      kept++;
    }
  }
  const winner = other.hash < held.hash ? other : held;
  const loser = winner === other ? held : other;
  result.equivocations.push({ origin, seq, held: winner.hash, other: loser.hash });
  return winner;
}

function refuse(result: ApplyResult, input: unknown, error: OpRejectedError): void {
  result.rejected.push({ op: input, reason: error.reason, detail: error.detail });
}

function duplicate(op: Op, where: string): OpRejectedError {
  return new OpRejectedError('duplicate', `${where}: ${op.origin} seq ${op.seq}`);
}

// A private deep copy, frozen: the caller keeps its input object, and ops handed out can be shared.
function own(op: Op): Op {
  return deepFreeze(structuredClone(op));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
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

function emptyResult(): ApplyResult {
  return { accepted: [], rejected: [], pending: 0, equivocations: [], changed: [], dropped: 0 };
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
