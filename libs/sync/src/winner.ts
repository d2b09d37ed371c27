// Which op of a key the state holds. For most kinds, the last write: the greatest (lamport, origin, seq).
// A kind may rank its puts by value instead (`prefer` in the registry: key backup keeps the better session key,
// whatever order the uploads were made or arrive in). Then a key's winner is a function of the set of its ops:
// the greatest tombstone T (by op order) hides every put before it; among the puts after T the one its kind
// prefers wins, ties to the greater op; with no put after T, T wins. Every home holding the same ops holds the
// same winner, in whatever order they came.
import { OP_KINDS, type OpKindSpec } from './kinds.js';
import { compareOps } from './op.js';
import type { Op } from './types.js';

/** The ranking of a put kind, or undefined when its ops compete by op order only. */
function preferOf(op: Op): OpKindSpec['prefer'] {
  return (OP_KINDS[op.op] as OpKindSpec).prefer;
}

/** > 0 when put `a` beats put `b` (both after the key's greatest tombstone). */
function comparePuts(a: Op, b: Op): number {
  const prefer = preferOf(a);
  const byValue = prefer === undefined || a.op !== b.op ? 0 : prefer(a.body, b.body);
  return byValue !== 0 ? byValue : compareOps(a, b);
}

const RANKED: ReadonlySet<string> = new Set(
  Object.values(OP_KINDS as Record<string, OpKindSpec>)
    .filter((spec) => spec.prefer !== undefined)
    .map((spec) => spec.namespace),
);

/** True when the namespace of `op` ranks puts by value (its winner is not simply the greatest op). */
export function ranksByValue(op: Op): boolean {
  return RANKED.has(OP_KINDS[op.op].namespace);
}

/** The winner of a key among the ops holding its slots (undefined for none). */
export function winnerOf(ops: Iterable<Op>): Op | undefined {
  const all = [...ops];
  if (all.length === 0) return undefined;
  if (!ranksByValue(all[0]!)) {
    let best: Op | undefined;
    for (const op of all) if (best === undefined || compareOps(op, best) > 0) best = op;
    return best;
  }
  let tombstone: Op | undefined;
  for (const op of all) {
    if (OP_KINDS[op.op].tombstone && (tombstone === undefined || compareOps(op, tombstone) > 0)) tombstone = op;
  }
  let best: Op | undefined;
  for (const op of all) {
    if (OP_KINDS[op.op].tombstone || (tombstone !== undefined && compareOps(op, tombstone) <= 0)) continue;
    if (best === undefined || comparePuts(op, best) > 0) best = op;
  }
  return best ?? tombstone;
}

/**
 * The winner after `op` joins a key whose winner was `held`, from the two alone; `undefined` when that cannot
 * be told without the key's other ops (then `winnerOf` over all of them decides). Only a kind ranked by value
 * ever needs the others: a better put older than the winner (is it hidden by a tombstone?), or a tombstone
 * newer than the winning put (which of the puts after it wins?).
 */
export function nextWinner(held: Op | undefined, op: Op): Op | undefined {
  if (held === undefined) return op;
  if (!ranksByValue(op)) return compareOps(op, held) > 0 ? op : held;
  const newer = compareOps(op, held) > 0;
  const heldTombstone = OP_KINDS[held.op].tombstone;
  if (OP_KINDS[op.op].tombstone) {
    // A tombstone older than the winning put hides nothing the winner does not beat already.
    if (heldTombstone) return newer ? op : held;
    return newer ? undefined : held;
  }
  // The winner is a tombstone: no put follows it, so the put wins only when newer.
  if (heldTombstone) return newer ? op : held;
  // A newer put is after every tombstone the winner is after: the better of the two wins.
  if (newer) return comparePuts(op, held) > 0 ? op : held;
  return comparePuts(op, held) > 0 ? undefined : held;
}
