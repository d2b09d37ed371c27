// Two interchangeable Ed25519 implementations behind one interface: Node's native crypto where the
// runtime has it (fast), @noble/curves everywhere (portable, audited). Both are held to the same
// vectors; callers can pin one per call, and the default is chosen once at load.
import { ed25519 } from '@noble/curves/ed25519.js';
import { InvalidKeyLengthError } from './errors.js';
import { PUBLIC_KEY_LENGTH, secretBytes, type SecretKey } from './secret-key.js';
import { createNativeEd25519 } from './node/native-ed25519.js';
import { signatureMemo } from './signature-memo.js';

/** Length in bytes of an Ed25519 signature. */
export const SIGNATURE_LENGTH = 64;

/** An Ed25519 implementation; `sign` is deterministic (RFC 8032), so both backends give identical bytes. */
export interface Ed25519Backend {
  /** Which implementation this is. */
  readonly name: 'native' | 'noble';
  /** Signs a message; returns the 64-byte signature. */
  sign(message: Uint8Array, secretKey: SecretKey): Uint8Array;
  /** True when the signature verifies; false for any bad signature or unusable public key. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** The same check off the calling thread (Node's thread pool), where the backend can; `verify` otherwise. */
  verifyAsync?(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<boolean>;
}

/** The pure-JS backend (@noble/curves) with RFC 8032 (non-ZIP-215) checks, closest to OpenSSL's. */
export const nobleEd25519: Ed25519Backend = {
  name: 'noble',
  sign(message, secretKey) {
    return ed25519.sign(message, secretBytes(secretKey));
  },
  verify(signature, message, publicKey) {
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

/** The Node crypto backend, or undefined when the runtime has no node:crypto with Ed25519. */
export const nativeEd25519: Ed25519Backend | undefined = createNativeEd25519();

/** The backend used when a call does not name one: native when available, else noble. */
export const defaultEd25519: Ed25519Backend = nativeEd25519 ?? nobleEd25519;

/** Per-call choice of Ed25519 implementation (tests and benchmarks pin one; production uses the default). */
export interface Ed25519Options {
  /** The backend to use; defaults to `defaultEd25519`. */
  backend?: Ed25519Backend;
}

/** Signs raw bytes with an Ed25519 secret key. */
export function signBytes(message: Uint8Array, secretKey: SecretKey, options?: Ed25519Options): Uint8Array {
  return (options?.backend ?? defaultEd25519).sign(message, secretKey);
}

/** Verifies an Ed25519 signature over raw bytes; false for a bad signature. Throws InvalidKeyLengthError for a public key that is not 32 bytes. */
export function verifyBytes(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
  options?: Ed25519Options,
): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new InvalidKeyLengthError('Ed25519 public key', PUBLIC_KEY_LENGTH, publicKey?.length ?? 0);
  }
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LENGTH) return false;
  // On the default backend, a signature verified ahead (verify-ahead.ts) is not verified again.
  if (options?.backend === undefined && signatureMemo.has({ signature, message, publicKey })) return true;
  return (options?.backend ?? defaultEd25519).verify(signature, message, publicKey);
}
