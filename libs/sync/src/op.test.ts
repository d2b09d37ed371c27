import { ACCOUNT_DOCUMENT_TYPE, canonicalJson, nobleEd25519, signedBytes } from '@polyhome/identity';
import { describe, expect, it } from 'vitest';
import { OpRejectedError, OriginKeyMismatchError } from './errors.js';
import { compareOps, createOp, namespaceOf, opHash } from './op.js';
import { makeAccount, OpWriter } from './testing/index.js';
import { OP_TYPE, type Op } from './types.js';
import { verifyOpSignature } from './validate.js';

const account = makeAccount({ homes: 2 });
const home = account.homes[0]!;

function fields(overrides: Partial<Op> = {}) {
  return {
    account: account.serverName,
    origin: home.peerId,
    seq: 1,
    lamport: 1,
    doc_seq: 1,
    ts: 0,
    op: 'device.delete' as const,
    key: 'DEV',
    body: {},
    ...overrides,
  };
}

describe('createOp', () => {
  it('signs as the account with the origin key id and type polyhome.op', () => {
    const op = createOp(fields(), home.secretKey);
    expect(op.type).toBe(OP_TYPE);
    expect(Object.keys(op.signatures)).toEqual([account.serverName]);
    expect(Object.keys(op.signatures[account.serverName]!)).toEqual([`ed25519:${home.peerId}`]);
    expect(() => verifyOpSignature(op)).not.toThrow();
    expect(() => verifyOpSignature(op, { backend: nobleEd25519 })).not.toThrow();
  });

  it('is deterministic: same fields, same bytes', () => {
    expect(canonicalJson(createOp(fields(), home.secretKey))).toBe(canonicalJson(createOp(fields(), home.secretKey)));
  });

  it('refuses a key that is not the origin', () => {
    expect(() => createOp(fields(), account.homes[1]!.secretKey)).toThrow(OriginKeyMismatchError);
  });

  it('refuses to make an op a peer would refuse', () => {
    expect(() => createOp(fields({ seq: 0 }), home.secretKey)).toThrow(OpRejectedError);
    expect(() => createOp(fields({ body: { x: 1 } }), home.secretKey)).toThrow(OpRejectedError);
  });
});

describe('opHash', () => {
  it('is hex sha256 of the content without signatures', () => {
    const op = createOp(fields(), home.secretKey);
    expect(opHash(op)).toMatch(/^[0-9a-f]{64}$/);
    expect(opHash({ ...op, signatures: {} })).toBe(opHash(op));
    expect(opHash(createOp(fields({ lamport: 2 }), home.secretKey))).not.toBe(opHash(op));
    expect(signedBytes(op)).not.toContain('signatures');
  });

  it('a signature over an account document is not an op signature', () => {
    const doc = account.document;
    expect(doc.type).toBe(ACCOUNT_DOCUMENT_TYPE);
    expect(() => verifyOpSignature(doc as unknown as Op)).toThrow(OpRejectedError);
  });
});

describe('order of writes', () => {
  it('orders by lamport, then origin, then seq', () => {
    const w0 = new OpWriter(account, account.homes[0]!);
    const w1 = new OpWriter(account, account.homes[1]!);
    const a = w0.deviceDelete('D');
    const b = w1.deviceDelete('D');
    const c = w0.deviceDelete('D');
    expect(compareOps(c, a)).toBeGreaterThan(0);
    expect(Math.sign(compareOps(a, b))).toBe(a.origin < b.origin ? -1 : 1);
    expect(compareOps(a, a)).toBe(0);
  });

  it('maps kinds to namespaces', () => {
    expect(namespaceOf('device.put')).toBe('device');
    expect(namespaceOf('device.delete')).toBe('device');
    expect(namespaceOf('member.set')).toBe('member');
    expect(namespaceOf('cross_signing.put')).toBe('cross_signing');
  });
});
