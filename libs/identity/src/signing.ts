// Matrix JSON signing (spec appendix "Signing JSON"): the signature covers the canonical JSON of the
// object without `signatures` and `unsigned`, and is stored as unpadded base64 under
// `signatures.<server name>.<key id>`. Functions return new objects; inputs are never mutated.
import { canonicalJsonBytes } from './canonical-json.js';
import { signBytes, verifyBytes, SIGNATURE_LENGTH, type Ed25519Options } from './ed25519.js';
import { decodeBase64, encodeBase64 } from './encoding.js';
import {
  CanonicalJsonError,
  InvalidServerNameError,
  SignatureInvalidError,
  SignatureMissingError,
  WrongTypeError,
} from './errors.js';
import { parseKeyId } from './ids.js';
import type { SecretKey } from './secret-key.js';

/** `signatures` of a signed object: server name -> key id -> unpadded base64 signature. */
export type Signatures = Record<string, Record<string, string>>;

/** An object with its `signatures`. */
export type Signed<T> = T & { signatures: Signatures };

/** Longest server name accepted when signing (Matrix's server name grammar allows 255 for the host alone). */
const MAX_SERVER_NAME_LENGTH = 255;

/**
 * Signs `object` as `serverName` with `keyId` (`ed25519:<version>`) and returns a copy with the
 * signature added; other signatures and `unsigned` are kept. Throws CanonicalJsonError if the object
 * is not canonical JSON, InvalidKeyIdError for a bad key id.
 */
export function signJson<T extends object>(
  object: T,
  serverName: string,
  keyId: string,
  secretKey: SecretKey,
  options?: Ed25519Options,
): Signed<T> {
  assertServerName(serverName);
  parseKeyId(keyId);
  const existing = readSignatures(object);
  const signature = encodeBase64(signBytes(signedBytes(object), secretKey, options));
  const own = Object.hasOwn(existing, serverName) ? existing[serverName] : undefined;
  const signatures: Signatures = { ...existing, [serverName]: { ...own, [keyId]: signature } };
  return { ...object, signatures };
}

/**
 * Checks that `object` carries a valid signature by `serverName` with `keyId` made by `publicKey`.
 * Throws SignatureMissingError (no such signature), InvalidBase64Error (malformed signature text),
 * SignatureInvalidError (does not verify), CanonicalJsonError or InvalidKeyLengthError.
 */
export function verifyJson(
  object: object,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
  options?: Ed25519Options,
): void {
  assertServerName(serverName);
  parseKeyId(keyId);
  const signatures = readSignatures(object);
  const byServer = Object.hasOwn(signatures, serverName) ? signatures[serverName] : undefined;
  const text = byServer !== undefined && Object.hasOwn(byServer, keyId) ? byServer[keyId] : undefined;
  if (text === undefined) throw new SignatureMissingError(serverName, keyId);
  const signature = decodeBase64(text);
  if (signature.length !== SIGNATURE_LENGTH) throw new SignatureInvalidError(serverName, keyId);
  if (!verifyBytes(signature, signedBytes(object), publicKey, options)) {
    throw new SignatureInvalidError(serverName, keyId);
  }
}

/** Like signJson, but first checks that `object.type` is `type`, so what is signed always names its purpose. Throws WrongTypeError. */
export function signTyped<T extends { type: string }>(
  object: T,
  type: string,
  serverName: string,
  keyId: string,
  secretKey: SecretKey,
  options?: Ed25519Options,
): Signed<T> {
  if (object.type !== type) throw new WrongTypeError(type, object.type);
  return signJson(object, serverName, keyId, secretKey, options);
}

/**
 * Like verifyJson, but first checks that `object.type` is `type`: a signature made for one kind of
 * object (an op) never verifies as another (an account document). Throws WrongTypeError, then as verifyJson.
 */
export function verifyTyped(
  object: object,
  type: string,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
  options?: Ed25519Options,
): void {
  const actual = Object.hasOwn(object, 'type') ? (object as { type?: unknown }).type : undefined;
  if (actual !== type) throw new WrongTypeError(type, actual);
  verifyJson(object, serverName, keyId, publicKey, options);
}

/** The bytes a signature covers: canonical JSON of the object without `signatures` and `unsigned`. */
export function signedBytes(object: object): Uint8Array {
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw new CanonicalJsonError('$', 'only JSON objects can be signed');
  }
  // Rest destructuring copies own properties as data properties, so a "__proto__" key stays a key.
  const { signatures: _signatures, unsigned: _unsigned, ...content } = object as Record<string, unknown>;
  return canonicalJsonBytes(content);
}

function assertServerName(serverName: string): void {
  if (typeof serverName !== 'string' || serverName.length === 0 || serverName.length > MAX_SERVER_NAME_LENGTH) {
    throw new InvalidServerNameError('must be a non-empty string of at most 255 characters');
  }
}

// Checked before use: `signatures` is attacker-controlled on the verify path.
function readSignatures(object: object): Signatures {
  const value: unknown = (object as { signatures?: unknown }).signatures;
  if (value === undefined || !Object.hasOwn(object, 'signatures')) return {};
  if (!isPlainObject(value)) throw new CanonicalJsonError('$.signatures', 'must be an object');
  for (const [server, keys] of Object.entries(value)) {
    if (!isPlainObject(keys))
      throw new CanonicalJsonError(`$.signatures[${JSON.stringify(server)}]`, 'must be an object');
    for (const [keyId, signature] of Object.entries(keys)) {
      if (typeof signature !== 'string') {
        throw new CanonicalJsonError(
          `$.signatures[${JSON.stringify(server)}][${JSON.stringify(keyId)}]`,
          'must be a string',
        );
      }
    }
  }
  return value as Signatures;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
