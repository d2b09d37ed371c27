// Passphrase-protected export of a secret key (a user taking custody of a hosted account's root key,
// or a backup): scrypt turns the passphrase into a key, XChaCha20-Poly1305 seals the seed. Both are
// from the noble packages so export and import work in any runtime; the KDF parameters travel in the
// export and are bounded on import, so a crafted file cannot make the importer spend unbounded memory.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { bytesEqual, decodeBase64, encodeBase64, utf8 } from './encoding.js';
import { ExportInvalidError, IdentityError, InvalidPassphraseError, WrongPassphraseError } from './errors.js';
import { SEED_LENGTH, SecretKey, secretBytes } from './secret-key.js';

/** scrypt parameters stored in an export: N = 2^log2N, block size r, parallelism p. */
export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly log2N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelism. */
  readonly p: number;
}

/** Default scrypt parameters: N = 2^17, r = 8, p = 1 (128 MiB, about 0.5 s here), the OWASP minimum for scrypt. */
/**
 * Shortest passphrase a new key export may be sealed under, wherever it is made (`polyhome export`, the server's
 * custody handover): an export leaves its home and can be guessed at offline. Reading an export takes the
 * passphrase it was made with, whatever its length.
 */
export const MIN_PASSPHRASE_LENGTH = 12;

export const DEFAULT_EXPORT_SCRYPT: ScryptParams = Object.freeze({ log2N: 17, r: 8, p: 1 });

/** Bounds on scrypt parameters accepted in an export (both when writing and when reading one). */
export const EXPORT_SCRYPT_BOUNDS = Object.freeze({
  minLog2N: 10,
  maxLog2N: 20,
  maxR: 16,
  maxP: 4,
  maxMemoryBytes: 2 ** 30,
});

const MAGIC = utf8('PHKX');
const VERSION = 1;
const KDF_SCRYPT = 1;
const SALT_LENGTH = 16;
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
// magic(4) version(1) kdf(1) log2N(1) r(1) p(1) salt(16) nonce(24) publicKey(32)
const HEADER_LENGTH = 4 + 1 + 1 + 3 + SALT_LENGTH + NONCE_LENGTH + 32;
const EXPORT_LENGTH = HEADER_LENGTH + SEED_LENGTH + TAG_LENGTH;

/**
 * Exports a secret key under a passphrase. Result: unpadded base64 of
 * `"PHKX" | version 1 | kdf 1 (scrypt) | log2N | r | p | salt(16) | nonce(24) | public key(32) |
 * XChaCha20-Poly1305(seed)(32) | tag(16)`, 129 bytes; the whole header is associated data.
 * The passphrase is NFC-normalised and UTF-8 encoded. Throws InvalidPassphraseError or ExportInvalidError (parameters out of bounds).
 */
export async function exportSecretKey(
  secretKey: SecretKey,
  passphrase: string,
  options?: { scrypt?: ScryptParams },
): Promise<string> {
  const params = options?.scrypt ?? DEFAULT_EXPORT_SCRYPT;
  checkParams(params);
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_LENGTH));
  const header = new Uint8Array(HEADER_LENGTH);
  header.set(MAGIC);
  header.set([VERSION, KDF_SCRYPT, params.log2N, params.r, params.p], 4);
  header.set(salt, 9);
  header.set(nonce, 9 + SALT_LENGTH);
  header.set(secretKey.publicKey, 9 + SALT_LENGTH + NONCE_LENGTH);
  const key = await deriveKey(passphrase, salt, params);
  try {
    const sealed = xchacha20poly1305(key, nonce, header).encrypt(secretBytes(secretKey));
    const out = new Uint8Array(EXPORT_LENGTH);
    out.set(header);
    out.set(sealed, HEADER_LENGTH);
    return encodeBase64(out);
  } finally {
    key.fill(0);
  }
}

/** The public key an export is for, readable without the passphrase (to show which account it is). Throws ExportInvalidError. */
export function exportedPublicKey(exported: string): Uint8Array {
  return parseExport(exported).publicKey;
}

/** Imports a key exported by exportSecretKey. Throws ExportInvalidError, InvalidPassphraseError or WrongPassphraseError. */
export async function importSecretKey(exported: string, passphrase: string): Promise<SecretKey> {
  const parsed = parseExport(exported);
  const key = await deriveKey(passphrase, parsed.salt, parsed.params);
  let seed: Uint8Array;
  try {
    seed = xchacha20poly1305(key, parsed.nonce, parsed.header).decrypt(parsed.sealed);
  } catch {
    throw new WrongPassphraseError();
  } finally {
    key.fill(0);
  }
  try {
    const secretKey = SecretKey.fromSeed(seed);
    if (!bytesEqual(secretKey.publicKey, parsed.publicKey))
      throw new ExportInvalidError('key does not match its public key');
    return secretKey;
  } finally {
    seed.fill(0);
  }
}

interface ParsedExport {
  header: Uint8Array;
  params: ScryptParams;
  salt: Uint8Array;
  nonce: Uint8Array;
  publicKey: Uint8Array;
  sealed: Uint8Array;
}

function parseExport(exported: string): ParsedExport {
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(typeof exported === 'string' ? exported.trim() : exported);
  } catch (error) {
    if (error instanceof IdentityError) throw new ExportInvalidError('not base64');
    throw error;
  }
  if (bytes.length !== EXPORT_LENGTH)
    throw new ExportInvalidError(`expected ${EXPORT_LENGTH} bytes, got ${bytes.length}`);
  if (!bytesEqual(bytes.subarray(0, 4), MAGIC)) throw new ExportInvalidError('not a polyhome key export');
  if (bytes[4] !== VERSION) throw new ExportInvalidError(`unknown version ${bytes[4]}`);
  if (bytes[5] !== KDF_SCRYPT) throw new ExportInvalidError(`unknown key derivation ${bytes[5]}`);
  const params: ScryptParams = { log2N: bytes[6]!, r: bytes[7]!, p: bytes[8]! };
  checkParams(params);
  return {
    header: bytes.subarray(0, HEADER_LENGTH),
    params,
    salt: bytes.subarray(9, 9 + SALT_LENGTH),
    nonce: bytes.subarray(9 + SALT_LENGTH, 9 + SALT_LENGTH + NONCE_LENGTH),
    publicKey: bytes.slice(9 + SALT_LENGTH + NONCE_LENGTH, HEADER_LENGTH),
    sealed: bytes.subarray(HEADER_LENGTH),
  };
}

function checkParams(params: ScryptParams): void {
  const b = EXPORT_SCRYPT_BOUNDS;
  const ok =
    Number.isInteger(params.log2N) &&
    Number.isInteger(params.r) &&
    Number.isInteger(params.p) &&
    params.log2N >= b.minLog2N &&
    params.log2N <= b.maxLog2N &&
    params.r >= 1 &&
    params.r <= b.maxR &&
    params.p >= 1 &&
    params.p <= b.maxP &&
    128 * 2 ** params.log2N * params.r <= b.maxMemoryBytes;
  if (!ok)
    throw new ExportInvalidError(
      `scrypt parameters out of bounds (log2N ${params.log2N}, r ${params.r}, p ${params.p})`,
    );
}

async function deriveKey(passphrase: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  if (typeof passphrase !== 'string' || passphrase.length === 0)
    throw new InvalidPassphraseError('must be a non-empty string');
  // A lone surrogate would become U+FFFD in UTF-8, making distinct passphrases equal.
  if (/\p{Cs}/u.test(passphrase)) throw new InvalidPassphraseError('contains a lone surrogate');
  const password = utf8(passphrase.normalize('NFC'));
  try {
    return await scryptAsync(password, salt, {
      N: 2 ** params.log2N,
      r: params.r,
      p: params.p,
      dkLen: 32,
      maxmem: EXPORT_SCRYPT_BOUNDS.maxMemoryBytes + 1024 * 1024,
    });
  } finally {
    password.fill(0);
  }
}
