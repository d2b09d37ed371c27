import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeHex, utf8 } from './encoding.js';
import { sha256, sha256Hex } from './sha256.js';

describe('sha256 (native where the runtime has it)', () => {
  // FIPS 180-2 examples.
  it.each([
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
    ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
  ])('gives the standard digest (%#)', (text, hex) => {
    expect(sha256Hex(utf8(text))).toBe(hex);
    expect(encodeHex(sha256(utf8(text)))).toBe(hex);
  });

  it('gives the bytes @noble/hashes gives, for any input and for views into larger buffers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(16), (bytes, offset) => {
        const padded = new Uint8Array(offset + bytes.length + 7);
        padded.set(bytes, offset);
        const view = padded.subarray(offset, offset + bytes.length);
        const expected = nobleSha256(bytes);
        expect(sha256(view)).toEqual(expected);
        expect(sha256Hex(view)).toBe(encodeHex(expected));
      }),
      { numRuns: 300 },
    );
  });
});
