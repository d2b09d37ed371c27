import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, decodeHex, encodeBase64, encodeHex } from './encoding.js';
import { InvalidBase64Error, InvalidHexError } from './errors.js';

const text = (s: string) => new TextEncoder().encode(s);

describe('unpadded base64', () => {
  // The spec's own examples (appendix "Unpadded Base64").
  it.each([
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ])('encodes %j as %j and back', (plain, encoded) => {
    expect(encodeBase64(text(plain))).toBe(encoded);
    expect(decodeBase64(encoded)).toEqual(text(plain));
  });

  it('accepts correct padding, as the spec asks', () => {
    expect(decodeBase64('Zg==')).toEqual(text('f'));
    expect(decodeBase64('Zm8=')).toEqual(text('fo'));
  });

  it.each([
    ['Zg=', 'wrong amount of padding'],
    ['Zm9v=', 'padding where none is needed'],
    ['Z', 'impossible length'],
    ['Zm9vY', 'impossible length'],
    ['Zh', 'non-zero trailing bits'],
    ['Zm9', 'non-zero trailing bits'],
    ['Zm-v', 'URL-safe alphabet'],
    ['Zm_v', 'URL-safe alphabet'],
    ['Zm9v\n', 'whitespace'],
    [' Zm9v', 'whitespace'],
    ['Zm9\u00e9', 'non-ASCII'],
  ])('refuses %j (%s)', (input) => {
    expect(() => decodeBase64(input)).toThrow(InvalidBase64Error);
  });

  it('round-trips any bytes and agrees with Node', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const encoded = encodeBase64(bytes);
        expect(encoded).toBe(Buffer.from(bytes).toString('base64').replace(/=+$/, ''));
        expect(decodeBase64(encoded)).toEqual(bytes);
      }),
    );
  });

  it('accepts exactly one unpadded spelling per byte string', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'),
          maxLength: 20,
        }),
        (s) => {
          let decoded: Uint8Array;
          try {
            decoded = decodeBase64(s);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidBase64Error);
            return;
          }
          expect(encodeBase64(decoded)).toBe(s);
        },
      ),
    );
  });
});

describe('hex', () => {
  it('round-trips and is lowercase', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const hex = encodeHex(bytes);
        expect(hex).toBe(Buffer.from(bytes).toString('hex'));
        expect(decodeHex(hex)).toEqual(bytes);
      }),
    );
  });

  it.each(['abc', 'AB', 'zz', '0x12', ' 12'])('refuses %j', (input) => {
    expect(() => decodeHex(input)).toThrow(InvalidHexError);
  });
});
