// @polyhome/identity: account keys, identifiers, Matrix canonical JSON and signing, signed account
// documents, and secret storage. Framework-free; Node built-ins are reached only through
// src/node/builtins.ts (process.getBuiltinModule), so this entry also loads outside Node.
export * from './errors.js';
export { encodeBase64, decodeBase64, encodeHex, decodeHex } from './encoding.js';
export {
  canonicalJson,
  canonicalJsonBytes,
  canonicalFields,
  compareCodePoints,
  MAX_JSON_DEPTH,
} from './canonical-json.js';
export type { JsonValue, JsonObject, CanonicalFields } from './canonical-json.js';
export { sha256, sha256Hex } from './sha256.js';
export { jsonTextDepth } from './json-depth.js';
export { SecretKey, SealingKey, Secret, SEED_LENGTH, PUBLIC_KEY_LENGTH, SEALING_KEY_LENGTH } from './secret-key.js';
export {
  generateKeyPair,
  keyPairFromSeed,
  secretKeyFromBase64,
  secretKeyFromHex,
  secretKeyToBase64,
  secretKeyToHex,
  publicKeyFromBytes,
  publicKeyFromBase64,
  publicKeyFromHex,
  publicKeyToBase64,
  publicKeyToHex,
  toX25519PublicKey,
  toX25519SecretKey,
  publicKeyPointChecks,
} from './keys.js';
export type { KeyPair } from './keys.js';
export { nobleEd25519, nativeEd25519, defaultEd25519, signBytes, verifyBytes, SIGNATURE_LENGTH } from './ed25519.js';
export type { Ed25519Backend, Ed25519Options } from './ed25519.js';
export { SignatureMemo, signatureMemo, SIGNATURE_MEMO_LIMITS } from './signature-memo.js';
export type { SignatureCheck, SignatureMemoLimits } from './signature-memo.js';
export { verifyAhead } from './verify-ahead.js';
export {
  SERVER_NAME_LENGTH,
  MAX_LOCALPART_LENGTH,
  ROOT_KEY_ID,
  serverNameFromPublicKey,
  publicKeyFromServerName,
  isServerName,
  assertLocalpart,
  formatUserId,
  parseUserId,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
  isPeerId,
  homeKeyId,
  parseKeyId,
  peerIdFromKeyId,
} from './ids.js';
export type { UserIdParts, KeyIdParts } from './ids.js';
export { signJson, verifyJson, signTyped, verifyTyped, signedBytes } from './signing.js';
export type { Signatures, Signed } from './signing.js';
export {
  redactEvent,
  computeContentHash,
  checkContentHash,
  hashAndSignEvent,
  verifyEventSignature,
} from './matrix-event.js';
export type { MatrixEvent, RedactionRoomVersion } from './matrix-event.js';
export {
  ACCOUNT_DOCUMENT_TYPE,
  ACCOUNT_DOCUMENT_LIMITS,
  validateAccountDocument,
  verifyAccountDocument,
  createAccountDocument,
  addHome,
  updateHome,
  removeHome,
  homeStatus,
  revokedCutoff,
  setCrossSigningMaster,
  isCrossSigningMasterKey,
  chooseDocument,
  acceptDocument,
  documentDigest,
} from './account-document.js';
export type {
  AccountDocument,
  AccountDocumentContent,
  Home,
  HomeRole,
  HomeStatus,
  RevocationPin,
  CrossSigningBinding,
  RevokedEntry,
  DocumentChoice,
  DocumentChangeOptions,
} from './account-document.js';
export { sealRootKey, unsealRootKey, SEALED_KEY_VERSION, SEALED_KEY_ALG_AES_256_GCM } from './sealing.js';
export type { SealOptions, AeadImplementation } from './sealing.js';
export {
  exportSecretKey,
  importSecretKey,
  exportedPublicKey,
  DEFAULT_EXPORT_SCRYPT,
  EXPORT_SCRYPT_BOUNDS,
  MIN_PASSPHRASE_LENGTH,
} from './key-export.js';
export type { ScryptParams } from './key-export.js';
export { readNodeKeyFile, writeNodeKeyFile, loadOrCreateNodeKey, KEY_FILE_MODE } from './node/key-file.js';
