// One class per failure, each with a stable `code`, so callers (the HTTP exception filter, the sync
// engine's rejection counters) can switch on codes without parsing messages. Messages describe what
// was wrong with the input and never contain secret bytes.

/** Every stable error code this library throws; a switch over it can be checked for exhaustiveness. */
export type IdentityErrorCode =
  | 'INVALID_BASE64'
  | 'INVALID_HEX'
  | 'INVALID_KEY_LENGTH'
  | 'INVALID_PUBLIC_KEY'
  | 'INVALID_SERVER_NAME'
  | 'INVALID_USER_ID'
  | 'INVALID_PEER_ID'
  | 'INVALID_KEY_ID'
  | 'NOT_CANONICAL_JSON'
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'WRONG_TYPE'
  | 'INVALID_DOCUMENT'
  | 'DOCUMENT_LIMIT_EXCEEDED'
  | 'ACCOUNT_MISMATCH'
  | 'ROOT_KEY_MISMATCH'
  | 'ROLLBACK'
  | 'EQUIVOCATION'
  | 'HOME_EXISTS'
  | 'HOME_NOT_FOUND'
  | 'HOME_REVOKED'
  | 'LAST_HOME'
  | 'UNSUPPORTED_ROOM_VERSION'
  | 'NATIVE_CRYPTO_UNAVAILABLE'
  | 'KEY_FILE_PERMISSIONS'
  | 'KEY_FILE_INVALID'
  | 'SEALED_KEY_INVALID'
  | 'UNSEAL_FAILED'
  | 'EXPORT_INVALID'
  | 'INVALID_PASSPHRASE'
  | 'WRONG_PASSPHRASE';

/** Base class of every error this library throws; `code` is stable across releases. */
export abstract class IdentityError extends Error {
  abstract readonly code: IdentityErrorCode;
}

/** Thrown when a string is not strict base64 (bad character, bad length, bad padding, non-zero trailing bits). */
export class InvalidBase64Error extends IdentityError {
  readonly code = 'INVALID_BASE64';
  constructor(reason: string) {
    super(`Invalid base64: ${reason}`);
    this.name = 'InvalidBase64Error';
  }
}

/** Thrown when a string is not lowercase hex of even length. */
export class InvalidHexError extends IdentityError {
  readonly code = 'INVALID_HEX';
  constructor(reason: string) {
    super(`Invalid hex: ${reason}`);
    this.name = 'InvalidHexError';
  }
}

/** Thrown when key, seed, signature or sealing-key bytes do not have the required length. */
export class InvalidKeyLengthError extends IdentityError {
  readonly code = 'INVALID_KEY_LENGTH';
  constructor(
    readonly what: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`${what} must be ${expected} bytes, got ${actual}`);
    this.name = 'InvalidKeyLengthError';
  }
}

/** Thrown when 32 bytes are not the encoding of a point on Ed25519. */
export class InvalidPublicKeyError extends IdentityError {
  readonly code = 'INVALID_PUBLIC_KEY';
  constructor(reason: string) {
    super(`Invalid Ed25519 public key: ${reason}`);
    this.name = 'InvalidPublicKeyError';
  }
}

/** Thrown when an account server name is not 64 lowercase hex characters encoding an Ed25519 public key, or a signing server name is empty or too long. */
export class InvalidServerNameError extends IdentityError {
  readonly code = 'INVALID_SERVER_NAME';
  constructor(reason: string) {
    super(`Invalid server name: ${reason}`);
    this.name = 'InvalidServerNameError';
  }
}

/** Thrown when a user ID does not match `@<localpart>:<server name>` with the polyhome grammar. */
export class InvalidUserIdError extends IdentityError {
  readonly code = 'INVALID_USER_ID';
  constructor(reason: string) {
    super(`Invalid user ID: ${reason}`);
    this.name = 'InvalidUserIdError';
  }
}

/** Thrown when a string is not the base58btc identity-multihash PeerId of an Ed25519 key. */
export class InvalidPeerIdError extends IdentityError {
  readonly code = 'INVALID_PEER_ID';
  constructor(reason: string) {
    super(`Invalid PeerId: ${reason}`);
    this.name = 'InvalidPeerIdError';
  }
}

/** Thrown when a signing key identifier is not `ed25519:<version>` with a version of `[A-Za-z0-9_]`. */
export class InvalidKeyIdError extends IdentityError {
  readonly code = 'INVALID_KEY_ID';
  constructor(reason: string) {
    super(`Invalid signing key id: ${reason}`);
    this.name = 'InvalidKeyIdError';
  }
}

/** Thrown when a value cannot be encoded as Matrix canonical JSON; `path` points at the offending value. */
export class CanonicalJsonError extends IdentityError {
  readonly code = 'NOT_CANONICAL_JSON';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`Not canonical JSON at ${path}: ${reason}`);
    this.name = 'CanonicalJsonError';
  }
}

/** Thrown when an object has no signature under `signatures.<server name>.<key id>`. */
export class SignatureMissingError extends IdentityError {
  readonly code = 'SIGNATURE_MISSING';
  constructor(
    readonly serverName: string,
    readonly keyId: string,
  ) {
    super(`No signature by ${serverName} with key ${keyId}`);
    this.name = 'SignatureMissingError';
  }
}

/** Thrown when a signature is present but does not verify (wrong key, changed content, mangled bytes). */
export class SignatureInvalidError extends IdentityError {
  readonly code = 'SIGNATURE_INVALID';
  constructor(
    readonly serverName: string,
    readonly keyId: string,
  ) {
    super(`Signature by ${serverName} with key ${keyId} does not verify`);
    this.name = 'SignatureInvalidError';
  }
}

/** Thrown when a signed object's `type` is not the kind the caller asked for (a replay across purposes). */
export class WrongTypeError extends IdentityError {
  readonly code = 'WRONG_TYPE';
  constructor(
    readonly expected: string,
    readonly actual: unknown,
  ) {
    super(`Expected a signed object of type ${JSON.stringify(expected)}, got ${describe(actual)}`);
    this.name = 'WrongTypeError';
  }
}

/** Thrown when an account document does not have the exact structure of DESIGN.md (unknown or missing fields, bad values). */
export class InvalidDocumentError extends IdentityError {
  readonly code = 'INVALID_DOCUMENT';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`Invalid account document at ${path}: ${reason}`);
    this.name = 'InvalidDocumentError';
  }
}

/** Thrown when an account document exceeds one of the caps in `ACCOUNT_DOCUMENT_LIMITS`. */
export class DocumentLimitError extends IdentityError {
  readonly code = 'DOCUMENT_LIMIT_EXCEEDED';
  constructor(
    readonly limit: string,
    readonly max: number,
    readonly actual: number,
  ) {
    super(`Account document exceeds ${limit}: ${actual} > ${max}`);
    this.name = 'DocumentLimitError';
  }
}

/** Thrown when two account documents (or a document and an expected account) belong to different accounts. */
export class AccountMismatchError extends IdentityError {
  readonly code = 'ACCOUNT_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`Expected a document of ${expected}, got one of ${actual}`);
    this.name = 'AccountMismatchError';
  }
}

/** Thrown when a root secret key is used on an account whose server name is another key's. */
export class RootKeyMismatchError extends IdentityError {
  readonly code = 'ROOT_KEY_MISMATCH';
  constructor(readonly serverName: string) {
    super(`The given root key is not the key of account ${serverName}`);
    this.name = 'RootKeyMismatchError';
  }
}

/** Thrown when an incoming account document has a lower `seq` than the one already held (replay of an old document). */
export class RollbackError extends IdentityError {
  readonly code = 'ROLLBACK';
  constructor(
    readonly heldSeq: number,
    readonly incomingSeq: number,
  ) {
    super(`Account document rollback refused: holding seq ${heldSeq}, offered seq ${incomingSeq}`);
    this.name = 'RollbackError';
  }
}

/** Thrown when two differently-signed-over account documents share one `seq`: the root key signed two histories. */
export class EquivocationError extends IdentityError {
  readonly code = 'EQUIVOCATION';
  constructor(
    readonly serverName: string,
    readonly seq: number,
  ) {
    super(`Account ${serverName} equivocated: two different documents with seq ${seq}`);
    this.name = 'EquivocationError';
  }
}

/** Thrown when adding a home whose PeerId is already a home of the account. */
export class HomeExistsError extends IdentityError {
  readonly code = 'HOME_EXISTS';
  constructor(readonly peerId: string) {
    super(`Home ${peerId} is already a home of this account`);
    this.name = 'HomeExistsError';
  }
}

/** Thrown when removing a home that is not in the account document. */
export class HomeNotFoundError extends IdentityError {
  readonly code = 'HOME_NOT_FOUND';
  constructor(readonly peerId: string) {
    super(`Home ${peerId} is not a home of this account`);
    this.name = 'HomeNotFoundError';
  }
}

/** Thrown when re-adding a revoked home: its cutoff would become ambiguous, so a returning node needs a new key. */
export class HomeRevokedError extends IdentityError {
  readonly code = 'HOME_REVOKED';
  constructor(readonly peerId: string) {
    super(`Home ${peerId} was revoked and cannot be added again; give the node a new key`);
    this.name = 'HomeRevokedError';
  }
}

/** Thrown when removing the only home: a document with no homes could not be served anywhere. */
export class LastHomeError extends IdentityError {
  readonly code = 'LAST_HOME';
  constructor(readonly peerId: string) {
    super(`Home ${peerId} is the last home of this account and cannot be removed`);
    this.name = 'LastHomeError';
  }
}

/** Thrown when an event redaction is asked for a room version this library does not implement. */
export class UnsupportedRoomVersionError extends IdentityError {
  readonly code = 'UNSUPPORTED_ROOM_VERSION';
  constructor(readonly roomVersion: string) {
    super(`Room version ${JSON.stringify(roomVersion)} is not supported (supported: 1 to 5)`);
    this.name = 'UnsupportedRoomVersionError';
  }
}

/** Thrown when a Node-only facility (native crypto, key files) is used in a runtime that lacks it. */
export class NativeCryptoUnavailableError extends IdentityError {
  readonly code = 'NATIVE_CRYPTO_UNAVAILABLE';
  constructor(readonly facility: string) {
    super(`${facility} needs Node.js built-ins, which this runtime does not have`);
    this.name = 'NativeCryptoUnavailableError';
  }
}

/** Thrown when a node key file is readable or writable by group or others. */
export class KeyFilePermissionsError extends IdentityError {
  readonly code = 'KEY_FILE_PERMISSIONS';
  constructor(
    readonly path: string,
    readonly mode: number,
  ) {
    super(
      `Key file ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}; it must not be accessible ` +
        `to group or others (run: chmod 600 ${path})`,
    );
    this.name = 'KeyFilePermissionsError';
  }
}

/** Thrown when a node key file is not a regular file of exactly 32 bytes. */
export class KeyFileInvalidError extends IdentityError {
  readonly code = 'KEY_FILE_INVALID';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`Key file ${path} is invalid: ${reason}`);
    this.name = 'KeyFileInvalidError';
  }
}

/** Thrown when a sealed root key is not in the versioned sealed-key format (bad length, version or algorithm). */
export class SealedKeyInvalidError extends IdentityError {
  readonly code = 'SEALED_KEY_INVALID';
  constructor(reason: string) {
    super(`Sealed key is malformed: ${reason}`);
    this.name = 'SealedKeyInvalidError';
  }
}

/** Thrown when a sealed root key fails authentication: wrong sealing key, wrong server name, or tampered bytes. */
export class UnsealFailedError extends IdentityError {
  readonly code = 'UNSEAL_FAILED';
  constructor(readonly serverName: string) {
    super(`Could not unseal the root key of ${serverName}: wrong sealing key, wrong account, or tampered data`);
    this.name = 'UnsealFailedError';
  }
}

/** Thrown when a passphrase-protected key export is malformed or asks for out-of-range KDF parameters. */
export class ExportInvalidError extends IdentityError {
  readonly code = 'EXPORT_INVALID';
  constructor(reason: string) {
    super(`Key export is malformed: ${reason}`);
    this.name = 'ExportInvalidError';
  }
}

/** Thrown when a passphrase for a key export is not a non-empty string. */
export class InvalidPassphraseError extends IdentityError {
  readonly code = 'INVALID_PASSPHRASE';
  constructor(reason: string) {
    super(`Invalid passphrase: ${reason}`);
    this.name = 'InvalidPassphraseError';
  }
}

/** Thrown when a key export does not decrypt: the passphrase is wrong (or the export was altered). */
export class WrongPassphraseError extends IdentityError {
  readonly code = 'WRONG_PASSPHRASE';
  constructor() {
    super('Wrong passphrase, or the export was altered');
    this.name = 'WrongPassphraseError';
  }
}

// Keeps error messages short and safe when the offending value is attacker-controlled.
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
  if (value === undefined) return 'no type';
  return typeof value;
}
