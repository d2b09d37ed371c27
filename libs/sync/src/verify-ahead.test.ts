import { signatureMemo } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { createReplica, applyOps } from './replica.js';
import { makeAccount, OpWriter } from './testing/index.js';
import type { Op } from './types.js';
import { validateOp } from './validate.js';
import { signatureChecksOf, verifyOpsAhead } from './verify-ahead.js';

const account = makeAccount({ homes: 2 });

function tamper(op: Op, change: (copy: Record<string, unknown>) => void): Record<string, unknown> {
  const copy = structuredClone(op) as unknown as Record<string, unknown>;
  change(copy);
  return copy;
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
    const forged = [
      // The op's signature over other bytes.
      tamper(good, (c) => {
        c.ts = (c.ts as number) + 1;
      }),
      // The device keys altered after the device signed them (the op re-signed by its home would still fail).
      tamper(w.devicePut('DEV2'), (c) => {
        (c.body as { algorithms: string[] }).algorithms = ['m.megolm.v1.aes-sha2'];
      }),
      // Another home's signature moved onto this op.
      tamper(good, (c) => {
        c.origin = account.homes[1]!.peerId;
      }),
    ];
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
