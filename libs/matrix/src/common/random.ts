import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

// Web Crypto's getRandomValues and noble's sha256 run in Node and in browsers alike.

/** `n` random bytes as unpadded base64url. */
export function randomToken(n: number): string {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  return base64Url(bytes);
}

/** A Matrix-style device id: 10 random capital letters. */
export function randomDeviceId(): string {
  const bytes = new Uint8Array(10);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => String.fromCharCode(65 + (b % 26))).join('');
}

/** Hex SHA-256 of a token: what is stored instead of it. */
export function tokenHash(token: string): string {
  return Array.from(sha256(utf8ToBytes(token)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Unpadded base64url, as Matrix event ids of room versions 4 and later use. */
export function base64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}
