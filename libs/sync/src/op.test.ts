import { sha256 } from '@noble/hashes/sha2.js';
import { ACCOUNT_DOCUMENT_TYPE, canonicalJson, encodeHex, nobleEd25519, signedBytes } from '@polyhome/identity';
import { describe, expect, it } from 'vitest';
import { OpRejectedError, OriginKeyMismatchError } from './errors.js';
import { compareOps, createOp, namespaceOf, opHash } from './op.js';
import { makeAccount, OpWriter } from './testing/index.js';
import { OP_TYPE, type Op } from './types.js';
import { parseEncodedOp, validateOp, verifyOpSignature } from './validate.js';

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

describe('an op signed before validation encoded each op once', () => {
  // Made by createOp (seed `op-hash-vector`, one home) before parsing, hashing and verifying shared one
  // encoding and opHash moved to node:crypto; its bytes and hash are pinned here, so neither may change.
  // Re-made when device.put bodies had to carry a valid self-signature (issue 16); the vector made before that,
  // whose device keys are signed by nothing, is now refused.
  const SIGNED_TEXT =
    '{"account":"13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761","body":{"algorithms":["m.olm.v1.curve25519-aes-sha2","m.megolm.v1.aes-sha2"],"device_id":"KITCHEN","display_name":"K\u00fcche \ud83c\udfe0 \\"quoted\\" \\\\ back","keys":{"ed25519:KITCHEN":"Kjh95jIWzyT8osxExMRWkd1SK3JaKvzUp31XryPbPQc"},"signatures":{"@alice:13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761":{"ed25519:KITCHEN":"NvZ2J4pljhPzsGkSkWRd34ikq1BAu/anSLcrKGEVUALNwVoMVfN45F4srF7uqmp44k9dEtRsy1KHvm4n+BvGAw"}},"user_id":"@alice:13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761"},"doc_seq":1,"key":"KITCHEN","lamport":42,"op":"device.put","origin":"12D3KooWB3kiQJkVVtVuYFmcq64vvrzEPXw3kyL1Bku34CSYqbVw","seq":7,"signatures":{"13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761":{"ed25519:12D3KooWB3kiQJkVVtVuYFmcq64vvrzEPXw3kyL1Bku34CSYqbVw":"P/z0Fmlw+93n6au7l0CUTtv4Z7odxmW2QvjeXv6/cxvHP++XCfGK4yiIuQ8LsYU9vVrZIKxjqYUrl8QjEAV5BQ"}},"ts":1764000000000,"type":"polyhome.op"}';
  const HASH = '500788cf3c122fff81726fc90f33cb07037fdb36b5d77f64f0d5dd3b43da3221';
  const UNSIGNED_DEVICE_TEXT =
    '{"account":"13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761","body":{"algorithms":["m.olm.v1.curve25519-aes-sha2","m.megolm.v1.aes-sha2"],"device_id":"KITCHEN","display_name":"K\u00fcche \ud83c\udfe0 \\"quoted\\" \\\\ back","keys":{"ed25519:KITCHEN":"lEuiRJBit0IG6nUf5pUzWTUEsRVVe/HJkoKuEww9ULI"},"signatures":{"@alice:13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761":{"ed25519:KITCHEN":"sig"}},"user_id":"@alice:13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761"},"doc_seq":1,"key":"KITCHEN","lamport":42,"op":"device.put","origin":"12D3KooWB3kiQJkVVtVuYFmcq64vvrzEPXw3kyL1Bku34CSYqbVw","seq":7,"signatures":{"13dd6b0252c94079f03c0b0752a2c7f42778d00e57b7fb1226b7e1a275092761":{"ed25519:12D3KooWB3kiQJkVVtVuYFmcq64vvrzEPXw3kyL1Bku34CSYqbVw":"msI2G8i9sGvg4D6KAgzOS8LkJyCuIwKC4j0w1UQbFzwEiNBXLO/e15ViSGox+/EMKvvgZYZd40H1cBGaTGzNDQ"}},"ts":1764000000000,"type":"polyhome.op"}';
  const signer = makeAccount({ seed: 'op-hash-vector', homes: 1 });
  const signed = () => JSON.parse(SIGNED_TEXT) as Op;

  it('still validates, with either Ed25519 backend', () => {
    expect(validateOp(signed(), signer.document)).toMatchObject({ ok: true, origin: 'ok' });
    expect(validateOp(signed(), signer.document, { backend: nobleEd25519 })).toMatchObject({ ok: true });
  });

  it('is refused when the device keys it carries are not self-signed', () => {
    const unsigned = JSON.parse(UNSIGNED_DEVICE_TEXT) as Op;
    expect(validateOp(unsigned, signer.document)).toMatchObject({
      ok: false,
      reason: 'malformed',
      detail: expect.stringContaining('no valid self-signature') as unknown,
    });
  });

  it('keeps its content hash, which is sha256 of its signed bytes', () => {
    expect(opHash(signed())).toBe(HASH);
    expect(encodeHex(sha256(signedBytes(signed())))).toBe(HASH);
  });

  it('is what createOp makes from the same fields today', () => {
    const { signatures: _signatures, type: _type, ...fields } = signed();
    expect(canonicalJson(createOp(fields, signer.homes[0]!.secretKey))).toBe(SIGNED_TEXT);
  });

  it('has the signed bytes parsing derives from its one encoding equal to signedBytes', () => {
    const op = signed();
    expect(parseEncodedOp(op).signed).toEqual(signedBytes(op));
  });

  it('fails once any signed field changes', () => {
    const tampered = signed();
    (tampered.body as Record<string, unknown>).display_name = 'Kuche';
    expect(validateOp(tampered, signer.document)).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(opHash(tampered)).not.toBe(HASH);
  });
});
