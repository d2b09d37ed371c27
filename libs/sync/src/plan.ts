// The apply rules of the CRDT, written once: planApply reads what a store holds of one account (an
// ApplyView) and a batch of untrusted ops, and says what to do, without doing it. The in-memory replica
// and the SQL store both carry out its plans and keep no apply logic of their own, so they cannot disagree.
// Pure and synchronous: no I/O, no clock, and the view is not changed (pending changes come back as a
// PendingChange for the store to apply).
//
// Per op, in order of cost (nothing is verified that the cheap checks refuse):
//   structure and caps -> origin against the document -> duplicate (by content hash) -> pending caps ->
//   signature, then a cross-signing key against the master key the document names -> append at the next seq (then drain what waited for it), hold as pending, or settle an
//   equivocation (the lower content hash holds the slot; the other op is kept as evidence, capped per origin).
import {
  decodeHex,
  encodeHex,
  homeStatus,
  revokedCutoff,
  type AccountDocument,
  type Ed25519Options,
} from '@polyhome/identity';
import { isAdopted } from './adopted.js';
import { MAX_EVIDENCE_PER_ORIGIN, MAX_OPS_PER_BATCH } from './constants.js';
import { OpRejectedError } from './errors.js';
import { opHashOfSigned } from './op.js';
import { PendingDraft, pendingBytes, type PendingBuffer, type PendingChange } from './pending.js';
import type { ApplyResult, Op, VersionVector } from './types.js';
import {
  checkCrossSigning,
  checkOrigin,
  parseEncodedOp,
  verifyEncodedOp,
  type EncodedOp,
  type OriginCheck,
} from './validate.js';

/** What the planner needs to know of one account, gathered by a store before it plans a batch. */
export interface ApplyView {
  /** The account's server name. */
  readonly account: string;
  /** The document in force. */
  readonly document: AccountDocument;
  /** Per origin, the highest gapless seq held (the version vector). */
  readonly heads: Readonly<VersionVector>;
  /**
   * The content hash (hex) of the op holding (origin, seq), for every slot at or below its head that
   * `slotsToRead` named. Undefined for a slot the store was not asked about (the planner then throws).
   */
  heldHash(origin: string, seq: number): string | undefined;
  /** Content hashes (hex) of the ops kept as evidence for (origin, seq), for the slots `slotsToRead` named. */
  evidence(origin: string, seq: number): ReadonlySet<string>;
  /** Ops kept as evidence for an origin, for the origins of the slots `slotsToRead` named. */
  evidenceCount(origin: string): number;
  /** The log digest of an origin as logDigests reports it (32 hex), undefined when nothing of it is held. */
  digest(origin: string): string | undefined;
  /** The account's pending ops (read, never changed, by the planner). */
  readonly pending: PendingBuffer;
  /** Ed25519 backend for signatures. */
  readonly ed25519?: Ed25519Options | undefined;
}

/** An op and its content hash (hex). */
export interface PlannedOp {
  readonly op: Op;
  readonly hash: string;
}

/** The holder of a slot: its op is undefined when the store held it before the batch (the planner knows its hash only). */
interface SlotHolder {
  readonly op: Op | undefined;
  readonly hash: string;
}

/**
 * An op to keep as equivocation evidence. `op` is undefined for the op the store held in that slot before
 * the batch (the `displaced` of a `replace` entry): the store has its content.
 */
export interface PlannedEvidence {
  readonly origin: string;
  readonly seq: number;
  readonly hash: string;
  readonly op: Op | undefined;
  /** True when it came in this batch, false when it was displaced from the slot. */
  readonly received: boolean;
}

/** What to do with one batch. Stores carry these out in one transaction, in the order listed here. */
export interface ApplyPlan {
  /** Ops that take the next free slot of their origin, in order (origin by origin, gapless). */
  append: PlannedOp[];
  /** Slots held before the batch that a lower-hash op now holds (`displaced`: the hash of the op that held it). */
  replace: Array<PlannedOp & { displaced: string }>;
  /** Ops to keep as equivocation evidence (never an op that holds a slot). */
  evidence: PlannedEvidence[];
  /** Changes to the pending buffer. */
  pending: PendingChange;
  /** The new head of every origin whose head moved. */
  heads: VersionVector;
  /** The report for the caller, as ApplyOps returns it (`changed` is left for the store: it knows the state). */
  result: ApplyResult;
}

/** Options of planApply. */
export interface PlanOptions {
  /**
   * Re-check every pending op against the document (after a newer one was accepted): ops it refuses are
   * released and refused, and ops it lets through are appended.
   */
  recheckPending?: boolean;
}

/** The slots (origin, seq) a store must read for the view before planning `inputs` (cheap: nothing is parsed). */
export function slotsToRead(
  heads: Readonly<VersionVector>,
  pending: PendingBuffer,
  inputs: readonly unknown[],
): Array<{ origin: string; seq: number }> {
  const out: Array<{ origin: string; seq: number }> = [];
  const seen = new Set<string>();
  if (!Array.isArray(inputs) || inputs.length > MAX_OPS_PER_BATCH) return out;
  for (const input of inputs) {
    if (typeof input !== 'object' || input === null) continue;
    const { origin, seq } = input as { origin?: unknown; seq?: unknown };
    if (typeof origin !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) continue;
    const head = Object.hasOwn(heads, origin) ? heads[origin]! : 0;
    if (seq > head && pending.get(origin, seq) === undefined) continue;
    const key = `${origin} ${seq}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ origin, seq });
  }
  return out;
}

/** The origins a newer document revokes below what is held: their ops above `cutoff` are retracted. */
export function retractions(
  heads: Readonly<VersionVector>,
  document: AccountDocument,
): Array<{ origin: string; cutoff: number }> {
  const out: Array<{ origin: string; cutoff: number }> = [];
  for (const [origin, entry] of Object.entries(document.revoked)) {
    const cutoff = revokedCutoff(entry);
    if (Object.hasOwn(heads, origin) && heads[origin]! > cutoff) out.push({ origin, cutoff });
  }
  return out.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0));
}

/** Whether a document lists an origin, as a home or as a revoked home (else its ops wait for a newer one). */
export function listsOrigin(document: AccountDocument, origin: string): boolean {
  return document.homes.some((h) => h.peer_id === origin) || Object.hasOwn(document.revoked, origin);
}

/** An empty ApplyResult. */
export function emptyApplyResult(): ApplyResult {
  return { accepted: [], rejected: [], pending: 0, equivocations: [], changed: [], dropped: 0 };
}

/** Plans a batch of untrusted ops against a view of one account. Pure: the view is left as it is. */
export function planApply(view: ApplyView, inputs: readonly unknown[], options: PlanOptions = {}): ApplyPlan {
  return new Planner(view).run(inputs, options);
}

class Planner {
  readonly plan: ApplyPlan = {
    append: [],
    replace: [],
    evidence: [],
    pending: { release: [], hold: [] },
    heads: {},
    result: emptyApplyResult(),
  };
  readonly draft: PendingDraft;
  /** Slots taken or replaced by this batch: origin -> seq -> the op now holding it. */
  readonly slots = new Map<string, Map<number, PlannedOp>>();
  /** Evidence added by this batch, per `${origin} ${seq}`, and per origin its count. */
  readonly newEvidence = new Map<string, Set<string>>();
  readonly newEvidenceCount = new Map<string, number>();
  readonly touched = new Set<string>();
  /** Per origin, the hashes this batch put into or took out of its log, for digestOf (computed when asked). */
  readonly toggles = new Map<string, string[]>();

  constructor(readonly view: ApplyView) {
    this.draft = new PendingDraft(view.pending);
  }

  run(inputs: readonly unknown[], options: PlanOptions): ApplyPlan {
    const result = this.plan.result;
    if (!Array.isArray(inputs) || inputs.length > MAX_OPS_PER_BATCH) {
      const count = Array.isArray(inputs) ? inputs.length : 0;
      for (const input of Array.isArray(inputs) ? inputs : [inputs]) {
        result.rejected.push({
          op: input,
          reason: 'too_large',
          detail: `batch of ${count} ops, at most ${MAX_OPS_PER_BATCH}`,
        });
      }
      return this.finish();
    }
    if (options.recheckPending) this.recheck();
    for (const input of inputs) this.offer(input);
    return this.finish();
  }

  finish(): ApplyPlan {
    // Ops left waiting at or below their origin's head: another instance on the same database took the slot.
    // If they differ from its holder, their sender sends them again and they are compared then.
    for (const origin of this.touched) {
      const head = this.head(origin);
      for (const entry of this.draft.ops(origin)) if (entry.op.seq <= head) this.draft.release(origin, entry.op.seq);
    }
    this.plan.pending = this.draft.change();
    this.plan.result.pending = this.draft.size;
    return this.plan;
  }

  head(origin: string): number {
    if (Object.hasOwn(this.plan.heads, origin)) return this.plan.heads[origin]!;
    return Object.hasOwn(this.view.heads, origin) ? this.view.heads[origin]! : 0;
  }

  isKnown = (origin: string): boolean => listsOrigin(this.view.document, origin);

  heldHash(origin: string, seq: number): string {
    const local = this.slots.get(origin)?.get(seq);
    if (local !== undefined) return local.hash;
    const hash = this.view.heldHash(origin, seq);
    if (hash === undefined) throw new Error(`the store's view lacks held slot ${origin} seq ${seq} (see slotsToRead)`);
    return hash;
  }

  hasEvidence(origin: string, seq: number, hash: string): boolean {
    return this.view.evidence(origin, seq).has(hash) || (this.newEvidence.get(`${origin} ${seq}`)?.has(hash) ?? false);
  }

  offer(input: unknown): void {
    const { view } = this;
    let encoded: EncodedOp;
    let origin: OriginCheck;
    try {
      encoded = parseEncodedOp(input, { account: view.account, userId: view.document.user_id });
      origin = checkOrigin(encoded.op, view.document);
    } catch (error) {
      return this.refuse(input, error);
    }
    const { op } = encoded;
    this.touched.add(op.origin);
    const hash = opHashOfSigned(encoded.signed);
    const head = this.head(op.origin);
    // Duplicates are recognised by content hash before any signature work: they are free.
    if (op.seq <= head) {
      const held = this.heldHash(op.origin, op.seq);
      if (held === hash) return this.duplicate(input, op, 'already held');
      if (homeStatus(view.document, op.origin).kind === 'revoked') return this.revokedRival(input, encoded, hash, held);
      if (this.hasEvidence(op.origin, op.seq, hash)) return this.duplicate(input, op, 'already kept as evidence');
      if (!this.verified(encoded, input)) return;
      return this.equivocateInLog({ op: own(op), hash }, held);
    }
    const waiting = this.draft.get(op.origin, op.seq);
    if (waiting !== undefined) {
      if (waiting.hash === hash) return this.duplicate(input, op, 'already pending');
      if (homeStatus(view.document, op.origin).kind === 'revoked') {
        return this.refuse(input, new OpRejectedError('revoked', `a revoked origin's seq ${op.seq} already waits`));
      }
      if (this.hasEvidence(op.origin, op.seq, hash)) return this.duplicate(input, op, 'already kept as evidence');
      if (!this.verified(encoded, input)) return;
      const newcomer = { op: own(op), hash };
      if (this.recordEquivocation(waiting, newcomer) !== newcomer) return;
      // The lower hash takes the slot; if it is larger than the budget has room for, the slot is emptied
      // and both are sent again later (the loser is evidence of an empty slot, so it is taken then).
      const bytes = pendingBytes(newcomer.op);
      this.draft.release(op.origin, op.seq);
      const full = this.draft.refusal(op.origin, bytes, this.isKnown);
      if (full !== undefined) return this.pendingFull(input, full);
      this.draft.hold({ ...newcomer, bytes });
      return;
    }
    if (origin === 'ok' && op.seq === head + 1) {
      if (!this.verified(encoded, input)) return;
      this.append({ op: own(op), hash });
      this.drain(op.origin);
      return;
    }
    const bytes = pendingBytes(op);
    const full = this.draft.refusal(op.origin, bytes, this.isKnown);
    if (full !== undefined) return this.pendingFull(input, full);
    if (!this.verified(encoded, input)) return;
    this.draft.hold({ op: own(op), hash, bytes });
  }

  pendingFull(input: unknown, detail: string): void {
    this.plan.result.rejected.push({ op: input, reason: 'pending_full', detail });
    this.plan.result.dropped = (this.plan.result.dropped ?? 0) + 1;
  }

  append(slot: PlannedOp): void {
    const { origin, seq } = slot.op;
    this.toggleDigest(origin, slot.hash);
    this.plan.append.push(slot);
    this.plan.heads[origin] = seq;
    this.plan.result.accepted.push(slot.op);
    let bySeq = this.slots.get(origin);
    if (bySeq === undefined) this.slots.set(origin, (bySeq = new Map()));
    bySeq.set(seq, slot);
  }

  // Moves pending ops into the log while the next seq of the origin waits and its origin is accepted.
  drain(origin: string): void {
    for (;;) {
      const seq = this.head(origin) + 1;
      const next = this.draft.get(origin, seq);
      if (next === undefined) return;
      let check: OriginCheck;
      try {
        check = checkOrigin(next.op, this.view.document);
        // It was checked against the document in force when it came; a newer one may name another master key.
        checkCrossSigning(next.op, this.view.document, this.view.ed25519);
      } catch (error) {
        this.draft.release(origin, seq);
        return this.refuse(next.op, error);
      }
      if (check !== 'ok') return;
      this.draft.release(origin, seq);
      this.append({ op: next.op, hash: next.hash });
    }
  }

  // After a newer document: pending ops it refuses go, and ops it lets through are appended.
  recheck(): void {
    for (const origin of this.draft.origins()) {
      this.touched.add(origin);
      for (const entry of this.draft.ops(origin)) {
        try {
          checkOrigin(entry.op, this.view.document);
        } catch (error) {
          this.draft.release(origin, entry.op.seq);
          this.refuse(entry.op, error);
        }
      }
      this.drain(origin);
    }
  }

  /**
   * Another version of a held slot of a revoked origin. Its log is frozen at revocation: the op holding the
   * slot stays, however low the newcomer's hash (a revoked key can still sign, and grind hashes). Only a
   * replica whose complete log (up to the cutoff) differs from the digest the revocation pinned takes it:
   * that replica held other versions than the remover did, and takes those it is sent until its log is the
   * pinned one (the remover's and every pinned replica's sessions send it their whole log on a digest mismatch).
   */
  revokedRival(input: unknown, encoded: EncodedOp, hash: string, heldHash: string): void {
    const { op } = encoded;
    const status = homeStatus(this.view.document, op.origin);
    if (status.kind !== 'revoked') throw new Error('revokedRival called for an origin that is not revoked');
    const pin = status.pinnedDigest;
    const complete = this.head(op.origin) === status.lastAcceptedSeq;
    if (pin === undefined || !complete || this.digestOf(op.origin) === pin) {
      const why =
        pin === undefined
          ? 'its revocation pins no digest'
          : complete
            ? 'the log held is the pinned one'
            : `the log is held up to seq ${this.head(op.origin)} of ${status.lastAcceptedSeq}`;
      return this.refuse(
        input,
        new OpRejectedError('revoked', `another version of seq ${op.seq} of a revoked origin (${why}): frozen`),
      );
    }
    if (!this.verified(encoded, input)) return;
    const bySeq = this.slots.get(op.origin);
    this.takeSlot({ op: own(op), hash }, bySeq?.get(op.seq)?.hash ?? heldHash, heldHash);
  }

  // The lower content hash holds the slot, so every replica that has seen both picks the same op.
  equivocateInLog(other: PlannedOp, heldHash: string): void {
    const { origin, seq } = other.op;
    const held: SlotHolder = this.slots.get(origin)?.get(seq) ?? { op: undefined, hash: heldHash };
    const winner = this.recordEquivocation(held, other);
    if (winner === held) return;
    this.takeSlot(other, held.hash, heldHash);
  }

  // `other` holds a slot from now on instead of the op with `current` (the holder before the batch: `before`).
  takeSlot(other: PlannedOp, current: string, before: string): void {
    const { origin, seq } = other.op;
    const bySeq = this.slots.get(origin) ?? new Map<number, PlannedOp>();
    this.toggleDigest(origin, current);
    this.toggleDigest(origin, other.hash);
    this.plan.result.accepted.push(other.op);
    bySeq.set(seq, other);
    this.slots.set(origin, bySeq);
    const appended = this.plan.append.findIndex((s) => s.op.origin === origin && s.op.seq === seq);
    if (appended >= 0) {
      this.plan.append[appended] = other;
      return;
    }
    const replaced = this.plan.replace.findIndex((s) => s.op.origin === origin && s.op.seq === seq);
    if (replaced >= 0) {
      this.plan.replace[replaced] = { ...other, displaced: this.plan.replace[replaced]!.displaced };
      return;
    }
    this.plan.replace.push({ ...other, displaced: before });
  }

  // The origin's log digest as this batch leaves it so far (the view's, with this batch's changes XORed in).
  digestOf(origin: string): string {
    const held = this.view.digest(origin);
    const digest = held === undefined ? new Uint8Array(16) : decodeHex(held);
    for (const hash of this.toggles.get(origin) ?? []) {
      const bytes = decodeHex(hash);
      for (let i = 0; i < digest.length; i++) digest[i] = digest[i]! ^ bytes[i]!;
    }
    return encodeHex(digest);
  }

  // XOR is its own inverse: the same call adds an op's hash to its origin's digest and takes it out.
  toggleDigest(origin: string, hash: string): void {
    const toggles = this.toggles.get(origin);
    if (toggles === undefined) this.toggles.set(origin, [hash]);
    else toggles.push(hash);
  }

  // Reports the equivocation, keeps the loser as evidence (capped per origin), returns the winner.
  recordEquivocation(held: SlotHolder, other: PlannedOp): SlotHolder {
    const winner = other.hash < held.hash ? other : held;
    const loser = winner === other ? held : other;
    const { origin, seq } = other.op;
    this.plan.result.equivocations.push({ origin, seq, held: winner.hash, other: loser.hash });
    const kept = this.view.evidenceCount(origin) + (this.newEvidenceCount.get(origin) ?? 0);
    if (!this.hasEvidence(origin, seq, loser.hash) && kept < MAX_EVIDENCE_PER_ORIGIN) {
      this.plan.evidence.push({ origin, seq, hash: loser.hash, op: loser.op, received: loser === other });
      const key = `${origin} ${seq}`;
      const set = this.newEvidence.get(key) ?? new Set<string>();
      set.add(loser.hash);
      this.newEvidence.set(key, set);
      this.newEvidenceCount.set(origin, (this.newEvidenceCount.get(origin) ?? 0) + 1);
    }
    return winner;
  }

  verified(encoded: EncodedOp, input: unknown): boolean {
    try {
      verifyEncodedOp(encoded, this.view.ed25519);
      checkCrossSigning(encoded.op, this.view.document, this.view.ed25519);
      return true;
    } catch (error) {
      this.refuse(input, error);
      return false;
    }
  }

  refuse(input: unknown, error: unknown): void {
    if (!(error instanceof OpRejectedError)) throw error;
    this.plan.result.rejected.push({ op: input, reason: error.reason, detail: error.detail });
  }

  duplicate(input: unknown, op: Op, where: string): void {
    this.plan.result.rejected.push({ op: input, reason: 'duplicate', detail: `${where}: ${op.origin} seq ${op.seq}` });
  }
}

// A private deep copy, frozen: the caller keeps its input object, and ops handed out can be shared. An op its
// owner handed over (adoptOps) is deep-frozen already, and is kept as it is.
function own(op: Op): Op {
  if (isAdopted(op)) return op;
  return deepFreeze(structuredClone(op));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
