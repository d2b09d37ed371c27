// The account document (DESIGN.md "The account document"): the set of homes of an account, signed
// by the root key as `ed25519:root`; the highest `seq` wins. Validation is exact (unknown fields are
// refused) and bounded (every list and string has a cap), because documents arrive from the DHT and
// from peers before anything about them is trusted.
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalJsonBytes } from './canonical-json.js';
import type { Ed25519Options } from './ed25519.js';
import { bytesEqual, encodeHex } from './encoding.js';
import {
  AccountMismatchError,
  DocumentLimitError,
  EquivocationError,
  HomeExistsError,
  HomeNotFoundError,
  HomeRevokedError,
  IdentityError,
  InvalidDocumentError,
  LastHomeError,
  RollbackError,
  RootKeyMismatchError,
  WrongTypeError,
} from './errors.js';
import { formatUserId, isPeerId, parseUserId, ROOT_KEY_ID, serverNameFromPublicKey } from './ids.js';
import type { SecretKey } from './secret-key.js';
import { signedBytes, signTyped, verifyTyped, type Signatures, type Signed } from './signing.js';

/** The `type` of an account document; part of what the root key signs. */
export const ACCOUNT_DOCUMENT_TYPE = 'polyhome.account';

/** Caps on account documents, enforced on every document created or received. */
export const ACCOUNT_DOCUMENT_LIMITS = Object.freeze({
  /** Most homes one account may have. */
  maxHomes: 32,
  /** Longest home name, in Unicode code points. */
  maxHomeNameLength: 64,
  /** Most listen addresses per home. */
  maxAddrs: 8,
  /** Longest multiaddr string, in characters. */
  maxAddrLength: 256,
  /** Most revoked homes kept in one document. */
  maxRevoked: 1024,
  /** Most signing entities in `signatures`. */
  maxSignatureServers: 4,
  /** Most signatures per signing entity. */
  maxSignaturesPerServer: 8,
  /** Largest canonical JSON encoding of a whole document, in bytes. */
  maxDocumentBytes: 64 * 1024,
});

/** Whether a home is an always-on server or a user's client-side node. */
export type HomeRole = 'server' | 'client';

/** One home of an account, as listed in the account document. */
export interface Home {
  /** The home's libp2p PeerId (its key signs as `ed25519:<peer_id>`). */
  readonly peer_id: string;
  /** Server (always-on companion) or client (user's own node). */
  readonly role: HomeRole;
  /** A human-readable name, e.g. "companion" or "laptop". */
  readonly name: string;
  /** Multiaddrs the home listens on; empty for homes that only dial out. */
  readonly addrs: readonly string[];
}

/** The signed fields of an account document, exactly as DESIGN.md lists them. */
export interface AccountDocumentContent {
  /** Always `polyhome.account`. */
  readonly type: typeof ACCOUNT_DOCUMENT_TYPE;
  /** `@<localpart>:<server name>`; the server name is the root public key. */
  readonly user_id: string;
  /** Version number: starts at 1, each change adds one; the highest wins. */
  readonly seq: number;
  /** The current homes, in the order they were added. */
  readonly homes: readonly Home[];
  /**
   * Removed homes: PeerId -> last op seq accepted from it, or that seq with the digest of the origin's log
   * 1..seq the remover held (a pin: see RevocationPin).
   */
  readonly revoked: Readonly<Record<string, RevokedEntry>>;
  /** Milliseconds since the epoch when this version was made (informational; `seq` orders). */
  readonly ts: number;
  /**
   * The account's Matrix cross-signing master key (unpadded base64 Ed25519), so only the root key can change
   * it; absent in documents made before it, and until the account sets up cross-signing.
   */
  readonly cross_signing?: CrossSigningBinding;
}

/** The cross-signing keys an account document names. */
export interface CrossSigningBinding {
  /** The master key: unpadded base64 of 32 bytes. */
  readonly master: string;
}

/**
 * The revocation of a home with its log pinned: `digest` is the log digest (32 lowercase hex, as sync
 * sessions exchange them) of the origin's ops 1..seq that the remover held. Every replica then holds that
 * log and no other version of it, whatever the revoked home signs afterwards.
 */
export interface RevocationPin {
  readonly seq: number;
  readonly digest: string;
}

/** One entry of `revoked`: a bare cutoff (documents made before pins), or a pinned one. */
export type RevokedEntry = number | RevocationPin;

/** A signed account document. */
export type AccountDocument = Signed<AccountDocumentContent>;

/** Options of the functions that make a new document version. */
export interface DocumentChangeOptions extends Ed25519Options {
  /** Timestamp for `ts`; defaults to Date.now(). */
  ts?: number;
}

const TOP_LEVEL_FIELDS = ['type', 'user_id', 'seq', 'homes', 'revoked', 'ts', 'signatures'] as const;
const OPTIONAL_TOP_LEVEL_FIELDS = ['cross_signing'] as const;
const CROSS_SIGNING_FIELDS = ['master'] as const;
// Unpadded standard base64 of 32 bytes: 43 characters, the last one carrying 2 bits (so A, E, I, ... or w).
const ED25519_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]$/;
const HOME_FIELDS = ['peer_id', 'role', 'name', 'addrs'] as const;
const PIN_FIELDS = ['seq', 'digest'] as const;
const PIN_DIGEST = /^[0-9a-f]{32}$/;
const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
const MULTIADDR_TEXT = /^\/[\x21-\x7e]*$/;
// Unpadded base64 of a 64-byte signature is 86 characters; leave room for padded or other algorithms.
const MAX_SIGNATURE_TEXT = 128;

/**
 * Checks that a value has exactly the account document structure and stays within
 * ACCOUNT_DOCUMENT_LIMITS. Does not check the signature (see verifyAccountDocument).
 * Throws WrongTypeError, InvalidDocumentError or DocumentLimitError.
 */
export function validateAccountDocument(value: unknown): AccountDocument {
  const doc = validateDocumentShape(value);
  validateDocumentKeys(doc);
  return doc;
}

// Everything validateAccountDocument checks except the PeerIds of homes and revoked entries, whose checks
// (one point decompression each, up to maxHomes + maxRevoked of them) are left for after the signature.
function validateDocumentShape(value: unknown): AccountDocument {
  const doc = expectRecord(value, '$');
  const type = Object.hasOwn(doc, 'type') ? doc.type : undefined;
  if (type !== ACCOUNT_DOCUMENT_TYPE) throw new WrongTypeError(ACCOUNT_DOCUMENT_TYPE, type);
  expectExactFields(doc, TOP_LEVEL_FIELDS, '$', OPTIONAL_TOP_LEVEL_FIELDS);
  const userId = expectString(doc.user_id, '$.user_id');
  try {
    parseUserId(userId);
  } catch (error) {
    throw rethrowAt(error, '$.user_id');
  }
  expectInteger(doc.seq, '$.seq', 1);
  expectInteger(doc.ts, '$.ts', 0);
  const homes = validateHomes(doc.homes);
  validateRevoked(doc.revoked, homes);
  validateSignatures(doc.signatures);
  if (Object.hasOwn(doc, 'cross_signing')) validateCrossSigning(doc.cross_signing);
  const size = canonicalJsonBytes(doc).length;
  if (size > ACCOUNT_DOCUMENT_LIMITS.maxDocumentBytes) {
    throw new DocumentLimitError('maxDocumentBytes', ACCOUNT_DOCUMENT_LIMITS.maxDocumentBytes, size);
  }
  return doc as unknown as AccountDocument;
}

/**
 * Validates a received document and checks its root signature: the key is derived from the server
 * name in `user_id`, so no key server is asked. With `expectedServerName` or `expectedUserId` it also
 * checks the document is for that account. Throws the errors of validateAccountDocument, then
 * AccountMismatchError, SignatureMissingError, InvalidBase64Error or SignatureInvalidError.
 */
export function verifyAccountDocument(
  value: unknown,
  options?: Ed25519Options & { expectedServerName?: string; expectedUserId?: string },
): AccountDocument {
  const doc = validateDocumentShape(value);
  const { serverName, publicKey } = parseUserId(doc.user_id);
  if (options?.expectedUserId !== undefined && options.expectedUserId !== doc.user_id) {
    throw new AccountMismatchError(options.expectedUserId, doc.user_id);
  }
  if (options?.expectedServerName !== undefined && options.expectedServerName !== serverName) {
    throw new AccountMismatchError(options.expectedServerName, serverName);
  }
  // Signature before content: a forged document costs one signature check, not a key check per entry.
  verifyTyped(doc, ACCOUNT_DOCUMENT_TYPE, serverName, ROOT_KEY_ID, publicKey, options);
  validateDocumentKeys(doc);
  return doc;
}

/** Makes the first document of a new account (seq 1) with its first home, signed by the root key. */
export function createAccountDocument(
  params: { localpart: string; rootKey: SecretKey; home: Home },
  options?: DocumentChangeOptions,
): AccountDocument {
  const serverName = serverNameFromPublicKey(params.rootKey.publicKey);
  const content: AccountDocumentContent = {
    type: ACCOUNT_DOCUMENT_TYPE,
    user_id: formatUserId(params.localpart, serverName),
    seq: 1,
    homes: [copyHome(params.home)],
    revoked: {},
    ts: options?.ts ?? Date.now(),
  };
  return signDocument(content, params.rootKey, options);
}

/** Makes the next document version with one more home. Throws HomeExistsError, HomeRevokedError, RootKeyMismatchError or a limit error. */
export function addHome(
  doc: AccountDocument,
  home: Home,
  rootKey: SecretKey,
  options?: DocumentChangeOptions,
): AccountDocument {
  const current = validateAccountDocument(doc);
  if (current.homes.some((h) => h.peer_id === home.peer_id)) throw new HomeExistsError(home.peer_id);
  if (Object.hasOwn(current.revoked, home.peer_id)) throw new HomeRevokedError(home.peer_id);
  return nextVersion(current, { homes: [...current.homes, copyHome(home)] }, rootKey, options);
}

/** Makes the next document version with a home's name, role or addresses changed. Throws HomeNotFoundError or RootKeyMismatchError. */
export function updateHome(
  doc: AccountDocument,
  home: Home,
  rootKey: SecretKey,
  options?: DocumentChangeOptions,
): AccountDocument {
  const current = validateAccountDocument(doc);
  if (!current.homes.some((h) => h.peer_id === home.peer_id)) throw new HomeNotFoundError(home.peer_id);
  const homes = current.homes.map((h) => (h.peer_id === home.peer_id ? copyHome(home) : h));
  return nextVersion(current, { homes }, rootKey, options);
}

/**
 * Makes the next document version without a home, recording in `revoked` the last op seq accepted
 * from it so it cannot backdate new ops, pinned to the digest of its log when `cutoff` is a pin (a bare
 * seq pins nothing: only documents made before pins need it). Throws HomeNotFoundError, LastHomeError,
 * InvalidDocumentError or RootKeyMismatchError.
 */
export function removeHome(
  doc: AccountDocument,
  peerId: string,
  cutoff: RevokedEntry,
  rootKey: SecretKey,
  options?: DocumentChangeOptions,
): AccountDocument {
  const current = validateAccountDocument(doc);
  if (!current.homes.some((h) => h.peer_id === peerId)) throw new HomeNotFoundError(peerId);
  if (current.homes.length === 1) throw new LastHomeError(peerId);
  const entry = typeof cutoff === 'number' ? cutoff : { seq: cutoff.seq, digest: cutoff.digest };
  validateRevokedEntry(entry, `$.revoked[${JSON.stringify(peerId)}]`);
  const revoked = { ...current.revoked, [peerId]: entry };
  return nextVersion(current, { homes: current.homes.filter((h) => h.peer_id !== peerId), revoked }, rootKey, options);
}

/** Whether `text` can be named as a cross-signing master key: an Ed25519 public key in unpadded base64. */
export function isCrossSigningMasterKey(text: string): boolean {
  return ED25519_BASE64.test(text);
}

/**
 * Makes the next document version naming `master` (unpadded base64 Ed25519) as the account's cross-signing
 * master key. Throws InvalidDocumentError or RootKeyMismatchError.
 */
export function setCrossSigningMaster(
  doc: AccountDocument,
  master: string,
  rootKey: SecretKey,
  options?: DocumentChangeOptions,
): AccountDocument {
  const current = validateAccountDocument(doc);
  return nextVersion(current, { cross_signing: { master } }, rootKey, options);
}

/** What an account document says about a PeerId: a current home, a revoked one with its cutoff, or unknown. */
export type HomeStatus =
  | { readonly kind: 'home'; readonly home: Home }
  | { readonly kind: 'revoked'; readonly lastAcceptedSeq: number; readonly pinnedDigest: string | undefined }
  | { readonly kind: 'unknown' };

/** Looks up a PeerId in a document: the check every op's origin goes through. */
export function homeStatus(doc: AccountDocument, peerId: string): HomeStatus {
  const home = doc.homes.find((h) => h.peer_id === peerId);
  if (home !== undefined) return { kind: 'home', home };
  if (Object.hasOwn(doc.revoked, peerId)) {
    const entry = doc.revoked[peerId]!;
    return typeof entry === 'number'
      ? { kind: 'revoked', lastAcceptedSeq: entry, pinnedDigest: undefined }
      : { kind: 'revoked', lastAcceptedSeq: entry.seq, pinnedDigest: entry.digest };
  }
  return { kind: 'unknown' };
}

/** The cutoff of a `revoked` entry (the last op seq accepted from the home). */
export function revokedCutoff(entry: RevokedEntry): number {
  return typeof entry === 'number' ? entry : entry.seq;
}

/** The outcome of comparing a held document with an incoming one. */
export type DocumentChoice =
  /** The incoming document is newer: hold it from now on. */
  | { readonly kind: 'accept'; readonly document: AccountDocument }
  /** The incoming document is the one already held (same seq, same signed content). */
  | { readonly kind: 'keep'; readonly document: AccountDocument }
  /** Same seq, different content: the root key signed two versions. Keep the held one and report. */
  | { readonly kind: 'equivocation'; readonly document: AccountDocument; readonly conflicting: AccountDocument }
  /** The incoming document is older than the held one: a replay. Keep the held one. */
  | { readonly kind: 'rollback'; readonly document: AccountDocument; readonly stale: AccountDocument };

/**
 * Chooses between the held document (undefined if none) and a verified incoming one of the same
 * account. Pure: the caller stores `document` and acts on `kind`. Throws AccountMismatchError.
 */
export function chooseDocument(held: AccountDocument | undefined, incoming: AccountDocument): DocumentChoice {
  if (held === undefined) return { kind: 'accept', document: incoming };
  if (held.user_id !== incoming.user_id) throw new AccountMismatchError(held.user_id, incoming.user_id);
  if (incoming.seq > held.seq) return { kind: 'accept', document: incoming };
  if (incoming.seq < held.seq) return { kind: 'rollback', document: held, stale: incoming };
  // Signatures are left out: Ed25519 signatures need not be unique, the signed content is what counts.
  if (bytesEqual(signedBytes(held), signedBytes(incoming))) return { kind: 'keep', document: held };
  return { kind: 'equivocation', document: held, conflicting: incoming };
}

/**
 * SHA-256 (hex) of a document's signed content, signatures left out as chooseDocument leaves them: two
 * documents of one seq with different digests are an equivocation, and the digests name them in reports.
 */
export function documentDigest(document: AccountDocument): string {
  return encodeHex(sha256(signedBytes(document)));
}

/** chooseDocument for callers that treat rollback and equivocation as errors: returns the document to hold. Throws RollbackError, EquivocationError or AccountMismatchError. */
export function acceptDocument(held: AccountDocument | undefined, incoming: AccountDocument): AccountDocument {
  const choice = chooseDocument(held, incoming);
  switch (choice.kind) {
    case 'accept':
    case 'keep':
      return choice.document;
    case 'rollback':
      throw new RollbackError(choice.document.seq, choice.stale.seq);
    case 'equivocation':
      throw new EquivocationError(parseUserId(choice.document.user_id).serverName, choice.document.seq);
  }
}

function nextVersion(
  current: AccountDocument,
  change: Partial<Pick<AccountDocumentContent, 'homes' | 'revoked' | 'cross_signing'>>,
  rootKey: SecretKey,
  options: DocumentChangeOptions | undefined,
): AccountDocument {
  const crossSigning = change.cross_signing ?? current.cross_signing;
  const content: AccountDocumentContent = {
    type: ACCOUNT_DOCUMENT_TYPE,
    user_id: current.user_id,
    seq: current.seq + 1,
    homes: change.homes ?? current.homes,
    revoked: change.revoked ?? current.revoked,
    ts: options?.ts ?? Date.now(),
    ...(crossSigning === undefined ? {} : { cross_signing: { master: crossSigning.master } }),
  };
  return signDocument(content, rootKey, options);
}

function signDocument(content: AccountDocumentContent, rootKey: SecretKey, options?: Ed25519Options): AccountDocument {
  const { serverName } = parseUserId(content.user_id);
  if (serverNameFromPublicKey(rootKey.publicKey) !== serverName) throw new RootKeyMismatchError(serverName);
  // Validate what we are about to sign: a document we would refuse from a peer must never be made.
  validateAccountDocument({ ...content, signatures: {} });
  return signTyped(content, ACCOUNT_DOCUMENT_TYPE, serverName, ROOT_KEY_ID, rootKey, options);
}

function copyHome(home: Home): Home {
  return { peer_id: home.peer_id, role: home.role, name: home.name, addrs: [...home.addrs] };
}

function validateHomes(value: unknown): Home[] {
  const homes = expectArray(value, '$.homes');
  if (homes.length === 0) throw new InvalidDocumentError('$.homes', 'an account needs at least one home');
  if (homes.length > ACCOUNT_DOCUMENT_LIMITS.maxHomes) {
    throw new DocumentLimitError('maxHomes', ACCOUNT_DOCUMENT_LIMITS.maxHomes, homes.length);
  }
  const seen = new Set<string>();
  return homes.map((entry, i) => {
    const path = `$.homes[${i}]`;
    const home = expectRecord(entry, path);
    expectExactFields(home, HOME_FIELDS, path);
    const peerId = expectString(home.peer_id, `${path}.peer_id`);
    if (seen.has(peerId)) throw new InvalidDocumentError(`${path}.peer_id`, 'the same home is listed twice');
    seen.add(peerId);
    if (home.role !== 'server' && home.role !== 'client') {
      throw new InvalidDocumentError(`${path}.role`, 'must be "server" or "client"');
    }
    const name = expectString(home.name, `${path}.name`);
    const nameLength = [...name].length;
    if (nameLength === 0) throw new InvalidDocumentError(`${path}.name`, 'must not be empty');
    if (nameLength > ACCOUNT_DOCUMENT_LIMITS.maxHomeNameLength) {
      throw new DocumentLimitError('maxHomeNameLength', ACCOUNT_DOCUMENT_LIMITS.maxHomeNameLength, nameLength);
    }
    if (CONTROL_OR_LONE_SURROGATE.test(name)) {
      throw new InvalidDocumentError(`${path}.name`, 'contains a control character or lone surrogate');
    }
    const addrs = expectArray(home.addrs, `${path}.addrs`);
    if (addrs.length > ACCOUNT_DOCUMENT_LIMITS.maxAddrs) {
      throw new DocumentLimitError('maxAddrs', ACCOUNT_DOCUMENT_LIMITS.maxAddrs, addrs.length);
    }
    addrs.forEach((addr, j) => {
      const text = expectString(addr, `${path}.addrs[${j}]`);
      if (text.length > ACCOUNT_DOCUMENT_LIMITS.maxAddrLength) {
        throw new DocumentLimitError('maxAddrLength', ACCOUNT_DOCUMENT_LIMITS.maxAddrLength, text.length);
      }
      if (!MULTIADDR_TEXT.test(text)) {
        throw new InvalidDocumentError(`${path}.addrs[${j}]`, 'must be a multiaddr: "/" then printable ASCII');
      }
    });
    return home as unknown as Home;
  });
}

function validateRevoked(value: unknown, homes: readonly Home[]): void {
  const revoked = expectRecord(value, '$.revoked');
  const entries = Object.entries(revoked);
  if (entries.length > ACCOUNT_DOCUMENT_LIMITS.maxRevoked) {
    throw new DocumentLimitError('maxRevoked', ACCOUNT_DOCUMENT_LIMITS.maxRevoked, entries.length);
  }
  for (const [peerId, entry] of entries) {
    const path = `$.revoked[${JSON.stringify(peerId.slice(0, 60))}]`;
    if (homes.some((h) => h.peer_id === peerId))
      throw new InvalidDocumentError(path, 'a current home cannot be revoked');
    validateRevokedEntry(entry, path);
  }
}

// The PeerId checks of a document whose shape was validated: each is a point decompression.
function validateDocumentKeys(doc: AccountDocument): void {
  doc.homes.forEach((home, i) => {
    if (!isPeerId(home.peer_id)) {
      throw new InvalidDocumentError(`$.homes[${i}].peer_id`, 'not the PeerId of an Ed25519 key');
    }
  });
  for (const peerId of Object.keys(doc.revoked)) {
    if (!isPeerId(peerId)) {
      const path = `$.revoked[${JSON.stringify(peerId.slice(0, 60))}]`;
      throw new InvalidDocumentError(path, 'key is not the PeerId of an Ed25519 key');
    }
  }
}

function validateCrossSigning(value: unknown): void {
  const binding = expectRecord(value, '$.cross_signing');
  expectExactFields(binding, CROSS_SIGNING_FIELDS, '$.cross_signing');
  const master = expectString(binding.master, '$.cross_signing.master');
  if (!ED25519_BASE64.test(master)) {
    throw new InvalidDocumentError('$.cross_signing.master', 'must be an Ed25519 key in unpadded base64');
  }
}

// A bare cutoff, or { seq, digest } with the digest as sessions write it (32 lowercase hex).
function validateRevokedEntry(entry: unknown, path: string): void {
  if (typeof entry === 'number') {
    expectInteger(entry, path, 0);
    return;
  }
  const pin = expectRecord(entry, path);
  expectExactFields(pin, PIN_FIELDS, path);
  expectInteger(pin.seq, `${path}.seq`, 0);
  const digest = expectString(pin.digest, `${path}.digest`);
  if (!PIN_DIGEST.test(digest)) throw new InvalidDocumentError(`${path}.digest`, 'must be 32 lowercase hex characters');
}

function validateSignatures(value: unknown): void {
  const signatures = expectRecord(value, '$.signatures') as Signatures;
  const servers = Object.entries(signatures);
  if (servers.length > ACCOUNT_DOCUMENT_LIMITS.maxSignatureServers) {
    throw new DocumentLimitError('maxSignatureServers', ACCOUNT_DOCUMENT_LIMITS.maxSignatureServers, servers.length);
  }
  for (const [server, keys] of servers) {
    const path = `$.signatures[${JSON.stringify(server.slice(0, 70))}]`;
    const entries = Object.entries(expectRecord(keys, path));
    if (entries.length > ACCOUNT_DOCUMENT_LIMITS.maxSignaturesPerServer) {
      throw new DocumentLimitError(
        'maxSignaturesPerServer',
        ACCOUNT_DOCUMENT_LIMITS.maxSignaturesPerServer,
        entries.length,
      );
    }
    for (const [keyId, signature] of entries) {
      const text = expectString(signature, `${path}[${JSON.stringify(keyId.slice(0, 70))}]`);
      if (text.length > MAX_SIGNATURE_TEXT) throw new InvalidDocumentError(path, 'signature text too long');
    }
  }
}

function expectRecord(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidDocumentError(path, 'must be an object');
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new InvalidDocumentError(path, 'must be a plain object');
  return value as Record<string, unknown>;
}

function expectExactFields(
  record: Record<string, unknown>,
  fields: readonly string[],
  path: string,
  optional: readonly string[] = [],
): void {
  for (const key of Object.keys(record)) {
    if (!fields.includes(key) && !optional.includes(key))
      throw new InvalidDocumentError(`${path}.${key.slice(0, 40)}`, 'unknown field');
  }
  for (const field of fields) {
    if (!Object.hasOwn(record, field)) throw new InvalidDocumentError(`${path}.${field}`, 'missing field');
  }
}

function expectArray(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidDocumentError(path, 'must be an array');
  return value;
}

function expectString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new InvalidDocumentError(path, 'must be a string');
  return value;
}

function expectInteger(value: unknown, path: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || Object.is(value, -0)) {
    throw new InvalidDocumentError(path, `must be an integer from ${min} to 2^53 - 1`);
  }
  return value;
}

function rethrowAt(error: unknown, path: string): unknown {
  if (error instanceof IdentityError) return new InvalidDocumentError(path, error.message);
  return error;
}
