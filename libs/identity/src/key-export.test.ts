import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from './encoding.js';
import { ExportInvalidError, InvalidPassphraseError, WrongPassphraseError } from './errors.js';
import { DEFAULT_EXPORT_SCRYPT, exportedPublicKey, exportSecretKey, importSecretKey } from './key-export.js';
import { generateKeyPair } from './keys.js';

// Low cost for speed; the default parameters are exercised once below.
const fast = { scrypt: { log2N: 10, r: 8, p: 1 } };
const { secretKey, publicKey } = generateKeyPair();

describe('passphrase-protected key export', () => {
  it('round-trips with the default parameters (N = 2^17, r = 8, p = 1)', async () => {
    const exported = await exportSecretKey(secretKey, 'correct horse battery staple');
    const bytes = decodeBase64(exported);
    expect(bytes).toHaveLength(129);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('PHKX');
    expect([bytes[4], bytes[5], bytes[6], bytes[7], bytes[8]]).toEqual([1, 1, DEFAULT_EXPORT_SCRYPT.log2N, 8, 1]);
    expect(exportedPublicKey(exported)).toEqual(publicKey);
    const imported = await importSecretKey(exported, 'correct horse battery staple');
    expect(imported.revealSeed()).toEqual(secretKey.revealSeed());
  });

  it('normalises the passphrase to NFC', async () => {
    const exported = await exportSecretKey(secretKey, 'caf\u00e9', fast);
    expect((await importSecretKey(exported, 'cafe\u0301')).publicKey).toEqual(publicKey);
  });

  it('fails with WrongPassphraseError on a wrong passphrase', async () => {
    const exported = await exportSecretKey(secretKey, 'right', fast);
    await expect(importSecretKey(exported, 'wrong')).rejects.toThrow(WrongPassphraseError);
  });

  it('fails when the header is altered (it is associated data)', async () => {
    const bytes = decodeBase64(await exportSecretKey(secretKey, 'pw', fast));
    for (const index of [9, 30, 60, 100]) {
      const altered = Uint8Array.from(bytes);
      altered[index]! ^= 1;
      await expect(importSecretKey(encodeBase64(altered), 'pw')).rejects.toThrow(WrongPassphraseError);
    }
  });

  it.each<[string, (b: Uint8Array) => string]>([
    ['not base64', () => 'not base64!'],
    ['the wrong length', (b) => encodeBase64(b.subarray(1))],
    ['another magic', (b) => encodeBase64(Uint8Array.of(0x58, ...b.subarray(1)))],
    ['an unknown version', (b) => encodeBase64(Uint8Array.of(...b.subarray(0, 4), 9, ...b.subarray(5)))],
    ['an unknown KDF', (b) => encodeBase64(Uint8Array.of(...b.subarray(0, 5), 9, ...b.subarray(6)))],
    ['an excessive scrypt cost', (b) => encodeBase64(Uint8Array.of(...b.subarray(0, 6), 30, ...b.subarray(7)))],
    ['a zero r', (b) => encodeBase64(Uint8Array.of(...b.subarray(0, 7), 0, ...b.subarray(8)))],
  ])('refuses %s with ExportInvalidError', async (_what, make) => {
    const bytes = decodeBase64(await exportSecretKey(secretKey, 'pw', fast));
    await expect(importSecretKey(make(bytes), 'pw')).rejects.toThrow(ExportInvalidError);
  });

  it('refuses weak parameters and empty passphrases', async () => {
    await expect(exportSecretKey(secretKey, 'pw', { scrypt: { log2N: 4, r: 8, p: 1 } })).rejects.toThrow(
      ExportInvalidError,
    );
    await expect(exportSecretKey(secretKey, '', fast)).rejects.toThrow(InvalidPassphraseError);
    await expect(exportSecretKey(secretKey, 'a\ud800', fast)).rejects.toThrow(InvalidPassphraseError);
  });
});
