import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64, encodeHex } from './encoding.js';
import { InvalidServerNameError, SealedKeyInvalidError, UnsealFailedError } from './errors.js';
import { serverNameFromPublicKey } from './ids.js';
import { generateKeyPair } from './keys.js';
import { SealingKey } from './secret-key.js';
import { sealRootKey, unsealRootKey, type AeadImplementation } from './sealing.js';

const sealingKey = SealingKey.generate();
const root = generateKeyPair();
const serverName = serverNameFromPublicKey(root.publicKey);
const implementations: AeadImplementation[] = ['native', 'noble'];

describe.each(implementations)('sealed root keys with %s AES-GCM', (aead) => {
  it('round-trip', () => {
    const sealed = sealRootKey(root.secretKey, sealingKey, { aead });
    expect(decodeBase64(sealed)).toHaveLength(62);
    expect(sealed).not.toContain(encodeBase64(root.secretKey.revealSeed()));
    const unsealed = unsealRootKey(sealed, serverName, sealingKey, { aead });
    expect(unsealed.publicKey).toEqual(root.publicKey);
  });

  it('use a fresh nonce each time', () => {
    expect(sealRootKey(root.secretKey, sealingKey, { aead })).not.toBe(
      sealRootKey(root.secretKey, sealingKey, { aead }),
    );
  });

  it('refuse the wrong sealing key', () => {
    const sealed = sealRootKey(root.secretKey, sealingKey, { aead });
    expect(() => unsealRootKey(sealed, serverName, SealingKey.generate(), { aead })).toThrow(UnsealFailedError);
  });

  it("refuse another account's server name (the sealed key is bound to its own)", () => {
    const sealed = sealRootKey(root.secretKey, sealingKey, { aead });
    const other = serverNameFromPublicKey(generateKeyPair().publicKey);
    expect(() => unsealRootKey(sealed, other, sealingKey, { aead })).toThrow(UnsealFailedError);
    expect(() => unsealRootKey(sealed, 'example.org', sealingKey, { aead })).toThrow(InvalidServerNameError);
  });

  it('refuse any altered byte', () => {
    const bytes = decodeBase64(sealRootKey(root.secretKey, sealingKey, { aead }));
    for (let i = 2; i < bytes.length; i++) {
      const altered = Uint8Array.from(bytes);
      altered[i]! ^= 0x01;
      expect(() => unsealRootKey(encodeBase64(altered), serverName, sealingKey, { aead })).toThrow(UnsealFailedError);
    }
  });
});

describe('sealed key format', () => {
  it('is the same bytes from both implementations, and each opens the other', () => {
    const nonce = new Uint8Array(12).fill(9);
    const a = sealRootKey(root.secretKey, sealingKey, { aead: 'native', nonce });
    const b = sealRootKey(root.secretKey, sealingKey, { aead: 'noble', nonce });
    expect(a).toBe(b);
    const fresh = sealRootKey(root.secretKey, sealingKey, { aead: 'native' });
    expect(unsealRootKey(fresh, serverName, sealingKey, { aead: 'noble' }).publicKey).toEqual(root.publicKey);
  });

  it('starts with version 1 and algorithm 1 (AES-256-GCM)', () => {
    const bytes = decodeBase64(sealRootKey(root.secretKey, sealingKey));
    expect([bytes[0], bytes[1]]).toEqual([1, 1]);
  });

  it.each<[string, (bytes: Uint8Array) => string]>([
    ['not base64', () => '%%%'],
    ['too short', (b) => encodeBase64(b.subarray(0, 61))],
    ['too long', (b) => encodeBase64(Uint8Array.of(...b, 0))],
    ['an unknown version', (b) => encodeBase64(Uint8Array.of(2, ...b.subarray(1)))],
    ['an unknown algorithm', (b) => encodeBase64(Uint8Array.of(1, 2, ...b.subarray(2)))],
  ])('refuses %s', (_what, make) => {
    const bytes = decodeBase64(sealRootKey(root.secretKey, sealingKey));
    expect(() => unsealRootKey(make(bytes), serverName, sealingKey)).toThrow(SealedKeyInvalidError);
  });

  it('never shows the sealing key', () => {
    expect(String(sealingKey)).toBe('SealingKey(redacted)');
    expect(JSON.stringify({ sealingKey })).not.toContain(encodeHex(sealingKey.reveal()));
  });
});
