// Wrappers for secret bytes. The bytes live in a module-private WeakMap, not on the object, so
// logging, JSON.stringify, util.inspect, spreading or structured-cloning a wrapper can never reveal
// them; only the explicit, greppable `revealSeed()` / `reveal()` calls hand them out.
import { ed25519 } from '@noble/curves/ed25519.js';
import { InvalidKeyLengthError } from './errors.js';
import { encodeHex } from './encoding.js';

const store = new WeakMap<Secret, Uint8Array>();
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** Length in bytes of an Ed25519 seed (the secret key as RFC 8032 defines it). */
export const SEED_LENGTH = 32;
/** Length in bytes of an Ed25519 public key. */
export const PUBLIC_KEY_LENGTH = 32;
/** Length in bytes of a sealing key (AES-256-GCM). */
export const SEALING_KEY_LENGTH = 32;

/** Common base of secret wrappers: never shows its bytes in toString, toJSON or util.inspect. */
export abstract class Secret {
  protected constructor(bytes: Uint8Array) {
    store.set(this, Uint8Array.from(bytes));
  }

  /** A short label for logs; never contains secret bytes. */
  abstract toString(): string;

  /** JSON form for logs and error reports: the label only. */
  toJSON(): string {
    return this.toString();
  }

  /** Shown by console.log and util.inspect in Node: the label only. */
  [INSPECT](): string {
    return this.toString();
  }

  /** Overwrites the secret bytes with zeros; the wrapper is unusable afterwards. */
  destroy(): void {
    store.get(this)?.fill(0);
    store.delete(this);
  }
}

/** The raw bytes of a secret, for this library's own modules only (not exported from the package). */
export function secretBytes(secret: Secret): Uint8Array {
  const bytes = store.get(secret);
  if (bytes === undefined) throw new TypeError('secret was destroyed');
  return bytes;
}

/** An Ed25519 secret key (its 32-byte seed) with its public key; the account root key or a home key. */
export class SecretKey extends Secret {
  readonly #publicKey: Uint8Array;

  private constructor(seed: Uint8Array) {
    super(seed);
    this.#publicKey = ed25519.getPublicKey(seed);
  }

  /** Wraps a copy of a 32-byte seed. Throws InvalidKeyLengthError. */
  static fromSeed(seed: Uint8Array): SecretKey {
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
      throw new InvalidKeyLengthError('Ed25519 seed', SEED_LENGTH, seed instanceof Uint8Array ? seed.length : 0);
    }
    return new SecretKey(seed);
  }

  /** Makes a new key from the runtime's cryptographic random source. */
  static generate(): SecretKey {
    const seed = ed25519.utils.randomSecretKey();
    const key = new SecretKey(seed);
    seed.fill(0);
    return key;
  }

  /** The 32-byte public key (a copy). */
  get publicKey(): Uint8Array {
    return Uint8Array.from(this.#publicKey);
  }

  /** A copy of the 32-byte seed: only for sealing, export, key files or handing to libp2p. */
  revealSeed(): Uint8Array {
    return Uint8Array.from(secretBytes(this));
  }

  /** `SecretKey(ed25519 <first 8 hex digits of the public key>...)`: enough to tell keys apart in logs. */
  toString(): string {
    return `SecretKey(ed25519 ${encodeHex(this.#publicKey.subarray(0, 4))}...)`;
  }
}

/** A 32-byte symmetric key from configuration that seals custodial root keys at rest. */
export class SealingKey extends Secret {
  private constructor(bytes: Uint8Array) {
    super(bytes);
  }

  /** Wraps a copy of 32 key bytes. Throws InvalidKeyLengthError. */
  static fromBytes(bytes: Uint8Array): SealingKey {
    if (!(bytes instanceof Uint8Array) || bytes.length !== SEALING_KEY_LENGTH) {
      throw new InvalidKeyLengthError(
        'sealing key',
        SEALING_KEY_LENGTH,
        bytes instanceof Uint8Array ? bytes.length : 0,
      );
    }
    return new SealingKey(bytes);
  }

  /** Makes a new random sealing key (for setup scripts and tests). */
  static generate(): SealingKey {
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(SEALING_KEY_LENGTH));
    const key = new SealingKey(bytes);
    bytes.fill(0);
    return key;
  }

  /** A copy of the key bytes, for writing the configuration once. */
  reveal(): Uint8Array {
    return Uint8Array.from(secretBytes(this));
  }

  /** `SealingKey(redacted)`. */
  toString(): string {
    return 'SealingKey(redacted)';
  }
}
