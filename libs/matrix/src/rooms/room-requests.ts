// Request parsing of the room endpoints: every path parameter and body is checked here, before the room engine
// is called, so a bad request changes nothing and says what is wrong (client-server API v1.12, "Rooms").
import type { RoomVersionId } from '@polyhome/rooms';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, optionalRecord, optionalString, type JsonRecord } from '../common/json.js';
import type { CreateRoomRequest, MembershipAction } from './rooms-port.js';

/** Room versions the engine makes (`room_version` of /createRoom). */
export const SUPPORTED_ROOM_VERSIONS: readonly RoomVersionId[] = ['10', '11'];

/** Largest event content accepted, as JSON bytes: an event is at most 65536 bytes (spec "Size limits"), and
 * the engine adds the envelope (ids, hashes, signatures) to it. */
export const MAX_CONTENT_BYTES = 60_000;

/** At most this many users in a /createRoom `invite`, and events in its `initial_state`. */
export const MAX_CREATE_INVITES = 100;
export const MAX_INITIAL_STATE = 100;

/** `/messages` and `/context` limits: the spec leaves the default to servers; Synapse uses 10. */
export const DEFAULT_PAGE_LIMIT = 10;
export const MAX_PAGE_LIMIT = 1000;

// Identifier grammars (spec "Appendices: Identifier grammar"), bounded at 255 bytes as the spec's limits say.
const ROOM_ID = /^![\x21-\x39\x3b-\x7e]{1,200}:[A-Za-z0-9.:[\]-]{1,230}$/;
const USER_ID = /^@[\x21-\x39\x3b-\x7e]{1,200}:[A-Za-z0-9.:[\]-]{1,230}$/;
const EVENT_ID = /^\$[\x21-\x7e]{1,254}$/;
const ROOM_ALIAS = /^#[\x21-\x39\x3b-\x7e]{1,200}:[A-Za-z0-9.:[\]-]{1,230}$/;
// Event types and txn ids: printable ASCII and beyond, no control characters or spaces.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const NO_CONTROL = /^[^\x00-\x20\x7f]+$/u;

const bytes = (text: string): number => new TextEncoder().encode(text).length;

/** A room ID from a path or body. Throws M_INVALID_PARAM. */
export function parseRoomId(value: unknown, field = 'roomId'): string {
  if (typeof value !== 'string' || !ROOM_ID.test(value) || bytes(value) > 255) {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not a room ID (!opaque:server).`);
  }
  return value;
}

/** A user ID from a path or body. Throws M_INVALID_PARAM. */
export function parseUserId(value: unknown, field = 'user_id'): string {
  if (typeof value !== 'string' || !USER_ID.test(value) || bytes(value) > 255) {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not a user ID (@localpart:server).`);
  }
  return value;
}

/** An event ID from a path. Throws M_INVALID_PARAM. */
export function parseEventId(value: unknown, field = 'eventId'): string {
  if (typeof value !== 'string' || !EVENT_ID.test(value)) {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not an event ID ($…).`);
  }
  return value;
}

/** `/join/{roomIdOrAlias}`: a room ID. Aliases are not resolved by this home yet: M_NOT_FOUND says so. */
export function parseRoomIdOrAlias(value: unknown): string {
  if (typeof value === 'string' && ROOM_ALIAS.test(value)) {
    throw new MatrixError(
      'M_NOT_FOUND',
      `Room alias ${value} cannot be resolved: this home has no room directory yet. Join by room ID (!…:server).`,
    );
  }
  return parseRoomId(value, 'roomIdOrAlias');
}

/** An event type (`m.room.message`, `com.example.x`): non-empty, no spaces or control characters, ≤ 255 bytes. */
export function parseEventType(value: unknown, field = 'eventType'): string {
  if (typeof value !== 'string' || !NO_CONTROL.test(value) || bytes(value) > 255) {
    throw new MatrixError('M_INVALID_PARAM', `${field} must be an event type of 1 to 255 bytes without spaces.`);
  }
  return value;
}

/** A state key: any string of at most 255 bytes (empty is the usual one). */
export function parseStateKey(value: unknown, field = 'stateKey'): string {
  if (value === undefined) return '';
  if (typeof value !== 'string' || bytes(value) > 255) {
    throw new MatrixError('M_INVALID_PARAM', `${field} must be a string of at most 255 bytes.`);
  }
  return value;
}

/** A client transaction id: 1 to 255 bytes, no spaces or control characters. */
export function parseTxnId(value: unknown): string {
  if (typeof value !== 'string' || !NO_CONTROL.test(value) || bytes(value) > 255) {
    throw new MatrixError('M_INVALID_PARAM', 'txnId must be 1 to 255 bytes without spaces or control characters.');
  }
  return value;
}

/** Event content: a JSON object of at most MAX_CONTENT_BYTES. Throws M_NOT_JSON / M_BAD_JSON / M_TOO_LARGE. */
export function parseContent(value: unknown, field = 'content'): Record<string, unknown> {
  if (!isRecord(value)) throw new MatrixError('M_BAD_JSON', `${field} must be a JSON object.`);
  const size = bytes(JSON.stringify(value));
  if (size > MAX_CONTENT_BYTES) {
    throw new MatrixError(
      'M_TOO_LARGE',
      `${field} is ${size} bytes as JSON; an event's content may be ${MAX_CONTENT_BYTES}.`,
    );
  }
  return value;
}

/**
 * Content of an event (`stateKey` given for a state event) whose type the spec defines, checked for the fields the engine and clients rely on, so a
 * malformed one is refused here rather than stored (other types are opaque and only size-checked).
 */
export function checkKnownContent(type: string, content: Record<string, unknown>, stateKey?: string): void {
  const bad = (what: string): never => {
    throw new MatrixError('M_BAD_JSON', `${type}: ${what}.`);
  };
  const stringField = (field: string, required: boolean): void => {
    const value = content[field];
    if (value === undefined ? required : typeof value !== 'string') bad(`content.${field} must be a string`);
  };
  // A message event (no state key) of a state type is opaque to clients' state: only its own checks apply.
  const asState = stateKey !== undefined;
  if (!asState && !['m.room.message', 'm.room.create', 'm.room.redaction'].includes(type)) return;
  switch (type) {
    case 'm.room.message':
      // Redacted-looking (empty) messages are valid: clients send `{}` to clear an edit, so only shapes.
      if (content['msgtype'] !== undefined || content['body'] !== undefined) {
        stringField('msgtype', true);
        stringField('body', true);
      }
      break;
    case 'm.room.name':
      stringField('name', true);
      if (bytes(String(content['name'])) > 255) bad('content.name must be at most 255 bytes');
      break;
    case 'm.room.topic':
      stringField('topic', true);
      break;
    case 'm.room.canonical_alias':
      stringField('alias', false);
      break;
    case 'm.room.join_rules':
      stringField('join_rule', true);
      break;
    case 'm.room.history_visibility':
      if (!['invited', 'joined', 'shared', 'world_readable'].includes(String(content['history_visibility']))) {
        bad('content.history_visibility must be invited, joined, shared or world_readable');
      }
      break;
    case 'm.room.member':
      if (stateKey !== undefined) parseUserId(stateKey, 'stateKey of m.room.member');
      if (!['invite', 'join', 'leave', 'ban', 'knock'].includes(String(content['membership']))) {
        bad('content.membership must be invite, join, leave, ban or knock');
      }
      break;
    case 'm.room.power_levels':
      checkPowerLevels(content, bad);
      break;
    case 'm.room.create':
      bad('the create event is made by /createRoom (creation_content), never sent');
      break;
    case 'm.room.redaction':
      bad('redactions are sent with PUT /rooms/{roomId}/redact/{eventId}/{txnId}');
      break;
    default:
  }
}

function checkPowerLevels(content: Record<string, unknown>, bad: (what: string) => never): void {
  const isLevel = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v);
  for (const field of ['ban', 'events_default', 'invite', 'kick', 'redact', 'state_default', 'users_default']) {
    if (content[field] !== undefined && !isLevel(content[field])) bad(`content.${field} must be an integer`);
  }
  for (const field of ['events', 'users', 'notifications']) {
    const map = content[field];
    if (map === undefined) continue;
    if (!isRecord(map) || !Object.values(map).every(isLevel)) bad(`content.${field} must map names to integers`);
  }
  if (isRecord(content['users'])) for (const user of Object.keys(content['users'])) parseUserId(user, 'users key');
}

/** The body of POST /createRoom, checked (spec "POST /_matrix/client/v3/createRoom"). */
export function parseCreateRoom(input: unknown): CreateRoomRequest {
  const body = bodyOf(input);
  const preset = optionalString(body, 'preset', 64);
  if (preset !== undefined && !['private_chat', 'public_chat', 'trusted_private_chat'].includes(preset)) {
    throw new MatrixError('M_INVALID_PARAM', 'preset must be private_chat, public_chat or trusted_private_chat.');
  }
  const visibility = optionalString(body, 'visibility', 64);
  if (visibility !== undefined && visibility !== 'public' && visibility !== 'private') {
    throw new MatrixError('M_INVALID_PARAM', 'visibility must be public or private.');
  }
  const version = optionalString(body, 'room_version', 32);
  if (version !== undefined && !(SUPPORTED_ROOM_VERSIONS as readonly string[]).includes(version)) {
    throw new MatrixError(
      'M_UNSUPPORTED_ROOM_VERSION',
      `Room version ${version} is not supported here; use one of ${SUPPORTED_ROOM_VERSIONS.join(', ')}.`,
    );
  }
  if (body['room_alias_name'] !== undefined && body['room_alias_name'] !== null) {
    // Refused rather than ignored: the client would believe the alias exists.
    throw new MatrixError('M_INVALID_PARAM', 'room_alias_name: this home has no room directory yet; leave it out.');
  }
  const threePid = body['invite_3pid'];
  if (threePid !== undefined && threePid !== null && !(Array.isArray(threePid) && threePid.length === 0)) {
    throw new MatrixError('M_INVALID_PARAM', 'invite_3pid: third-party invites are not supported; invite user IDs.');
  }
  const name = optionalString(body, 'name', 255);
  const topic = optionalString(body, 'topic', 4096);
  const invite = parseInviteList(body['invite']);
  const isDirect = body['is_direct'];
  if (isDirect !== undefined && isDirect !== null && typeof isDirect !== 'boolean') {
    throw new MatrixError('M_BAD_JSON', 'is_direct must be a boolean.');
  }
  const creationContent = optionalRecord(body, 'creation_content');
  if (creationContent !== undefined) parseContent(creationContent, 'creation_content');
  const powerLevelOverride = optionalRecord(body, 'power_level_content_override');
  if (powerLevelOverride !== undefined) {
    checkKnownContent('m.room.power_levels', parseContent(powerLevelOverride, 'power_level_content_override'), '');
  }
  const request: CreateRoomRequest = {
    invite,
    isDirect: isDirect === true,
    initialState: parseInitialState(body['initial_state']),
  };
  if (preset !== undefined) request.preset = preset as NonNullable<CreateRoomRequest['preset']>;
  if (visibility !== undefined) request.visibility = visibility;
  if (version !== undefined) request.roomVersion = version as RoomVersionId;
  if (name !== undefined) request.name = name;
  if (topic !== undefined) request.topic = topic;
  if (creationContent !== undefined) request.creationContent = creationContent;
  if (powerLevelOverride !== undefined) request.powerLevelOverride = powerLevelOverride;
  return request;
}

function parseInviteList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_CREATE_INVITES) {
    throw new MatrixError('M_BAD_JSON', `invite must be an array of at most ${MAX_CREATE_INVITES} user IDs.`);
  }
  return [...new Set(value.map((u, i) => parseUserId(u, `invite[${i}]`)))];
}

function parseInitialState(value: unknown): CreateRoomRequest['initialState'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_INITIAL_STATE) {
    throw new MatrixError('M_BAD_JSON', `initial_state must be an array of at most ${MAX_INITIAL_STATE} events.`);
  }
  return value.map((item: unknown, i) => {
    const field = `initial_state[${i}]`;
    if (!isRecord(item)) throw new MatrixError('M_BAD_JSON', `${field} must be an object.`);
    const type = parseEventType(item['type'], `${field}.type`);
    const stateKey = parseStateKey(item['state_key'], `${field}.state_key`);
    const content = parseContent(item['content'], `${field}.content`);
    if (type === 'm.room.create' || type === 'm.room.member') {
      // The create event comes from creation_content, memberships from the creator's join and `invite`.
      throw new MatrixError('M_INVALID_ROOM_STATE', `${field}: ${type} cannot be in initial_state.`);
    }
    try {
      checkKnownContent(type, content, stateKey);
    } catch (err) {
      if (err instanceof MatrixError) throw new MatrixError('M_INVALID_ROOM_STATE', `${field}: ${err.message}`);
      throw err;
    }
    return { type, stateKey, content };
  });
}

/** The body of /invite, /kick, /ban, /unban (`user_id`, optional `reason`) as a membership change. */
export function parseTargetedMembership(action: 'invite' | 'kick' | 'ban' | 'unban', input: unknown): MembershipAction {
  const body = bodyOf(input);
  if (body['user_id'] === undefined) throw new MatrixError('M_MISSING_PARAM', 'user_id is required.');
  const target = parseUserId(body['user_id']);
  const reason = optionalString(body, 'reason', 1024);
  return reason === undefined ? { action, target } : { action, target, reason };
}

/** The body of /leave (optional `reason`). */
export function parseLeave(input: unknown): MembershipAction {
  const reason = optionalString(bodyOf(input), 'reason', 1024);
  return reason === undefined ? { action: 'leave' } : { action: 'leave', reason };
}

/** The optional `reason` of a redaction body. */
export function parseRedactReason(input: unknown): string | undefined {
  return optionalString(bodyOf(input), 'reason', 1024);
}

/** A `limit` query parameter: a non-negative integer, `fallback` when absent, capped at `max`. */
export function parseLimit(value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) {
    throw new MatrixError('M_INVALID_PARAM', 'limit must be a non-negative integer.');
  }
  return Math.min(Number(value), max);
}

/** A pagination token as given: opaque, bounded. */
export function parsePageToken(value: unknown, field: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 512 || !NO_CONTROL.test(value)) {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not a pagination token this home issued.`);
  }
  return value;
}

/** `dir` of /messages: required since v1.3 (`b` or `f`). */
export function parseDirection(value: unknown): 'b' | 'f' {
  if (value === undefined) throw new MatrixError('M_MISSING_PARAM', 'dir is required (b or f).');
  if (value !== 'b' && value !== 'f') throw new MatrixError('M_INVALID_PARAM', 'dir must be b or f.');
  return value;
}

/** A JSON query parameter (a filter): parsed, an object. */
export function parseJsonParam(value: unknown, field: string): JsonRecord | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 65_536) {
    throw new MatrixError('M_INVALID_PARAM', `${field} must be JSON of at most 64 KiB.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not valid JSON.`);
  }
  if (!isRecord(parsed)) throw new MatrixError('M_INVALID_PARAM', `${field} must be a JSON object.`);
  return parsed;
}
