// The Automerge-style `[replica, result] = applyOps(replica, ...)` reassigns the replica and sets a
// result declared once; prefer-const cannot tell the two apart in one destructuring.
/* eslint-disable prefer-const */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_OPS_PER_BATCH, MAX_PENDING_PER_ORIGIN } from './constants.js';
import { DocumentRejectedError, StaleReplicaError } from './errors.js';
import { opHash } from './op.js';
import {
  applyOps,
  cloneReplica,
  createReplica,
  documentOf,
  evidenceOf,
  flaggedOrigins,
  makeLocalOp,
  nextLamport,
  offerDocument,
  opAt,
  opsMissing,
  pendingCount,
  stateOf,
  versionVector,
  type Replica,
} from './replica.js';
import { makeAccount, makeHome, OpWriter, withHome, withoutHome, writers } from './testing/index.js';
import type { ApplyResult, Op } from './types.js';

const account = makeAccount({ homes: 3 });
const peer = (i: number) => account.homes[i]!.peerId;

function apply(replica: Replica, ops: readonly unknown[]): [Replica, ApplyResult] {
  return applyOps(replica, ops);
}

describe('applying ops', () => {
  it('accepts ops in order, materializes state, tracks the vector and lamport', () => {
    const [a, b] = writers(account);
    let r = createReplica(account.document);
    const ops = [a!.devicePut('DEV1'), a!.memberSet('!room:x', 'join'), b!.crossSigningPut('master')];
    let result: ApplyResult;
    [r, result] = apply(r, ops);
    expect(result.accepted).toHaveLength(3);
    expect(result.changed).toEqual(['cross_signing:master', 'device:DEV1', 'member:!room:x']);
    const state = stateOf(r);
    expect(Object.keys(state.devices)).toEqual(['DEV1']);
    expect(state.memberships['!room:x']?.membership).toBe('join');
    expect(Object.keys(state.crossSigning)).toEqual(['master']);
    expect(versionVector(r)).toEqual({ [peer(0)]: 2, [peer(1)]: 1 });
    expect(nextLamport(r)).toBe(3);
    expect(opsMissing(r, { [peer(0)]: 1 }, 10).map((o) => [o.origin, o.seq])).toEqual(
      [
        [peer(1), 1],
        [peer(0), 2],
      ].sort((x, y) => ((x[0] as string) < (y[0] as string) ? -1 : 1)),
    );
    expect(opsMissing(r, {}, 1)).toHaveLength(1);
  });

  it('the greatest (lamport, origin) wins; a delete is a tombstone that wins like any op', () => {
    const [a, b] = writers(account);
    const put = a!.devicePut('DEV1');
    const del = b!.observe(put.lamport).deviceDelete('DEV1');
    const stale = a!.devicePut('DEV1'); // lamport 2 as well: tie broken by origin
    let r = createReplica(account.document);
    [r] = apply(r, [put, del, stale]);
    const winner = del.origin > stale.origin ? 'deleted' : 'present';
    expect('DEV1' in stateOf(r).devices ? 'present' : 'deleted').toBe(winner);
  });

  it('duplicates are no-ops', () => {
    const [a] = writers(account);
    const op = a!.devicePut('DEV1');
    let r = createReplica(account.document);
    [r] = apply(r, [op]);
    const before = stateOf(r);
    let result: ApplyResult;
    [r, result] = apply(r, [op, structuredClone(op)]);
    expect(result.accepted).toEqual([]);
    expect(result.rejected.map((x) => x.reason)).toEqual(['duplicate', 'duplicate']);
    expect(result.changed).toEqual([]);
    expect(stateOf(r)).toEqual(before);
  });

  it('holds out-of-order ops as pending and applies them when the gap fills', () => {
    const [a] = writers(account);
    const ops = [a!.devicePut('D1'), a!.devicePut('D2'), a!.devicePut('D3')];
    let r = createReplica(account.document);
    let result: ApplyResult;
    [r, result] = apply(r, [ops[2], ops[1]]);
    expect(result.pending).toBe(2);
    expect(pendingCount(r)).toBe(2);
    expect(versionVector(r)).toEqual({});
    [r, result] = apply(r, [ops[1]]);
    expect(result.rejected[0]?.reason).toBe('duplicate');
    [r, result] = apply(r, [ops[0]]);
    expect(result.accepted.map((o) => o.seq)).toEqual([1, 2, 3]);
    expect(pendingCount(r)).toBe(0);
  });

  it('drops pending ops beyond the per-origin cap', () => {
    const [a] = writers(account);
    const first = a!.deviceDelete('D');
    const later: Op[] = [];
    for (let i = 0; i < MAX_PENDING_PER_ORIGIN + 5; i++) later.push(a!.deviceDelete('D'));
    let r = createReplica(account.document);
    let dropped = 0;
    for (let i = 0; i < later.length; i += MAX_OPS_PER_BATCH) {
      let result: ApplyResult;
      [r, result] = apply(r, later.slice(i, i + MAX_OPS_PER_BATCH));
      dropped += result.dropped ?? 0;
    }
    expect(dropped).toBe(5);
    expect(pendingCount(r)).toBe(MAX_PENDING_PER_ORIGIN);
    let result: ApplyResult;
    [r, result] = apply(r, [first]);
    expect(result.accepted).toHaveLength(MAX_PENDING_PER_ORIGIN + 1);
    expect(versionVector(r)[peer(0)]).toBe(MAX_PENDING_PER_ORIGIN + 1);
  });

  it('refuses batches over the cap whole', () => {
    const [a] = writers(account);
    const op = a!.deviceDelete('D');
    let r = createReplica(account.document);
    let result: ApplyResult;
    [r, result] = apply(
      r,
      Array.from({ length: MAX_OPS_PER_BATCH + 1 }, () => op),
    );
    expect(result.accepted).toEqual([]);
    expect(new Set(result.rejected.map((x) => x.reason))).toEqual(new Set(['too_large']));
    expect(versionVector(r)).toEqual({});
  });

  it('outdates the previous handle, like Automerge', () => {
    const [a] = writers(account);
    const r0 = createReplica(account.document);
    const [r1] = apply(r0, [a!.deviceDelete('D')]);
    expect(() => stateOf(r0)).toThrow(StaleReplicaError);
    expect(versionVector(r1)).toEqual({ [peer(0)]: 1 });
    const copy = cloneReplica(r1);
    apply(r1, [a!.deviceDelete('D')]);
    expect(versionVector(copy)).toEqual({ [peer(0)]: 1 });
  });

  it('keeps private frozen copies of ops', () => {
    const [a] = writers(account);
    const op = a!.devicePut('DEV1');
    const [r] = apply(createReplica(account.document), [op]);
    (op.body as { display_name?: string }).display_name = 'changed after';
    expect(stateOf(r).devices.DEV1?.display_name).toBeUndefined();
    expect(Object.isFrozen(opAt(r, peer(0), 1))).toBe(true);
  });

  it('makeLocalOp fills seq, lamport and doc_seq from the replica', () => {
    let r = createReplica(account.document);
    const op1 = makeLocalOp(r, account.homes[1]!.secretKey, { op: 'device.delete', key: 'D', body: {} }, 5);
    [r] = apply(r, [op1]);
    const op2 = makeLocalOp(r, account.homes[1]!.secretKey, { op: 'device.delete', key: 'D', body: {} }, 6);
    expect([op1.seq, op1.lamport, op1.doc_seq, op2.seq, op2.lamport]).toEqual([1, 1, account.document.seq, 2, 2]);
  });

  it('a device id "__proto__" stays a key', () => {
    const [a] = writers(account);
    const [r] = apply(createReplica(account.document), [a!.devicePut('__proto__')]);
    const devices = stateOf(r).devices;
    expect(Object.keys(devices)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(devices)).toBe(Object.prototype);
  });
});

describe('threats (regressions)', () => {
  it('refuses an op from a home not in the document', () => {
    const stranger = makeHome('rogue');
    const op = new OpWriter(account, stranger).devicePut('EVIL');
    const [r, result] = apply(createReplica(account.document), [op]);
    expect(result.rejected[0]?.reason).toBe('unknown_origin');
    expect(stateOf(r).devices).toEqual({});
  });

  it('holds an op from a new home until the document naming it arrives', () => {
    const newcomer = makeHome('newcomer');
    const doc2 = withHome(account, account.document, newcomer);
    const op = new OpWriter(account, newcomer, doc2.seq).devicePut('NEW');
    let r = createReplica(account.document);
    let result: ApplyResult;
    [r, result] = apply(r, [op]);
    expect(result.pending).toBe(1);
    let offer;
    [r, offer] = offerDocument(r, doc2);
    expect(offer.choice.kind).toBe('accept');
    expect(offer.applied.accepted).toHaveLength(1);
    expect(Object.keys(stateOf(r).devices)).toEqual(['NEW']);
  });

  it('refuses ops above the cutoff from a revoked home, on every replica, and retracts ones held', () => {
    const revoked = account.homes[2]!;
    const w = new OpWriter(account, revoked);
    const ops = [w.devicePut('OK1'), w.devicePut('LATE2'), w.devicePut('LATE3')];
    const doc2 = withoutHome(account, account.document, revoked.peerId, 1);
    // Replica A learned of the revocation first; replica B had already accepted seq 2 and 3.
    let a = createReplica(account.document);
    [a] = offerDocument(a, doc2);
    let ra: ApplyResult;
    [a, ra] = apply(a, ops);
    expect(ra.accepted).toHaveLength(1);
    expect(ra.rejected.map((x) => x.reason)).toEqual(['revoked', 'revoked']);
    let b = createReplica(account.document);
    [b] = apply(b, ops);
    expect(Object.keys(stateOf(b).devices)).toEqual(['LATE2', 'LATE3', 'OK1']);
    let offer;
    [b, offer] = offerDocument(b, doc2);
    expect(offer.retracted.map((o) => o.seq)).toEqual([2, 3]);
    expect(offer.applied.changed).toEqual(['device:LATE2', 'device:LATE3']);
    expect(stateOf(b)).toEqual(stateOf(a));
    expect(versionVector(b)).toEqual(versionVector(a));
    // And a later copy of them is refused.
    const [, rb] = apply(b, [ops[1]]);
    expect(rb.rejected[0]?.reason).toBe('revoked');
  });

  it('refuses an op whose signature was made for another type (an account document)', () => {
    const [r, result] = apply(createReplica(account.document), [account.document]);
    expect(result.rejected[0]?.reason).toBe('wrong_type');
    expect(versionVector(r)).toEqual({});
  });

  it('a replayed old document changes nothing', () => {
    const doc2 = withoutHome(account, account.document, peer(2), 0);
    let r = createReplica(account.document);
    [r] = offerDocument(r, doc2);
    let offer;
    [r, offer] = offerDocument(r, account.document);
    expect(offer.choice.kind).toBe('rollback');
    expect(documentOf(r).seq).toBe(doc2.seq);
    // And ops from the home the old document still listed stay refused.
    const [, result] = apply(r, [new OpWriter(account, account.homes[2]!).deviceDelete('D')]);
    expect(result.rejected[0]?.reason).toBe('revoked');
  });

  it('refuses a forged or foreign document', () => {
    const r = createReplica(account.document);
    const forged = { ...account.document, seq: account.document.seq + 1 };
    expect(() => offerDocument(r, forged)).toThrow(DocumentRejectedError);
    const other = makeAccount({ seed: 'bob', homes: 1 });
    expect(() => offerDocument(r, other.document)).toThrow(DocumentRejectedError);
  });

  it('an equivocating home does not split replicas that saw its two ops in different orders', () => {
    const home = account.homes[1]!;
    const x = new OpWriter(account, home).devicePut('DEV', { display_name: 'x' });
    const y = new OpWriter(account, home).devicePut('DEV', { display_name: 'y' });
    const z = new OpWriter(account, home).memberSet('!r:x', 'join'); // a third version, another key
    let a = createReplica(account.document);
    let b = createReplica(account.document);
    let ra: ApplyResult;
    let rb: ApplyResult;
    [a, ra] = apply(a, [x, y, z]);
    [b, rb] = apply(b, [z, y, x]);
    expect(stateOf(a)).toEqual(stateOf(b));
    expect(versionVector(a)).toEqual(versionVector(b));
    expect(flaggedOrigins(a)).toEqual([home.peerId]);
    expect(flaggedOrigins(b)).toEqual([home.peerId]);
    const lowest = [x, y, z].map(opHash).sort()[0];
    expect(opHash(opAt(a, home.peerId, 1)!)).toBe(lowest);
    expect(evidenceOf(a)[0]?.ops).toHaveLength(3);
    expect(evidenceOf(a)).toEqual(evidenceOf(b));
    expect(ra.equivocations).toHaveLength(2);
    expect(rb.equivocations).toHaveLength(2);
  });

  it('an equivocation between pending ops resolves the same way', () => {
    const w = new OpWriter(account, account.homes[1]!);
    const first = w.deviceDelete('A');
    const x = new OpWriter(account, account.homes[1]!).make('device.delete', 'B', {}, { seq: 2, lamport: 5 });
    const y = new OpWriter(account, account.homes[1]!).make('device.delete', 'C', {}, { seq: 2, lamport: 5 });
    let a = createReplica(account.document);
    let b = createReplica(account.document);
    [a] = apply(a, [x, y, first]);
    [b] = apply(b, [y, first, x]);
    expect(opHash(opAt(a, peer(1), 2)!)).toBe(opHash(opAt(b, peer(1), 2)!));
    expect(flaggedOrigins(a)).toEqual(flaggedOrigins(b));
  });

  it('refuses malformed and oversized ops without changing anything', () => {
    const [w] = writers(account);
    const good = w!.devicePut('D');
    const bad = [null, 'x', { ...good, seq: -1 }, { ...good, extra: true }, { ...good, key: 'k'.repeat(300) }];
    const [r, result] = apply(createReplica(account.document), bad);
    expect(result.accepted).toEqual([]);
    expect(result.rejected).toHaveLength(bad.length);
    expect(versionVector(r)).toEqual({});
  });
});

describe('order independence (property)', () => {
  // A fixed op set from three homes with concurrent lamports, touching overlapping keys.
  const [a, b, c] = writers(account);
  const ops: Op[] = [
    a!.devicePut('D1'),
    b!.devicePut('D1', { display_name: 'b' }),
    c!.deviceDelete('D1'),
    a!.memberSet('!r:x', 'join'),
    b!.memberSet('!r:x', 'leave'),
    c!.crossSigningPut('master', 1),
    a!.crossSigningPut('master', 2),
    b!.devicePut('D2'),
    c!.observe(3).devicePut('D2', { display_name: 'c' }),
    a!.deviceDelete('D2'),
    b!.memberSet('!s:x', 'invite'),
    c!.memberSet('!s:x', 'join'),
  ];
  const reference = apply(createReplica(account.document), ops)[0];

  it('any permutation with duplicates, in any batching, gives the same state', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(ops, { minLength: ops.length, maxLength: ops.length }),
        fc.array(fc.nat(ops.length - 1), { maxLength: 8 }),
        fc.array(fc.nat(ops.length - 1), { maxLength: 8 }),
        fc.integer({ min: 1, max: 5 }),
        (order, dupIndices, positions, batch) => {
          const sequence: Op[] = [...order];
          dupIndices.forEach((d, i) => sequence.splice(positions[i] ?? 0, 0, ops[d]!));
          let r = createReplica(account.document);
          for (let i = 0; i < sequence.length; i += batch) [r] = apply(r, sequence.slice(i, i + batch));
          expect(stateOf(r)).toEqual(stateOf(reference));
          expect(versionVector(r)).toEqual(versionVector(reference));
          expect(pendingCount(r)).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});
