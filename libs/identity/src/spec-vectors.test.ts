import { describe, expect, it } from 'vitest';
import {
  SPEC_EVENT_VECTORS,
  SPEC_JSON_VECTORS,
  SPEC_KEY_ID,
  SPEC_SEED,
  SPEC_SEED_CANONICAL_TEXT,
  SPEC_SEED_TEXT,
  SPEC_SERVER_NAME,
} from './testing/spec-vectors.js';
import {
  checkContentHash,
  computeContentHash,
  decodeBase64,
  hashAndSignEvent,
  InvalidBase64Error,
  keyPairFromSeed,
  nativeEd25519,
  nobleEd25519,
  signJson,
  verifyEventSignature,
  verifyJson,
  type Ed25519Backend,
} from './index.js';

const backends: Ed25519Backend[] = [nobleEd25519];
if (nativeEd25519 !== undefined) backends.push(nativeEd25519);

describe('Matrix spec seed', () => {
  it('is refused as printed by the strict decoder (non-zero trailing bits)', () => {
    expect(() => decodeBase64(SPEC_SEED_TEXT)).toThrow(InvalidBase64Error);
  });
  it('equals the strict decoding of its canonical spelling', () => {
    expect(decodeBase64(SPEC_SEED_CANONICAL_TEXT)).toEqual(SPEC_SEED);
    expect(SPEC_SEED.length).toBe(32);
  });
});

it('the native backend exists on Node', () => {
  expect(nativeEd25519?.name).toBe('native');
});

describe.each(backends.map((b) => [b.name, b] as const))('Matrix spec vectors on the %s backend', (_name, backend) => {
  const { secretKey, publicKey } = keyPairFromSeed(SPEC_SEED);

  it.each(SPEC_JSON_VECTORS.map((v) => [JSON.stringify(v.input), v] as const))('signs %s', (_label, vector) => {
    const signed = signJson(vector.input, SPEC_SERVER_NAME, SPEC_KEY_ID, secretKey, { backend });
    expect(signed).toEqual({ ...vector.input, signatures: { domain: { 'ed25519:1': vector.signature } } });
    expect(() => verifyJson(signed, SPEC_SERVER_NAME, SPEC_KEY_ID, publicKey, { backend })).not.toThrow();
  });

  it.each(SPEC_EVENT_VECTORS.map((v) => [v.name, v] as const))('hashes and signs the %s', (_label, vector) => {
    expect(computeContentHash(vector.input)).toBe(vector.sha256);
    const signed = hashAndSignEvent(vector.input, SPEC_SERVER_NAME, SPEC_KEY_ID, secretKey, '1', { backend });
    expect(signed.hashes).toEqual({ sha256: vector.sha256 });
    expect(signed.signatures).toEqual({ domain: { 'ed25519:1': vector.signature } });
    expect(signed.unsigned).toEqual(vector.input.unsigned);
    expect(checkContentHash(signed)).toBe(true);
    expect(() =>
      verifyEventSignature(signed, SPEC_SERVER_NAME, SPEC_KEY_ID, publicKey, '1', { backend }),
    ).not.toThrow();
  });
});
