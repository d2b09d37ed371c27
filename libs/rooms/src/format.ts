// The PDU format of room versions 10 and 11 (server-server API "PDUs", room versions "Event format",
// "Size limits", "Canonical JSON"): what an event must look like before anything else reads it. A PDU
// failing here is dropped, not rejected, so this checks what the spec requires of the format and no more:
// the power level integer rule of v10 is auth rules 9.1 to 9.3 (a rejected event stays in the DAG,
// a dropped one leaves a hole other servers do not have).
import { canonicalFields } from '@polyhome/identity';
import { isCanonicalInteger, isJsonObject, isUserId, own, serverNameOf, utf8Length } from './json.js';
import {
  LIMITS,
  SUPPORTED_ROOM_VERSIONS,
  type JsonObject,
  type Pdu,
  type RefusalReason,
  type RoomVersionId,
} from './types.js';

/** Stable codes of format refusals. */
export type FormatRefusalCode =
  | 'unsupported_room_version'
  | 'not_an_object'
  | 'not_canonical_json'
  | 'too_large'
  | 'missing_field'
  | 'invalid_field'
  | 'too_long'
  | 'too_many_prev_events'
  | 'too_many_auth_events';

/** The outcome of validatePdu: the input typed as a Pdu (the same object, unchanged), or why not. */
export type PduValidation = { ok: true; pdu: Pdu } | ({ ok: false } & RefusalReason);

function refuse(code: FormatRefusalCode, message: string): PduValidation {
  return { ok: false, code, message };
}

/**
 * Checks that `json` is a PDU of room version 10 or 11: canonical JSON (integers within +-(2^53 - 1), no
 * floats) of at most 65536 bytes with its signatures, every required field with its type, ids, type and
 * state_key of at most 255 bytes, at most LIMITS.prevEvents prev_events and LIMITS.authEvents auth_events,
 * and `redacts` where the version puts it. Unknown top-level fields are kept (they are hashed). Never throws.
 */
export function validatePdu(version: RoomVersionId, json: unknown): PduValidation {
  if (!SUPPORTED_ROOM_VERSIONS.includes(version)) {
    return refuse('unsupported_room_version', `Room version ${String(version)} is not implemented; use 10 or 11.`);
  }
  if (!isJsonObject(json)) return refuse('not_an_object', 'A PDU must be a JSON object.');
  let byteLength: number;
  try {
    byteLength = canonicalFields(json).byteLength;
  } catch (error) {
    return refuse('not_canonical_json', `The PDU is not canonical JSON: ${(error as Error).message}`);
  }
  if (byteLength > LIMITS.pduBytes) {
    return refuse('too_large', `The PDU is ${byteLength} bytes as canonical JSON; the limit is ${LIMITS.pduBytes}.`);
  }
  return checkFields(version, json) ?? { ok: true, pdu: json as Pdu };
}

function checkFields(version: RoomVersionId, json: JsonObject): PduValidation | undefined {
  const roomId = own(json, 'room_id');
  const sender = own(json, 'sender');
  const type = own(json, 'type');
  for (const [name, value, limit] of [
    ['room_id', roomId, LIMITS.roomIdBytes],
    ['sender', sender, LIMITS.userIdBytes],
    ['type', type, LIMITS.typeBytes],
  ] as const) {
    if (value === undefined) return refuse('missing_field', `The PDU has no ${name}.`);
    if (typeof value !== 'string') return refuse('invalid_field', `${name} must be a string.`);
    if (utf8Length(value) > limit) return refuse('too_long', `${name} is longer than ${limit} bytes.`);
  }
  if (!(roomId as string).startsWith('!') || serverNameOf(roomId as string) === undefined) {
    return refuse('invalid_field', 'room_id must look like !opaque:server.');
  }
  if (!isUserId(sender)) return refuse('invalid_field', 'sender must be a user id @local:server.');
  const stateKey = own(json, 'state_key');
  if (stateKey !== undefined) {
    if (typeof stateKey !== 'string') return refuse('invalid_field', 'state_key must be a string when present.');
    if (utf8Length(stateKey) > LIMITS.stateKeyBytes) return refuse('too_long', 'state_key is longer than 255 bytes.');
  }
  const content = own(json, 'content');
  if (content === undefined) return refuse('missing_field', 'The PDU has no content.');
  if (!isJsonObject(content)) return refuse('invalid_field', 'content must be an object.');
  for (const name of ['origin_server_ts', 'depth'] as const) {
    const value = own(json, name);
    if (value === undefined) return refuse('missing_field', `The PDU has no ${name}.`);
    if (!isCanonicalInteger(value) || value < 0)
      return refuse('invalid_field', `${name} must be a non-negative integer.`);
  }
  const prev = checkEventIds(json, 'prev_events', LIMITS.prevEvents, 'too_many_prev_events');
  if (prev !== undefined) return prev;
  const auth = checkEventIds(json, 'auth_events', LIMITS.authEvents, 'too_many_auth_events');
  if (auth !== undefined) return auth;
  const hashes = own(json, 'hashes');
  if (hashes === undefined) return refuse('missing_field', 'The PDU has no hashes.');
  if (!isJsonObject(hashes) || typeof own(hashes, 'sha256') !== 'string') {
    return refuse('invalid_field', 'hashes must be an object with a sha256 string.');
  }
  const signatures = own(json, 'signatures');
  if (signatures === undefined) return refuse('missing_field', 'The PDU has no signatures.');
  if (!isSignatures(signatures))
    return refuse('invalid_field', 'signatures must map server names to key ids to strings.');
  const unsigned = own(json, 'unsigned');
  if (unsigned !== undefined && !isJsonObject(unsigned))
    return refuse('invalid_field', 'unsigned must be an object when present.');
  return checkRedacts(version, json, type as string, content);
}

function checkEventIds(
  json: JsonObject,
  name: 'prev_events' | 'auth_events',
  max: number,
  tooMany: FormatRefusalCode,
): PduValidation | undefined {
  const ids = own(json, name);
  if (ids === undefined) return refuse('missing_field', `The PDU has no ${name}.`);
  if (!Array.isArray(ids)) return refuse('invalid_field', `${name} must be an array of event ids.`);
  if (ids.length > max) return refuse(tooMany, `${name} has ${ids.length} entries; at most ${max} are accepted.`);
  for (const id of ids) {
    if (!isEventId(id)) return refuse('invalid_field', `${name} must hold event ids ($..., at most 255 bytes).`);
  }
  return undefined;
}

function checkRedacts(
  version: RoomVersionId,
  json: JsonObject,
  type: string,
  content: JsonObject,
): PduValidation | undefined {
  const topLevel = own(json, 'redacts');
  if (topLevel !== undefined && !isEventId(topLevel)) return refuse('invalid_field', 'redacts must be an event id.');
  if (type !== 'm.room.redaction') return undefined;
  // v10 keeps `redacts` at the top level; v11 moved it into content (a top-level copy is tolerated).
  const redacts = version === '10' ? topLevel : own(content, 'redacts');
  const where = version === '10' ? 'redacts' : 'content.redacts';
  if (redacts === undefined)
    return refuse('missing_field', `An m.room.redaction in room version ${version} needs ${where}.`);
  if (!isEventId(redacts)) return refuse('invalid_field', `${where} must be an event id.`);
  return undefined;
}

function isEventId(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('$') && utf8Length(value) <= LIMITS.eventIdBytes;
}

function isSignatures(value: unknown): boolean {
  if (!isJsonObject(value)) return false;
  for (const byServer of Object.values(value)) {
    if (!isJsonObject(byServer)) return false;
    for (const signature of Object.values(byServer)) if (typeof signature !== 'string') return false;
  }
  return true;
}
