import { describe, expect, it } from 'vitest';
import { opHash } from './op.js';
import { PendingBudget, PendingBuffer, pendingBytes } from './pending.js';
import { planApply, retractions, slotsToRead, type ApplyView } from './plan.js';
import { deviceBody, makeAccount, OpWriter, withoutHome, writers } from './testing/index.js';
import type { Op } from './types.js';

const account = makeAccount({ seed: 'plan', homes: 3 });
const peer = (i: number) => account.homes[i]!.peerId;

/** A view of a store holding `held` (gapless per origin) and `pending`. */
function view(held: Op[], pending = new PendingBuffer()): ApplyView {
  const heads: Record<string, number> = {};
  const hashes = new Map<string, string>();
  for (const op of held) {
    heads[op.origin] = Math.max(heads[op.origin] ?? 0, op.seq);
    hashes.set(`${op.origin} ${op.seq}`, opHash(op));
  }
  return {
    account: account.serverName,
    document: account.document,
    heads,
    heldHash: (origin, seq) => hashes.get(`${origin} ${seq}`),
    evidence: () => new Set(),
    evidenceCount: () => 0,
    digest: () => undefined,
    pending,
  };
}

describe('planApply', () => {
  it('is pure: planning twice on one view gives the same plan and leaves the view as it was', () => {
    const [a] = writers(account);
    const ops = [a!.deviceDelete('A'), a!.deviceDelete('B'), a!.deviceDelete('C'), a!.deviceDelete('D')];
    const pending = new PendingBuffer();
    const v = view([ops[0]!], pending);
    const inputs = [ops[3], ops[1], ops[0]];
    const first = planApply(v, inputs);
    expect(planApply(v, inputs)).toEqual(first);
    expect(pending.size).toBe(0);
    expect(first.append.map((s) => s.op.seq)).toEqual([2]);
    expect(first.pending.hold.map((s) => s.op.seq)).toEqual([4]);
    expect(first.result.rejected.map((r) => r.reason)).toEqual(['duplicate']);
    expect(first.heads).toEqual({ [peer(0)]: 2 });
  });

  it('names only the slots a store must read: at or below a head, or pending', () => {
    const [a] = writers(account);
    const ops = [a!.deviceDelete('A'), a!.deviceDelete('B'), a!.deviceDelete('C'), a!.deviceDelete('D')];
    const pending = new PendingBuffer();
    pending.apply({ release: [], hold: [{ op: ops[3]!, hash: opHash(ops[3]!), bytes: 1 }] }, () => true);
    expect(slotsToRead({ [peer(0)]: 1 }, pending, [ops[0], ops[2], ops[3], ops[0], null, 'x'])).toEqual([
      { origin: peer(0), seq: 1 },
      { origin: peer(0), seq: 4 },
    ]);
  });

  it('throws when the view lacks a slot it should hold (a store bug), rather than guess', () => {
    const [a] = writers(account);
    const op = a!.deviceDelete('A');
    const lacking = { ...view([op]), heldHash: () => undefined };
    expect(() => planApply(lacking, [op])).toThrow(/lacks held slot/);
  });

  it('retracts only origins revoked below what is held', () => {
    const doc = withoutHome(account, account.document, peer(2), 1);
    expect(retractions({ [peer(2)]: 3, [peer(0)]: 5 }, doc)).toEqual([{ origin: peer(2), cutoff: 1 }]);
    expect(retractions({ [peer(2)]: 1 }, doc)).toEqual([]);
  });
});

describe('planApply on a full store budget', () => {
  it('empties a pending slot whose lower-hash rival does not fit, rather than break the budget', () => {
    const home = account.homes[1]!;
    const small = new OpWriter(account, home).make('device.delete', 'S', {}, { seq: 2 });
    // A bigger op for the same slot with a lower hash than the small one (fixtures are deterministic).
    const big = Array.from({ length: 40 }, (_, i) =>
      new OpWriter(account, home).make('device.put', `B${i}`, { ...deviceBody(account, `B${i}`) }, { seq: 2 }),
    ).find((op) => opHash(op) < opHash(small))!;
    const budget = new PendingBudget(10, pendingBytes(small) + 10);
    const pending = new PendingBuffer(undefined, budget);
    const isKnown = (): boolean => true;
    pending.apply(planApply(view([], pending), [small]).pending, isKnown);
    expect(budget.ops).toBe(1);
    const plan = planApply(view([], pending), [big]);
    expect(plan.result.equivocations).toHaveLength(1);
    expect(plan.result.rejected.map((r) => r.reason)).toEqual(['pending_full']);
    pending.apply(plan.pending, isKnown);
    expect([pending.size, budget.ops, budget.bytes]).toEqual([0, 0, 0]);
  });
});

describe('PendingBuffer', () => {
  it('refuses a change that breaks a cap, changing nothing, and undoes an applied one', () => {
    const [a] = writers(account);
    const ops = [a!.deviceDelete('A'), a!.deviceDelete('B'), a!.deviceDelete('C')];
    const entries = ops.map((op) => ({ op, hash: opHash(op), bytes: pendingBytes(op) }));
    const budget = new PendingBudget(10, 1 << 20);
    const buffer = new PendingBuffer({ perOrigin: 2, total: 10, unknownOrigins: 1 }, budget);
    expect(() => buffer.apply({ release: [], hold: entries }, () => true)).toThrow(/breaks a cap/);
    expect([buffer.size, budget.ops, budget.bytes]).toEqual([0, 0, 0]);
    const undo = buffer.apply({ release: [], hold: entries.slice(0, 2) }, () => true);
    expect([buffer.size, budget.ops]).toEqual([2, 2]);
    undo();
    expect([buffer.size, budget.ops, budget.bytes]).toEqual([0, 0, 0]);
  });

  it('refuses limits that are not whole numbers of at least 1', () => {
    expect(() => new PendingBuffer({ perOrigin: 0, total: 1, unknownOrigins: 1 })).toThrow(RangeError);
    expect(() => new PendingBuffer({ perOrigin: 1, total: Number.NaN, unknownOrigins: 1 })).toThrow(/total/);
    expect(() => new PendingBudget(-1)).toThrow(/maxOps/);
  });
});
