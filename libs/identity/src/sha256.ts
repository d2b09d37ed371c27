// SHA-256 through Node's crypto (OpenSSL) where the runtime has it, @noble/hashes everywhere else: the
// same bytes either way (held to the same vectors in sha256.test.ts), the native one several times faster.
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { encodeHex } from './encoding.js';
import { nodeCrypto } from './node/builtins.js';

const crypto = nodeCrypto();

/** The 32-byte SHA-256 digest of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  if (crypto === undefined) return nobleSha256(bytes);
  const digest = crypto.createHash('sha256').update(bytes).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.length);
}

/** The SHA-256 digest of `bytes` as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  if (crypto === undefined) return encodeHex(nobleSha256(bytes));
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
