import { signatureMemo, signedBytes } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { createReplica, applyOps } from './replica.js';
import { makeAccount, OpWriter } from './testing/index.js';
import type { Op } from './types.js';
import { parseEncodedOp, validateOp } from './validate.js';
import { adoptOps, signatureChecksOf, verifyOpsAhead } from './verify-ahead.js';

const account = makeAccount({ homes: 2 });

function tamper(op: Op, change: (copy: Record<string, unknown>) => void): Record<string, unknown> {
  const copy = structuredClone(op) as unknown as Record<string, unknown>;
  change(copy);
  return copy;
}

/** Ops whose signatures must not verify: altered after signing, or signed by another home. */
function forgeries(w: OpWriter, good: Op, otherDevice: string): Array<Record<string, unknown>> {
  return [
    // The op's signature over other bytes.
    tamper(good, (c) => {
      c.ts = (c.ts as number) + 1;
    }),
    // The device keys altered after the device signed them (the op re-signed by its home would still fail).
    tamper(w.devicePut(otherDevice), (c) => {
      (c.body as { algorithms: string[] }).algorithms = ['m.megolm.v1.aes-sha2'];
    }),
    // Another home's signature moved onto this op.
    tamper(good, (c) => {
      c.origin = account.homes[1]!.peerId;
    }),
  ];
}

afterEach(() => signatureMemo.clear());

describe('verifyOpsAhead', () => {
  it('names the op signature and, for a device.put, the device self-signature', () => {
    const w = new OpWriter(account, account.homes[0]!);
    expect(signatureChecksOf(w.devicePut('DEV1'))).toHaveLength(2);
    expect(signatureChecksOf(w.memberSet('!r:x', 'join'))).toHaveLength(1);
    for (const junk of [null, 7, 'op', [], {}, { type: 'polyhome.op', origin: 'not a peer id' }]) {
      expect(signatureChecksOf(junk)).toEqual([]);
    }
  });

  it('makes validation of the same ops a memo lookup, with the same outcome', async () => {
    const w = new OpWriter(account, account.homes[0]!);
    const ops = [w.devicePut('A'), w.devicePut('B'), w.memberSet('!r:x', 'join')];
    await verifyOpsAhead(ops);
    expect(signatureMemo.size).toBe(5);
    const hits = signatureMemo.hits;
    for (const op of ops) expect(validateOp(op, account.document).ok).toBe(true);
    expect(signatureMemo.hits - hits).toBe(5);
  });

  it('never lets a forged or altered op through: each is refused exactly as without it', async () => {
    const w = new OpWriter(account, account.homes[0]!);
    const good = w.devicePut('GOOD');
    const forged = forgeries(w, good, 'DEV2');
    const before = forged.map((op) => validateOp(op, account.document));
    signatureMemo.clear();
    await verifyOpsAhead([good, ...forged]);
    const after = forged.map((op) => validateOp(op, account.document));
    expect(after).toEqual(before);
    for (const result of after) expect(result.ok).toBe(false);
  });

  it('a second call for inputs already started waits for their checks rather than verifying again', async () => {
    const w = new OpWriter(account, account.homes[0]!);
    const ops = [w.devicePut('C1'), w.devicePut('C2')];
    const first = verifyOpsAhead(ops);
    await verifyOpsAhead(ops);
    expect(signatureMemo.size).toBe(4);
    await first;
    const hits = signatureMemo.hits;
    const [replica, result] = applyOps(createReplica(account.document), ops);
    expect(result.accepted).toHaveLength(2);
    expect(replica).toBeDefined();
    expect(signatureMemo.hits - hits).toBe(4);
  });

  it('ignores inputs that are not ops, and never rejects', async () => {
    await expect(verifyOpsAhead([null, 1, 'x', { type: 'polyhome.op', origin: 5 }, []])).resolves.toBeUndefined();
    expect(signatureMemo.size).toBe(0);
  });
});

describe('adoptOps', () => {
  // As a session has them: parsed from a frame, objects of its own.
  const received = (ops: readonly unknown[]): Array<Record<string, unknown>> => JSON.parse(JSON.stringify(ops));

  it('freezes the ops, and validation takes the bytes made on arrival: the same bytes encoding them again gives', () => {
    const w = new OpWriter(account, account.homes[0]!);
    const ops = received([w.devicePut('AD1'), w.memberSet('!r:x', 'join')]);
    adoptOps(ops);
    for (const op of ops) {
      expect(Object.isFrozen(op)).toBe(true);
      expect(Object.isFrozen(op.body)).toBe(true);
      expect(parseEncodedOp(op).signed).toEqual(signedBytes(op));
    }
  });

  it('the replica keeps an adopted op as it is, and copies one it was not handed', () => {
    const w = new OpWriter(account, account.homes[0]!);
    const [adopted, plain] = received([w.devicePut('AD2'), w.devicePut('AD3')]);
    adoptOps([adopted]);
    const [, result] = applyOps(createReplica(account.document), [adopted, plain]);
    expect(result.accepted).toHaveLength(2);
    expect(result.accepted[0]).toBe(adopted);
    expect(result.accepted[1]).not.toBe(plain);
    expect(result.accepted[1]).toEqual(plain);
  });

  it('refuses a forged, altered or malformed adopted op exactly as one not adopted', async () => {
    const w = new OpWriter(account, account.homes[0]!);
    const good = w.devicePut('AD4');
    const bad = [
      ...forgeries(w, good, 'AD5'),
      tamper(good, (c) => {
        c.extra = 1;
      }),
    ];
    const before = bad.map((op) => validateOp(op, account.document));
    signatureMemo.clear();
    const ops = received([good, ...bad]);
    // Not canonical JSON (a float): parsed JSON has them, and adoption leaves the refusal to validation.
    const float = { ...received([good])[0]!, ts: 1.5 };
    adoptOps([...ops, float]);
    await verifyOpsAhead([...ops, float]);
    expect(ops.slice(1).map((op) => validateOp(op, account.document))).toEqual(before);
    expect(validateOp(float, account.document)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(validateOp(ops[0], account.document).ok).toBe(true);
  });
});
