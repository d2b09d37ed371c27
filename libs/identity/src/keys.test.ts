import { inspect } from 'node:util';
import { x25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase64, encodeHex } from './encoding.js';
import {
  InvalidBase64Error,
  InvalidHexError,
  InvalidKeyLengthError,
  InvalidPublicKeyError,
  SignatureInvalidError,
} from './errors.js';
import {
  generateKeyPair,
  keyPairFromSeed,
  publicKeyFromBase64,
  publicKeyFromBytes,
  publicKeyFromHex,
  publicKeyToBase64,
  publicKeyToHex,
  secretKeyFromBase64,
  secretKeyFromHex,
  secretKeyToBase64,
  secretKeyToHex,
  toX25519PublicKey,
  toX25519SecretKey,
} from './keys.js';
import { SealingKey, SecretKey } from './secret-key.js';
import { signJson, verifyJson } from './signing.js';

const seedArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe('key pairs', () => {
  it('derives the same key pair from the same seed', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const a = keyPairFromSeed(seed);
        const b = keyPairFromSeed(Uint8Array.from(seed));
        expect(a.publicKey).toEqual(b.publicKey);
        expect(a.secretKey.revealSeed()).toEqual(seed);
      }),
      { numRuns: 30 },
    );
  });

  it('generates distinct keys', () => {
    expect(generateKeyPair().publicKey).not.toEqual(generateKeyPair().publicKey);
  });

  it("copies the seed, so later changes to the caller's buffer do not change the key", () => {
    const seed = new Uint8Array(32).fill(7);
    const key = SecretKey.fromSeed(seed);
    seed.fill(0);
    expect(key.revealSeed()).toEqual(new Uint8Array(32).fill(7));
  });

  it.each([0, 31, 33, 64])('refuses a %i-byte seed', (length) => {
    expect(() => keyPairFromSeed(new Uint8Array(length))).toThrow(InvalidKeyLengthError);
  });

  it('imports and exports secret keys as base64 and hex', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const key = SecretKey.fromSeed(seed);
        expect(secretKeyFromBase64(secretKeyToBase64(key)).publicKey).toEqual(key.publicKey);
        expect(secretKeyFromHex(secretKeyToHex(key)).publicKey).toEqual(key.publicKey);
        expect(secretKeyToHex(key)).toBe(encodeHex(seed));
      }),
      { numRuns: 20 },
    );
    expect(() => secretKeyFromBase64('AAAA')).toThrow(InvalidKeyLengthError);
    expect(() => secretKeyFromBase64('not base64!')).toThrow(InvalidBase64Error);
    expect(() => secretKeyFromHex('ABCD')).toThrow(InvalidHexError);
  });

  it('imports and exports public keys as raw bytes, base64 and hex', () => {
    const { publicKey } = generateKeyPair();
    expect(publicKeyFromBytes(publicKey)).toEqual(publicKey);
    expect(publicKeyFromBase64(publicKeyToBase64(publicKey))).toEqual(publicKey);
    expect(publicKeyFromHex(publicKeyToHex(publicKey))).toEqual(publicKey);
    expect(publicKeyToBase64(publicKey)).toHaveLength(43);
    expect(publicKeyToHex(publicKey)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses public keys of the wrong length or off the curve', () => {
    expect(() => publicKeyFromBytes(new Uint8Array(31))).toThrow(InvalidKeyLengthError);
    expect(() => publicKeyFromBase64(encodeBase64(new Uint8Array(33)))).toThrow(InvalidKeyLengthError);
    // y = 2 has no x on Ed25519; 0xff.. encodes y >= p (non-canonical).
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    expect(() => publicKeyFromBytes(offCurve)).toThrow(InvalidPublicKeyError);
    expect(() => publicKeyFromBytes(new Uint8Array(32).fill(0xff))).toThrow(InvalidPublicKeyError);
  });
});

describe('X25519 conversion', () => {
  it('gives keys that agree on a shared secret', () => {
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const aliceSecret = toX25519SecretKey(alice.secretKey);
    const bobSecret = toX25519SecretKey(bob.secretKey);
    expect(x25519.getPublicKey(aliceSecret)).toEqual(toX25519PublicKey(alice.publicKey));
    const ab = x25519.getSharedSecret(aliceSecret, toX25519PublicKey(bob.publicKey));
    const ba = x25519.getSharedSecret(bobSecret, toX25519PublicKey(alice.publicKey));
    expect(ab).toEqual(ba);
  });
});

describe('secrets never show', () => {
  const key = SecretKey.generate();
  const seed = key.revealSeed();
  const forms = [encodeHex(seed), encodeBase64(seed), Buffer.from(seed).toString('base64url'), seed.join(',')];
  const sealing = SealingKey.generate();
  const sealingForms = [encodeHex(sealing.reveal()), encodeBase64(sealing.reveal())];

  it.each<[string, (k: object) => string]>([
    ['String()', (k) => String(k)],
    ['template literal', (k) => `${k as SecretKey}`],
    ['JSON.stringify', (k) => JSON.stringify({ k })],
    ['util.inspect', (k) => inspect(k, { showHidden: true, depth: 5 })],
    ['util.inspect of a container', (k) => inspect({ nested: [k] }, { showHidden: true })],
    ['Object.entries', (k) => JSON.stringify(Object.entries(k))],
    ['spread', (k) => inspect({ ...k })],
    ['structuredClone', (k) => inspect(structuredClone(k))],
  ])('in %s', (_how, show) => {
    const shown = show(key) + show(sealing);
    for (const form of [...forms, ...sealingForms]) expect(shown).not.toContain(form);
    expect(show(key)).toMatch(/SecretKey|\{\}|\[\]/);
  });

  it('in errors about them', () => {
    const messages: string[] = [];
    for (const bad of [seed.subarray(0, 31), Uint8Array.of(...seed, 1)]) {
      try {
        SecretKey.fromSeed(bad);
      } catch (error) {
        messages.push(String(error), inspect(error));
      }
    }
    expect(messages).toHaveLength(4);
    for (const m of messages) for (const form of forms) expect(m).not.toContain(form);
  });

  it('and a destroyed key cannot sign', () => {
    const doomed = SecretKey.generate();
    const signed = signJson({ a: 1 }, 'x', 'ed25519:1', doomed);
    doomed.destroy();
    expect(() => signJson({ a: 1 }, 'x', 'ed25519:1', doomed)).toThrow(TypeError);
    expect(() => verifyJson({ ...signed, a: 2 }, 'x', 'ed25519:1', doomed.publicKey)).toThrow(SignatureInvalidError);
  });
});
