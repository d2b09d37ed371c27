// The materialized state: for each (namespace, key), the winner among the ops holding slots in the log (the
// greatest (lamport, origin, seq), or as winner.ts ranks a kind ranked by value). Kept incrementally: adding an
// op compares it with the current winner (recomputing the key when that cannot tell); removing one (equivocation
// slot change, revocation) recomputes that key only.
import { emptyState, OP_KINDS, putState, type AccountState, type StateRecords } from './kinds.js';
import { namespaceOf } from './op.js';
import type { Op } from './types.js';
import { nextWinner, ranksByValue, winnerOf } from './winner.js';

export type { AccountState } from './kinds.js';

/** Per-key index of ops and their winner; internal to the engine. */
export interface KeyIndex {
  readonly ops: Map<string, Set<Op>>;
  readonly winners: Map<string, Op>;
}

/** An empty key index. */
export function createKeyIndex(): KeyIndex {
  return { ops: new Map(), winners: new Map() };
}

/** The state key of an op: `<namespace>:<key>`, as reported in ApplyResult.changed. */
export function stateKey(op: Op): string {
  return `${namespaceOf(op.op)}:${op.key}`;
}

/** Adds an op that now holds a slot; returns true when its key's winner changed. */
export function indexAdd(index: KeyIndex, op: Op): boolean {
  const key = stateKey(op);
  let set = index.ops.get(key);
  if (set === undefined) {
    set = new Set();
    index.ops.set(key, set);
  }
  set.add(op);
  const winner = index.winners.get(key);
  const next = nextWinner(winner, op) ?? winnerOf(set)!;
  if (next === winner) return false;
  index.winners.set(key, next);
  return true;
}

/** Removes an op that lost its slot; recomputes its key if it was the winner. Returns true when the key's winner changed. */
export function indexRemove(index: KeyIndex, op: Op): boolean {
  const key = stateKey(op);
  const set = index.ops.get(key);
  if (set === undefined || !set.delete(op)) return false;
  const winner = index.winners.get(key);
  // Removing a tombstone that did not win can bring back a put it hid, in a kind ranked by value.
  if (winner !== op && !ranksByValue(op)) return false;
  const best = winnerOf(set);
  if (best === undefined) {
    index.winners.delete(key);
    index.ops.delete(key);
  } else {
    index.winners.set(key, best);
  }
  return best !== winner;
}

/** The plain-data state of a key index: each winner's body in the state field of its kind, unless it is a tombstone. */
export function materialize(index: KeyIndex): AccountState {
  const state: StateRecords<object> = emptyState();
  for (const key of [...index.winners.keys()].sort()) {
    const op = index.winners.get(key)!;
    const { field, tombstone } = OP_KINDS[op.op];
    // Copies, so callers can hold the state while the replica moves on.
    if (!tombstone) putState(state, field, op.key, structuredClone(op.body));
  }
  // Every body was checked by its kind's validator when the op was accepted.
  return state as AccountState;
}
