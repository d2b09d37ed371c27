// Identifiers: an account's server name (its public key in hex), user IDs, home PeerIds and the
// signing key ids built from them. Parsers say what is wrong, since these arrive from peers and users.
import { base58btc } from 'multiformats/bases/base58';
import {
  InvalidHexError,
  InvalidKeyIdError,
  InvalidKeyLengthError,
  InvalidPeerIdError,
  InvalidPublicKeyError,
  InvalidServerNameError,
  InvalidUserIdError,
} from './errors.js';
import { decodeHex, encodeHex } from './encoding.js';
import { publicKeyFromBytes } from './keys.js';
import { PUBLIC_KEY_LENGTH } from './secret-key.js';

/** Length of an account server name: 32 bytes as lowercase hex. */
export const SERVER_NAME_LENGTH = 64;
/** Longest localpart DESIGN.md allows. */
export const MAX_LOCALPART_LENGTH = 64;
/** Key id of the account root key in `signatures.<server name>`. */
export const ROOT_KEY_ID = 'ed25519:root';

const LOCALPART = /^[a-z0-9._=/-]+$/;
const KEY_VERSION = /^[A-Za-z0-9_]+$/;
// A libp2p PeerId of an Ed25519 key: identity multihash (0x00, length 36) of the protobuf
// PublicKey { Type: Ed25519 (field 1 = 1), Data: 32 bytes (field 2) }.
const PEER_ID_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);
const PEER_ID_BYTES = PEER_ID_PREFIX.length + PUBLIC_KEY_LENGTH;
// base58btc of 38 bytes is at most 52 characters; checked before decoding to bound the work.
const MAX_PEER_ID_LENGTH = 60;

/** The parts of a user ID. */
export interface UserIdParts {
  /** The localpart, `[a-z0-9._=/-]{1,64}`. */
  readonly localpart: string;
  /** The account server name: lowercase hex of the root public key. */
  readonly serverName: string;
  /** The root public key the server name encodes. */
  readonly publicKey: Uint8Array;
}

/** The server name of an account: lowercase hex of its 32-byte root public key. */
export function serverNameFromPublicKey(publicKey: Uint8Array): string {
  return encodeHex(publicKeyFromBytes(publicKey));
}

/** The root public key a server name encodes; self-certifying, no key server asked. Throws InvalidServerNameError. */
export function publicKeyFromServerName(serverName: string): Uint8Array {
  if (typeof serverName !== 'string') throw new InvalidServerNameError('not a string');
  if (serverName.length !== SERVER_NAME_LENGTH) {
    throw new InvalidServerNameError(
      `must be ${SERVER_NAME_LENGTH} lowercase hex characters, got ${serverName.length}`,
    );
  }
  try {
    return publicKeyFromBytes(decodeHex(serverName));
  } catch (error) {
    if (error instanceof InvalidHexError) throw new InvalidServerNameError('not lowercase hex');
    if (error instanceof InvalidPublicKeyError)
      throw new InvalidServerNameError('does not encode an Ed25519 public key');
    throw error;
  }
}

/** True when a string is a valid account server name. */
export function isServerName(serverName: string): boolean {
  try {
    publicKeyFromServerName(serverName);
    return true;
  } catch {
    return false;
  }
}

/** Checks a localpart against `[a-z0-9._=/-]{1,64}`. Throws InvalidUserIdError saying what is wrong. */
export function assertLocalpart(localpart: string): void {
  if (typeof localpart !== 'string') throw new InvalidUserIdError('localpart is not a string');
  if (localpart.length === 0) throw new InvalidUserIdError('localpart is empty');
  if (localpart.length > MAX_LOCALPART_LENGTH) {
    throw new InvalidUserIdError(
      `localpart is ${localpart.length} characters, at most ${MAX_LOCALPART_LENGTH} allowed`,
    );
  }
  if (!LOCALPART.test(localpart)) {
    const index = [...localpart].findIndex((c) => !LOCALPART.test(c));
    throw new InvalidUserIdError(`localpart has a character outside [a-z0-9._=/-] at index ${index}`);
  }
}

/** Builds `@<localpart>:<server name>` after checking both parts. Throws InvalidUserIdError or InvalidServerNameError. */
export function formatUserId(localpart: string, serverName: string): string {
  assertLocalpart(localpart);
  publicKeyFromServerName(serverName);
  return `@${localpart}:${serverName}`;
}

/** Parses and validates a user ID. Throws InvalidUserIdError (with the reason) for any malformed input. */
export function parseUserId(userId: string): UserIdParts {
  if (typeof userId !== 'string') throw new InvalidUserIdError('not a string');
  if (!userId.startsWith('@')) throw new InvalidUserIdError('must start with "@"');
  const colon = userId.indexOf(':');
  if (colon < 0) throw new InvalidUserIdError('missing ":" between localpart and server name');
  const localpart = userId.slice(1, colon);
  const serverName = userId.slice(colon + 1);
  assertLocalpart(localpart);
  try {
    return { localpart, serverName, publicKey: publicKeyFromServerName(serverName) };
  } catch (error) {
    if (error instanceof InvalidServerNameError) throw new InvalidUserIdError(`server name: ${error.message}`);
    throw error;
  }
}

/** The libp2p PeerId (base58btc identity multihash) of an Ed25519 home public key. */
export function peerIdFromPublicKey(publicKey: Uint8Array): string {
  const key = publicKeyFromBytes(publicKey);
  const bytes = new Uint8Array(PEER_ID_BYTES);
  bytes.set(PEER_ID_PREFIX);
  bytes.set(key, PEER_ID_PREFIX.length);
  return base58btc.baseEncode(bytes);
}

/** The Ed25519 public key inside a PeerId. Throws InvalidPeerIdError unless it is the canonical PeerId of a valid Ed25519 key. */
export function publicKeyFromPeerId(peerId: string): Uint8Array {
  return Uint8Array.from(peerKey(peerId));
}

/** True when a string is the PeerId of a valid Ed25519 key. */
export function isPeerId(peerId: string): boolean {
  try {
    peerKey(peerId);
    return true;
  } catch {
    return false;
  }
}

/** The key id a home signs with: `ed25519:<peerId>`. Throws InvalidPeerIdError. */
export function homeKeyId(peerId: string): string {
  peerKey(peerId);
  return `ed25519:${peerId}`;
}

// Every op names its origin's PeerId three or four times over (its origin, its key id, the key that
// verifies it), and the same few homes sign nearly every op: so PeerIds already parsed are remembered with
// their key, boundedly (oldest first out). Only PeerIds that parsed are kept; a miss parses exactly as
// before (base58, canonical form, then publicKeyFromBytes with its point check and counter), so the cache
// moves no check earlier and a stranger's fresh PeerIds cost what they did, no more.
const PEER_KEY_CACHE_SIZE = 4096;
const peerKeys = new Map<string, Uint8Array>();

// The key inside a PeerId, shared: callers must not hand it out (publicKeyFromPeerId copies it).
function peerKey(peerId: string): Uint8Array {
  const known = typeof peerId === 'string' ? peerKeys.get(peerId) : undefined;
  if (known !== undefined) return known;
  const key = parsePeerId(peerId);
  if (peerKeys.size >= PEER_KEY_CACHE_SIZE) peerKeys.delete(peerKeys.keys().next().value as string);
  peerKeys.set(peerId, key);
  return key;
}

function parsePeerId(peerId: string): Uint8Array {
  if (typeof peerId !== 'string') throw new InvalidPeerIdError('not a string');
  if (peerId.length === 0 || peerId.length > MAX_PEER_ID_LENGTH) {
    throw new InvalidPeerIdError(`length ${peerId.length} is not that of an Ed25519 PeerId`);
  }
  let bytes: Uint8Array;
  try {
    bytes = base58btc.baseDecode(peerId);
  } catch {
    throw new InvalidPeerIdError('not base58btc');
  }
  if (bytes.length !== PEER_ID_BYTES || PEER_ID_PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new InvalidPeerIdError('not the identity multihash of an Ed25519 public key');
  }
  // Leading zero bytes make base58 spellings ambiguous in some decoders; require the one we would write.
  if (base58btc.baseEncode(bytes) !== peerId) throw new InvalidPeerIdError('not in canonical base58btc form');
  try {
    return publicKeyFromBytes(bytes.subarray(PEER_ID_PREFIX.length));
  } catch (error) {
    if (error instanceof InvalidPublicKeyError || error instanceof InvalidKeyLengthError) {
      throw new InvalidPeerIdError('the key inside is not a valid Ed25519 public key');
    }
    throw error;
  }
}

/** The parts of a signing key identifier. */
export interface KeyIdParts {
  /** The signing algorithm; only `ed25519` is supported. */
  readonly algorithm: 'ed25519';
  /** The key version, `[A-Za-z0-9_]+`: `root`, a PeerId, or any Matrix key version. */
  readonly version: string;
}

/** Parses `ed25519:<version>`. Throws InvalidKeyIdError. */
export function parseKeyId(keyId: string): KeyIdParts {
  if (typeof keyId !== 'string') throw new InvalidKeyIdError('not a string');
  const colon = keyId.indexOf(':');
  if (colon < 0) throw new InvalidKeyIdError('missing ":" between algorithm and version');
  const algorithm = keyId.slice(0, colon);
  const version = keyId.slice(colon + 1);
  if (algorithm !== 'ed25519')
    throw new InvalidKeyIdError(`unsupported algorithm ${JSON.stringify(algorithm.slice(0, 32))}`);
  if (version.length === 0 || version.length > 255 || !KEY_VERSION.test(version)) {
    throw new InvalidKeyIdError('version must be 1 to 255 characters of [A-Za-z0-9_]');
  }
  return { algorithm, version };
}

/** The PeerId of a home key id `ed25519:<peerId>`. Throws InvalidKeyIdError or InvalidPeerIdError (for `ed25519:root` too). */
export function peerIdFromKeyId(keyId: string): string {
  const { version } = parseKeyId(keyId);
  peerKey(version);
  return version;
}
