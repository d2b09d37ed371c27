// The one buffer of ops that wait, for one account: ops ahead of a gap in their origin's log, and ops of an
// origin the document in force does not list yet (they name a newer document). Both stores hold their
// pending ops in it, so the caps are enforced in one place:
// - per origin (MAX_PENDING_PER_ORIGIN),
// - per account (MAX_PENDING_TOTAL),
// - origins the document does not know (MAX_PENDING_UNKNOWN_ORIGINS),
// - and across every account of a store (a PendingBudget shared by its buffers: ops and bytes), so a store
//   serving many accounts in one process holds a bounded amount of memory whatever its peers send.
// Nothing held here was accepted: its sender's acknowledged vector does not cover it, so an op refused
// for a full buffer (`pending_full`) is sent again later and nothing accepted is lost.
import {
  MAX_PENDING_PER_ORIGIN,
  MAX_PENDING_STORE_BYTES,
  MAX_PENDING_STORE_OPS,
  MAX_PENDING_TOTAL,
  MAX_PENDING_UNKNOWN_ORIGINS,
} from './constants.js';
import type { Op } from './types.js';

/** An op waiting in a pending buffer, with its content hash (hex) and its size as counted by the budget. */
export interface PendingOp {
  readonly op: Op;
  readonly hash: string;
  /** Bytes of its JSON encoding, counted against the store's budget. */
  readonly bytes: number;
}

/** The caps of one account's buffer. */
export interface PendingLimits {
  perOrigin: number;
  total: number;
  unknownOrigins: number;
}

/** The default caps, from constants.ts. */
export const DEFAULT_PENDING_LIMITS: Readonly<PendingLimits> = Object.freeze({
  perOrigin: MAX_PENDING_PER_ORIGIN,
  total: MAX_PENDING_TOTAL,
  unknownOrigins: MAX_PENDING_UNKNOWN_ORIGINS,
});

function checkLimit(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a whole number of at least 1, got ${String(value)}`);
  }
}

/** The size of an op as a pending buffer counts it. */
export function pendingBytes(op: Op): number {
  return JSON.stringify(op).length;
}

/**
 * What the buffers of one store may hold together, in ops and in bytes. The SQL store makes one per store
 * (production runs one store per process), so the bound is process-wide; pass one to several stores to
 * share it.
 */
export class PendingBudget {
  #ops = 0;
  #bytes = 0;

  /** Throws RangeError unless both bounds are whole numbers of at least 1. */
  constructor(
    readonly maxOps: number = MAX_PENDING_STORE_OPS,
    readonly maxBytes: number = MAX_PENDING_STORE_BYTES,
  ) {
    checkLimit('PendingBudget maxOps', maxOps);
    checkLimit('PendingBudget maxBytes', maxBytes);
  }

  /** Ops held by every buffer on this budget. */
  get ops(): number {
    return this.#ops;
  }

  /** Bytes held by every buffer on this budget. */
  get bytes(): number {
    return this.#bytes;
  }

  /** @internal Moves the counts by a buffer's change (negative to release). */
  charge(ops: number, bytes: number): void {
    this.#ops += ops;
    this.#bytes += bytes;
  }
}

/** What a buffer (or a draft of one) answers about itself; what the cap rule reads. */
export interface PendingReader {
  /** The op waiting for (origin, seq), if any. */
  get(origin: string, seq: number): PendingOp | undefined;
  /** Ops waiting for one origin. */
  count(origin: string): number;
  /** Ops waiting in this buffer. */
  readonly size: number;
  /** Origins with ops waiting, sorted. */
  origins(): string[];
  /** The ops of one origin, in seq order. */
  ops(origin: string): PendingOp[];
}

/**
 * Why one more op of `origin` cannot be held now, or undefined when it can: the one cap rule, used by the
 * planner while it plans a batch and by the buffer when the plan is carried out.
 */
export function pendingRefusal(
  reader: PendingReader,
  limits: PendingLimits,
  budget: { ops: number; bytes: number; maxOps: number; maxBytes: number } | undefined,
  origin: string,
  bytes: number,
  isKnown: (origin: string) => boolean,
): string | undefined {
  const count = reader.count(origin);
  if (count >= limits.perOrigin) return `${count} ops of ${origin} already wait (at most ${limits.perOrigin})`;
  if (reader.size >= limits.total) return `${reader.size} ops of the account already wait (at most ${limits.total})`;
  if (count === 0 && !isKnown(origin)) {
    const unknown = reader.origins().filter((o) => !isKnown(o)).length;
    if (unknown >= limits.unknownOrigins) {
      return `ops of ${unknown} origins the document does not list already wait (at most ${limits.unknownOrigins})`;
    }
  }
  if (budget !== undefined) {
    if (budget.ops >= budget.maxOps) return `the store holds ${budget.ops} waiting ops (at most ${budget.maxOps})`;
    if (budget.bytes + bytes > budget.maxBytes) {
      return `the store holds ${budget.bytes} bytes of waiting ops (at most ${budget.maxBytes})`;
    }
  }
  return undefined;
}

/** Changes to a pending buffer, as a plan lists them: releases first, then holds. */
export interface PendingChange {
  /** Slots to empty (their op was appended, refused, or lost an equivocation). */
  release: Array<{ origin: string; seq: number }>;
  /** Ops to hold (a slot already held is replaced: the lower hash of an equivocation). */
  hold: PendingOp[];
}

/** The pending ops of one account. */
export class PendingBuffer implements PendingReader {
  readonly #byOrigin = new Map<string, Map<number, PendingOp>>();
  #size = 0;

  /** Throws RangeError unless every limit is a whole number of at least 1. */
  constructor(
    readonly limits: Readonly<PendingLimits> = DEFAULT_PENDING_LIMITS,
    readonly budget?: PendingBudget,
  ) {
    for (const name of ['perOrigin', 'total', 'unknownOrigins'] as const) {
      checkLimit(`pending limit ${name}`, limits[name]);
    }
  }

  get size(): number {
    return this.#size;
  }

  get(origin: string, seq: number): PendingOp | undefined {
    return this.#byOrigin.get(origin)?.get(seq);
  }

  count(origin: string): number {
    return this.#byOrigin.get(origin)?.size ?? 0;
  }

  origins(): string[] {
    return [...this.#byOrigin.keys()].sort();
  }

  ops(origin: string): PendingOp[] {
    return [...(this.#byOrigin.get(origin)?.values() ?? [])].sort((a, b) => a.op.seq - b.op.seq);
  }

  /** Why one more op of `origin` cannot be held now (see pendingRefusal), or undefined. */
  refusal(origin: string, bytes: number, isKnown: (origin: string) => boolean): string | undefined {
    return pendingRefusal(this, this.limits, this.budget, origin, bytes, isKnown);
  }

  /**
   * Carries out a plan's change; returns a function that undoes it (when the rest of the plan fails to be
   * written). Throws (changing nothing) when a hold would break a cap: the plan was made on another state
   * of the buffer, a programming error.
   */
  apply(change: PendingChange, isKnown: (origin: string) => boolean): () => void {
    const undo: Array<() => void> = [];
    try {
      for (const { origin, seq } of change.release) {
        const entry = this.get(origin, seq);
        if (entry === undefined) continue;
        this.#remove(entry);
        undo.push(() => this.#add(entry));
      }
      for (const entry of change.hold) {
        const held = this.get(entry.op.origin, entry.op.seq);
        if (held !== undefined) {
          this.#remove(held);
          undo.push(() => this.#add(held));
        }
        const why = this.refusal(entry.op.origin, entry.bytes, isKnown);
        if (why !== undefined) throw new RangeError(`pending buffer: the plan breaks a cap: ${why}`);
        this.#add(entry);
        undo.push(() => this.#remove(entry));
      }
    } catch (error) {
      for (const step of undo.reverse()) step();
      throw error;
    }
    return () => {
      for (const step of undo.reverse()) step();
    };
  }

  /** Removes every op (releasing their share of the budget). */
  clear(): void {
    for (const origin of [...this.#byOrigin.keys()]) for (const entry of this.ops(origin)) this.#remove(entry);
  }

  /** An independent copy with the same limits, on its own budget (a copy's ops are counted once each). */
  clone(): PendingBuffer {
    const copy = new PendingBuffer(this.limits);
    for (const bySeq of this.#byOrigin.values()) for (const entry of bySeq.values()) copy.#add(entry);
    return copy;
  }

  #add(entry: PendingOp): void {
    let bySeq = this.#byOrigin.get(entry.op.origin);
    if (bySeq === undefined) this.#byOrigin.set(entry.op.origin, (bySeq = new Map()));
    bySeq.set(entry.op.seq, entry);
    this.#size += 1;
    this.budget?.charge(1, entry.bytes);
  }

  #remove(entry: PendingOp): void {
    const bySeq = this.#byOrigin.get(entry.op.origin);
    if (bySeq?.get(entry.op.seq) !== entry) return;
    bySeq.delete(entry.op.seq);
    if (bySeq.size === 0) this.#byOrigin.delete(entry.op.origin);
    this.#size -= 1;
    this.budget?.charge(-1, -entry.bytes);
  }
}

/**
 * A buffer as a plan in progress sees it: the buffer plus the plan's own changes, without touching the
 * buffer. The planner holds and releases through it, and hands `change()` to the store.
 */
export class PendingDraft implements PendingReader {
  readonly #added = new Map<string, Map<number, PendingOp>>();
  readonly #released = new Map<string, Set<number>>();
  #size: number;
  #bytes = 0;

  constructor(readonly base: PendingBuffer) {
    this.#size = base.size;
  }

  get size(): number {
    return this.#size;
  }

  get(origin: string, seq: number): PendingOp | undefined {
    const added = this.#added.get(origin)?.get(seq);
    if (added !== undefined) return added;
    return this.#released.get(origin)?.has(seq) ? undefined : this.base.get(origin, seq);
  }

  count(origin: string): number {
    return this.base.count(origin) - (this.#released.get(origin)?.size ?? 0) + (this.#added.get(origin)?.size ?? 0);
  }

  origins(): string[] {
    const all = new Set([...this.base.origins(), ...this.#added.keys()]);
    return [...all].filter((o) => this.count(o) > 0).sort();
  }

  ops(origin: string): PendingOp[] {
    const out = this.base.ops(origin).filter((e) => this.get(origin, e.op.seq) === e);
    out.push(...(this.#added.get(origin)?.values() ?? []));
    return out.sort((a, b) => a.op.seq - b.op.seq);
  }

  /** Why one more op of `origin` cannot be held (budget: the base's, moved by this draft's changes). */
  refusal(origin: string, bytes: number, isKnown: (origin: string) => boolean): string | undefined {
    const budget = this.base.budget;
    const moved =
      budget === undefined
        ? undefined
        : {
            ops: budget.ops + this.#size - this.base.size,
            bytes: budget.bytes + this.#bytes,
            maxOps: budget.maxOps,
            maxBytes: budget.maxBytes,
          };
    return pendingRefusal(this, this.base.limits, moved, origin, bytes, isKnown);
  }

  /** Holds an op (replacing whatever the draft holds for its slot). */
  hold(entry: PendingOp): void {
    this.release(entry.op.origin, entry.op.seq);
    let bySeq = this.#added.get(entry.op.origin);
    if (bySeq === undefined) this.#added.set(entry.op.origin, (bySeq = new Map()));
    bySeq.set(entry.op.seq, entry);
    this.#size += 1;
    this.#bytes += entry.bytes;
  }

  /** Empties a slot. */
  release(origin: string, seq: number): void {
    const added = this.#added.get(origin)?.get(seq);
    if (added !== undefined) {
      this.#added.get(origin)!.delete(seq);
      if (this.#added.get(origin)!.size === 0) this.#added.delete(origin);
      this.#size -= 1;
      this.#bytes -= added.bytes;
      return;
    }
    const held = this.base.get(origin, seq);
    if (held === undefined || this.#released.get(origin)?.has(seq)) return;
    let seqs = this.#released.get(origin);
    if (seqs === undefined) this.#released.set(origin, (seqs = new Set()));
    seqs.add(seq);
    this.#size -= 1;
    this.#bytes -= held.bytes;
  }

  /** The draft's changes, for PendingBuffer.apply. */
  change(): PendingChange {
    const release: PendingChange['release'] = [];
    for (const [origin, seqs] of this.#released) for (const seq of seqs) release.push({ origin, seq });
    const hold: PendingOp[] = [];
    for (const bySeq of this.#added.values()) hold.push(...bySeq.values());
    return { release, hold };
  }
}
