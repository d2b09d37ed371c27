// Custodial root keys at rest: AES-256-GCM under a 32-byte sealing key from configuration. The
// format is versioned, and the associated data binds each sealed key to its account's server name,
// so a sealed key copied to another account's row does not unseal there.
import { gcm } from '@noble/ciphers/aes.js';
import { decodeBase64, encodeBase64, utf8 } from './encoding.js';
import {
  InvalidBase64Error,
  NativeCryptoUnavailableError,
  SealedKeyInvalidError,
  UnsealFailedError,
} from './errors.js';
import { publicKeyFromServerName, serverNameFromPublicKey } from './ids.js';
import { nodeCrypto } from './node/builtins.js';
import { SEED_LENGTH, SealingKey, SecretKey, secretBytes } from './secret-key.js';

/** Current version byte of the sealed-key format. */
export const SEALED_KEY_VERSION = 1;
/** Algorithm byte for AES-256-GCM with a 12-byte nonce and 16-byte tag. */
export const SEALED_KEY_ALG_AES_256_GCM = 1;

const HEADER_LENGTH = 2;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const SEALED_LENGTH = HEADER_LENGTH + NONCE_LENGTH + SEED_LENGTH + TAG_LENGTH;
const AAD_LABEL = 'polyhome sealed root key\u0000';

/** Which AES-GCM implementation seals: Node's native one or @noble/ciphers. Both give the same bytes. */
export type AeadImplementation = 'native' | 'noble';

/** Options for sealing. */
export interface SealOptions {
  /** AES-GCM implementation; defaults to native where the runtime has it. */
  aead?: AeadImplementation;
  /** Fixed nonce, for test vectors only: reusing a nonce under one sealing key breaks GCM. */
  nonce?: Uint8Array;
}

/**
 * Seals a root key for storage: unpadded base64 of
 * `version(1) | alg(1) | nonce(12) | AES-256-GCM(seed)(32) | tag(16)`, 62 bytes, with associated
 * data `version | alg | "polyhome sealed root key\0" | server name`. The server name is derived from
 * the key itself, so only the account's own name unseals it.
 */
export function sealRootKey(rootKey: SecretKey, sealingKey: SealingKey, options?: SealOptions): string {
  const header = Uint8Array.of(SEALED_KEY_VERSION, SEALED_KEY_ALG_AES_256_GCM);
  const nonce = options?.nonce ?? globalThis.crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  if (nonce.length !== NONCE_LENGTH) throw new SealedKeyInvalidError(`nonce must be ${NONCE_LENGTH} bytes`);
  const aad = associatedData(header, serverNameFromPublicKey(rootKey.publicKey));
  const sealed = aesGcm(options?.aead).encrypt(secretBytes(sealingKey), nonce, secretBytes(rootKey), aad);
  const out = new Uint8Array(SEALED_LENGTH);
  out.set(header);
  out.set(nonce, HEADER_LENGTH);
  out.set(sealed, HEADER_LENGTH + NONCE_LENGTH);
  return encodeBase64(out);
}

/**
 * Unseals a root key sealed for `serverName`. Throws SealedKeyInvalidError for a malformed value,
 * UnsealFailedError for a wrong sealing key, a wrong server name or tampered bytes.
 */
export function unsealRootKey(
  sealed: string,
  serverName: string,
  sealingKey: SealingKey,
  options?: Pick<SealOptions, 'aead'>,
): SecretKey {
  publicKeyFromServerName(serverName);
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(sealed);
  } catch (error) {
    if (error instanceof InvalidBase64Error) throw new SealedKeyInvalidError('not base64');
    throw error;
  }
  if (bytes.length !== SEALED_LENGTH)
    throw new SealedKeyInvalidError(`expected ${SEALED_LENGTH} bytes, got ${bytes.length}`);
  if (bytes[0] !== SEALED_KEY_VERSION) throw new SealedKeyInvalidError(`unknown version ${bytes[0]}`);
  if (bytes[1] !== SEALED_KEY_ALG_AES_256_GCM) throw new SealedKeyInvalidError(`unknown algorithm ${bytes[1]}`);
  const header = bytes.subarray(0, HEADER_LENGTH);
  const nonce = bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH);
  const ciphertext = bytes.subarray(HEADER_LENGTH + NONCE_LENGTH);
  const seed = aesGcm(options?.aead).decrypt(
    secretBytes(sealingKey),
    nonce,
    ciphertext,
    associatedData(header, serverName),
  );
  if (seed === undefined) throw new UnsealFailedError(serverName);
  try {
    const key = SecretKey.fromSeed(seed);
    // Cannot fail when the associated data matched; checked anyway because this is the trust root.
    if (serverNameFromPublicKey(key.publicKey) !== serverName) throw new UnsealFailedError(serverName);
    return key;
  } finally {
    seed.fill(0);
  }
}

function associatedData(header: Uint8Array, serverName: string): Uint8Array {
  const label = utf8(AAD_LABEL + serverName);
  const aad = new Uint8Array(header.length + label.length);
  aad.set(header);
  aad.set(label, header.length);
  return aad;
}

interface AesGcm {
  encrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Returns undefined when authentication fails. */
  decrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

const nobleAesGcm: AesGcm = {
  encrypt: (key, nonce, plaintext, aad) => gcm(key, nonce, aad).encrypt(plaintext),
  decrypt: (key, nonce, sealed, aad) => {
    try {
      return gcm(key, nonce, aad).decrypt(sealed);
    } catch {
      return undefined;
    }
  },
};

function nativeAesGcm(): AesGcm | undefined {
  const crypto = nodeCrypto();
  if (crypto === undefined) return undefined;
  return {
    encrypt(key, nonce, plaintext, aad) {
      const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      const out = Uint8Array.from(body);
      body.fill(0);
      return out;
    },
    decrypt(key, nonce, sealed, aad) {
      const decipher = crypto.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
      const body = decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH));
      try {
        decipher.final();
      } catch {
        body.fill(0);
        return undefined;
      }
      const out = Uint8Array.from(body);
      body.fill(0);
      return out;
    },
  };
}

const native = nativeAesGcm();

function aesGcm(choice: AeadImplementation | undefined): AesGcm {
  if (choice === 'noble') return nobleAesGcm;
  if (choice === 'native' && native === undefined) throw new NativeCryptoUnavailableError('Native AES-GCM');
  return native ?? nobleAesGcm;
}
