// Byte encodings used on the wire: unpadded standard base64 (Matrix appendix "Unpadded Base64"),
// lowercase hex (server names) and UTF-8. Decoders are strict because their input is untrusted:
// a lenient decoder maps many strings to one byte string, which breaks "same text, same bytes".
import { InvalidBase64Error, InvalidHexError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Encodes bytes as unpadded standard base64, the form Matrix uses for keys and signatures. */
export function encodeBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Decodes standard base64, unpadded or correctly padded (the spec asks decoders to accept both).
 * Refuses other alphabets, whitespace, wrong padding and non-zero trailing bits, so each byte string
 * has exactly one accepted unpadded spelling. Throws InvalidBase64Error.
 */
export function decodeBase64(text: string): Uint8Array {
  if (typeof text !== 'string') throw new InvalidBase64Error('not a string');
  let end = text.length;
  if (end % 4 === 0 && end > 0 && text.charCodeAt(end - 1) === 0x3d) {
    end--;
    if (text.charCodeAt(end - 1) === 0x3d) end--;
  }
  const rest = end % 4;
  if (rest === 1) throw new InvalidBase64Error(`impossible length ${text.length}`);
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) throw new InvalidBase64Error(`unexpected character at index ${i}`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new InvalidBase64Error('non-zero trailing bits');
  return out;
}

/** Encodes bytes as lowercase hex. */
export function encodeHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16);
  return out;
}

/** Decodes lowercase hex of even length; uppercase is refused so a server name has one spelling. Throws InvalidHexError. */
export function decodeHex(text: string): Uint8Array {
  if (typeof text !== 'string') throw new InvalidHexError('not a string');
  if (text.length % 2 !== 0) throw new InvalidHexError(`odd length ${text.length}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new InvalidHexError(`not lowercase hex at index ${hi < 0 ? 2 * i : 2 * i + 1}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

const encoder = new TextEncoder();

/** Encodes a well-formed string as UTF-8 bytes. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Compares two byte strings in constant time for equal lengths (lengths themselves are not secret here). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
