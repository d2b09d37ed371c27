// The materialized state: for each (namespace, key), the op with the greatest (lamport, origin, seq)
// among the ops holding slots in the log. Kept incrementally: adding an op compares it with the current
// winner; removing one (equivocation slot change, revocation) recomputes that key only.
import { compareOps, namespaceOf } from './op.js';
import type { CrossSigningBody, DeviceBody, MemberBody, Op } from './types.js';

/** Per-key index of ops and their winner; internal to the engine. */
export interface KeyIndex {
  readonly ops: Map<string, Set<Op>>;
  readonly winners: Map<string, Op>;
}

/** The replicated state of an account as plain data: what Matrix APIs serve. Keys are sorted. */
export interface AccountState {
  /** Devices that exist (a winning `device.delete` hides the device). */
  devices: Record<string, DeviceBody>;
  /** Room id -> the winning `member.set` body. */
  memberships: Record<string, MemberBody>;
  /** Usage (`master`, `self_signing`, `user_signing`) -> the Matrix CrossSigningKey. */
  crossSigning: Record<string, CrossSigningBody>;
}

/** An empty key index. */
export function createKeyIndex(): KeyIndex {
  return { ops: new Map(), winners: new Map() };
}

/** The state key of an op: `<namespace>:<key>`, as reported in ApplyResult.changed. */
export function stateKey(op: Op): string {
  return `${namespaceOf(op.op)}:${op.key}`;
}

/** Adds an op that now holds a slot; returns true when it became its key's winner. */
export function indexAdd(index: KeyIndex, op: Op): boolean {
  const key = stateKey(op);
  let set = index.ops.get(key);
  if (set === undefined) {
    set = new Set();
    index.ops.set(key, set);
  }
  set.add(op);
  const winner = index.winners.get(key);
  if (winner === undefined || compareOps(op, winner) > 0) {
    index.winners.set(key, op);
    return true;
  }
  return false;
}

/** Removes an op that lost its slot; recomputes its key if it was the winner. Returns true when the key's winner changed. */
export function indexRemove(index: KeyIndex, op: Op): boolean {
  const key = stateKey(op);
  const set = index.ops.get(key);
  if (set === undefined || !set.delete(op)) return false;
  if (index.winners.get(key) !== op) return false;
  let best: Op | undefined;
  for (const candidate of set) if (best === undefined || compareOps(candidate, best) > 0) best = candidate;
  if (best === undefined) {
    index.winners.delete(key);
    index.ops.delete(key);
  } else {
    index.winners.set(key, best);
  }
  return true;
}

/** The plain-data state of a key index. */
export function materialize(index: KeyIndex): AccountState {
  const state: AccountState = { devices: {}, memberships: {}, crossSigning: {} };
  const keys = [...index.winners.keys()].sort();
  for (const key of keys) {
    const op = index.winners.get(key)!;
    // Copies, so callers can hold the state while the replica moves on.
    const body = structuredClone(op.body);
    switch (op.op) {
      case 'device.put':
        put(state.devices, op.key, body as unknown as DeviceBody);
        break;
      case 'device.delete':
        break;
      case 'member.set':
        put(state.memberships, op.key, body as unknown as MemberBody);
        break;
      case 'cross_signing.put':
        put(state.crossSigning, op.key, body as unknown as CrossSigningBody);
        break;
    }
  }
  return state;
}

// Keys are chosen by clients (device ids): "__proto__" must stay a key, not change the prototype.
function put<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
