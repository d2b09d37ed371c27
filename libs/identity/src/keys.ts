// Key pairs and their external forms. Public keys are plain 32-byte Uint8Arrays, checked to be
// points on the curve when they come from outside; secret keys are always wrapped in SecretKey.
import { ed25519 } from '@noble/curves/ed25519.js';
import { InvalidKeyLengthError, InvalidPublicKeyError } from './errors.js';
import { decodeBase64, decodeHex, encodeBase64, encodeHex } from './encoding.js';
import { PUBLIC_KEY_LENGTH, SecretKey, secretBytes } from './secret-key.js';

/** An Ed25519 key pair: the account root key or a home's libp2p key. */
export interface KeyPair {
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** The secret key; its bytes never show in logs. */
  readonly secretKey: SecretKey;
}

/** Generates a new Ed25519 key pair from the runtime's cryptographic random source. */
export function generateKeyPair(): KeyPair {
  const secretKey = SecretKey.generate();
  return { publicKey: secretKey.publicKey, secretKey };
}

/** Derives the key pair of a 32-byte seed (deterministic). Throws InvalidKeyLengthError. */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const secretKey = SecretKey.fromSeed(seed);
  return { publicKey: secretKey.publicKey, secretKey };
}

/** Decodes a seed from strict unpadded base64. Throws InvalidBase64Error or InvalidKeyLengthError. */
export function secretKeyFromBase64(text: string): SecretKey {
  const seed = decodeBase64(text);
  try {
    return SecretKey.fromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** Decodes a seed from lowercase hex. Throws InvalidHexError or InvalidKeyLengthError. */
export function secretKeyFromHex(text: string): SecretKey {
  const seed = decodeHex(text);
  try {
    return SecretKey.fromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** Encodes a secret key's seed as unpadded base64: for export paths only, never for logs. */
export function secretKeyToBase64(secretKey: SecretKey): string {
  return encodeBase64(secretBytes(secretKey));
}

/** Encodes a secret key's seed as lowercase hex: for export paths only, never for logs. */
export function secretKeyToHex(secretKey: SecretKey): string {
  return encodeHex(secretBytes(secretKey));
}

/** Checks raw public key bytes: 32 bytes encoding a curve point; returns a copy. Throws InvalidKeyLengthError or InvalidPublicKeyError. */
export function publicKeyFromBytes(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== PUBLIC_KEY_LENGTH) {
    throw new InvalidKeyLengthError(
      'Ed25519 public key',
      PUBLIC_KEY_LENGTH,
      bytes instanceof Uint8Array ? bytes.length : 0,
    );
  }
  // zip215 false: only canonical point encodings, so one key has one spelling (and one server name).
  if (!isKnownValidKey(bytes)) {
    pointChecks++;
    if (!ed25519.utils.isValidPublicKey(bytes, false)) throw new InvalidPublicKeyError('not a canonical curve point');
    rememberValidKey(bytes);
  }
  return Uint8Array.from(bytes);
}

// Point decompression costs more than a native signature check (a square root in pure JS), and the same
// few account and home keys are checked on every op; so keys already found valid are remembered, boundedly.
const VALID_KEY_CACHE_SIZE = 4096;
const validKeys = new Set<string>();
let pointChecks = 0;

/**
 * How many public keys this process has checked as curve points (a point decompression each, the cache
 * missed): what a peer can make a home spend by sending keys it never saw. Exported as a metric.
 */
export function publicKeyPointChecks(): number {
  return pointChecks;
}

function keyId(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function isKnownValidKey(bytes: Uint8Array): boolean {
  return validKeys.has(keyId(bytes));
}

function rememberValidKey(bytes: Uint8Array): void {
  if (validKeys.size >= VALID_KEY_CACHE_SIZE) validKeys.delete(validKeys.values().next().value as string);
  validKeys.add(keyId(bytes));
}

/** Decodes a public key from unpadded base64 (Matrix's form). Throws InvalidBase64Error, InvalidKeyLengthError or InvalidPublicKeyError. */
export function publicKeyFromBase64(text: string): Uint8Array {
  return publicKeyFromBytes(decodeBase64(text));
}

/** Decodes a public key from lowercase hex. Throws InvalidHexError, InvalidKeyLengthError or InvalidPublicKeyError. */
export function publicKeyFromHex(text: string): Uint8Array {
  return publicKeyFromBytes(decodeHex(text));
}

/** Encodes a public key as unpadded base64 (Matrix's form for keys). */
export function publicKeyToBase64(publicKey: Uint8Array): string {
  return encodeBase64(publicKey);
}

/** Encodes a public key as lowercase hex (the form of an account's server name). */
export function publicKeyToHex(publicKey: Uint8Array): string {
  return encodeHex(publicKey);
}

/** Converts an Ed25519 public key to its X25519 (Montgomery) form, for encrypting to an account later. */
export function toX25519PublicKey(publicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(publicKeyFromBytes(publicKey));
}

/** Converts an Ed25519 secret key to the matching X25519 secret scalar; the caller must wipe the result after use. */
export function toX25519SecretKey(secretKey: SecretKey): Uint8Array {
  return ed25519.utils.toMontgomerySecret(secretBytes(secretKey));
}
