// Matrix event hashing and signing (server-server API "Signing events"), enough to reproduce the
// spec's event test vectors. Those vectors use the room version 1 redaction algorithm, which room
// versions 2 to 5 share; later versions change the rules and are refused rather than approximated.
import { sha256 } from '@noble/hashes/sha2.js';
import { canonicalJsonBytes } from './canonical-json.js';
import type { Ed25519Options } from './ed25519.js';
import { encodeBase64 } from './encoding.js';
import { CanonicalJsonError, UnsupportedRoomVersionError } from './errors.js';
import type { SecretKey } from './secret-key.js';
import { signJson, verifyJson, type Signatures } from './signing.js';

/** Room versions whose redaction algorithm is implemented (1 to 5 share one). */
export type RedactionRoomVersion = '1' | '2' | '3' | '4' | '5';

// Room versions 1-5: top-level keys kept by redaction.
const KEPT_KEYS = new Set([
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'prev_state',
  'auth_events',
  'origin',
  'origin_server_ts',
  'membership',
]);

// Room versions 1-5: content keys kept per event type; every other type keeps an empty content.
const KEPT_CONTENT: Readonly<Record<string, readonly string[]>> = {
  'm.room.member': ['membership'],
  'm.room.create': ['creator'],
  'm.room.join_rules': ['join_rule'],
  'm.room.power_levels': [
    'ban',
    'events',
    'events_default',
    'kick',
    'redact',
    'state_default',
    'users',
    'users_default',
  ],
  'm.room.aliases': ['aliases'],
  'm.room.history_visibility': ['history_visibility'],
};

/** A Matrix event as JSON (only the fields the hashing and redaction rules look at are typed). */
export interface MatrixEvent {
  [key: string]: unknown;
  /** The event type, which selects the content keys redaction keeps. */
  type?: unknown;
  /** The event content. */
  content?: unknown;
}

/** Applies the redaction algorithm of room versions 1 to 5. Throws UnsupportedRoomVersionError for other versions. */
export function redactEvent(event: MatrixEvent, roomVersion: RedactionRoomVersion = '1'): MatrixEvent {
  if (!['1', '2', '3', '4', '5'].includes(roomVersion)) throw new UnsupportedRoomVersionError(roomVersion);
  const redacted: MatrixEvent = {};
  for (const [key, value] of Object.entries(event)) {
    if (KEPT_KEYS.has(key))
      Object.defineProperty(redacted, key, { value, enumerable: true, writable: true, configurable: true });
  }
  const content = isRecord(event.content) ? event.content : {};
  const kept =
    typeof event.type === 'string' && Object.hasOwn(KEPT_CONTENT, event.type) ? KEPT_CONTENT[event.type]! : [];
  const redactedContent: Record<string, unknown> = {};
  for (const key of kept) if (Object.hasOwn(content, key)) redactedContent[key] = content[key];
  redacted.content = redactedContent;
  return redacted;
}

/** The event's content hash: unpadded base64 of sha256 over its canonical JSON without `unsigned`, `signatures` and `hashes`. */
export function computeContentHash(event: MatrixEvent): string {
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = event;
  return encodeBase64(sha256(canonicalJsonBytes(rest)));
}

/**
 * Adds `hashes.sha256` and a signature by `serverName`/`keyId` to an event, as a homeserver does
 * before sending it: the signature covers the redacted event, so it survives redaction.
 */
export function hashAndSignEvent(
  event: MatrixEvent,
  serverName: string,
  keyId: string,
  secretKey: SecretKey,
  roomVersion: RedactionRoomVersion = '1',
  options?: Ed25519Options,
): MatrixEvent & { hashes: { sha256: string }; signatures: Signatures } {
  const hashes = { ...(isRecord(event.hashes) ? event.hashes : {}), sha256: computeContentHash(event) };
  const hashed = { ...event, hashes };
  const signed = signJson(redactEvent(hashed, roomVersion), serverName, keyId, secretKey, options);
  return { ...hashed, signatures: signed.signatures };
}

/** Verifies an event's signature by `serverName`/`keyId` over its redacted form; throws as verifyJson does. */
export function verifyEventSignature(
  event: MatrixEvent,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
  roomVersion: RedactionRoomVersion = '1',
  options?: Ed25519Options,
): void {
  verifyJson(redactEvent(event, roomVersion), serverName, keyId, publicKey, options);
}

/** True when the event's `hashes.sha256` matches its content (an event failing this is redacted by receivers). */
export function checkContentHash(event: MatrixEvent): boolean {
  const hashes = event.hashes;
  if (!isRecord(hashes)) throw new CanonicalJsonError('$.hashes', 'must be an object');
  return hashes.sha256 === computeContentHash(event);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
