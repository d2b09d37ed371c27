// Server-side key backup (`/room_keys`) as op kinds: a backup version (`room_keys.version.put` and its
// tombstone) and one session key of a version (`room_keys.key.put` and its tombstone). The bodies, their
// validators, the op keys, and the rules every home applies alike: which version is current, and which of two
// session keys is better (the spec's replacement rule).
import { canonicalJson } from '@polyhome/identity';
import { exactFields, expectInteger, expectString, expectText, fail } from './checks.js';
import { expectContent, type BodyValidator } from './bodies.js';

/** Body of `room_keys.version.put`; the key is the version id. `auth_data` is kept as its JSON text. */
export interface RoomKeyVersionBody {
  algorithm: string;
  auth_data_json: string;
}

/** Body of `room_keys.key.put`; the key is `roomKeyKey(version, room_id, session_id)`. */
export interface RoomKeyBody {
  version: string;
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  /** The client's encrypted `session_data` as JSON text. */
  session_data_json: string;
}

const MAX_ALGORITHM_BYTES = 255;
const MAX_ID_BYTES = 255;
/**
 * A version id: `<n>-<tag>`, n a decimal counter (1 to 2^53 - 1, no leading zero), tag 8 hex digits naming the
 * home that made it (`versionTag`), so two homes creating a version at once make two different ones.
 */
const VERSION_ID = /^([1-9][0-9]{0,15})-([0-9a-f]{8})$/;

/** The counter and home tag of a version id, or undefined when it is not one. */
export function parseVersionId(version: string): { n: number; tag: string } | undefined {
  const match = VERSION_ID.exec(version);
  if (match === null) return undefined;
  const n = Number(match[1]);
  return Number.isSafeInteger(n) ? { n, tag: match[2]! } : undefined;
}

/** The version id of counter `n` made by the home whose tag is `tag`. */
export function versionId(n: number, tag: string): string {
  return `${n}-${tag}`;
}

/**
 * Orders version ids: by counter, then by tag. The current version of a backup is the greatest live one, so
 * homes holding the same versions agree on it, and a version made concurrently on two homes loses to one of them.
 */
export function compareVersionIds(a: string, b: string): number {
  const pa = parseVersionId(a);
  const pb = parseVersionId(b);
  if (pa === undefined || pb === undefined) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.n !== pb.n) return pa.n - pb.n;
  return pa.tag < pb.tag ? -1 : pa.tag > pb.tag ? 1 : 0;
}

/** The op key of a session key: canonical JSON of `[version, room_id, session_id]`. */
export function roomKeyKey(version: string, roomId: string, sessionId: string): string {
  return canonicalJson([version, roomId, sessionId]);
}

/** The summary group of a session key: the prefix of its version's keys (the key was checked with its op). */
export function roomKeyGroup(key: string): string {
  return roomKeyPrefix((JSON.parse(key) as string[])[0]!);
}

/** The prefix every op key of a version (and a room of it, when given) starts with. */
export function roomKeyPrefix(version: string, roomId?: string): string {
  const whole = roomId === undefined ? canonicalJson([version]) : canonicalJson([version, roomId]);
  return `${whole.slice(0, -1)},`;
}

/**
 * True when `candidate` should replace `held` (the spec's rule): a verified key beats an unverified one, then a
 * lower `first_message_index` wins, then a lower `forwarded_count`. Equal keys do not replace each other.
 */
export function isBetterRoomKey(candidate: RoomKeyRank, held: RoomKeyRank): boolean {
  return compareRoomKeys(candidate, held) > 0;
}

/** What ranks a session key: whether it is verified, its first message index and how often it was forwarded. */
export type RoomKeyRank = Pick<RoomKeyBody, 'is_verified' | 'first_message_index' | 'forwarded_count'>;

/** > 0 when session key `a` is better than `b` (isBetterRoomKey), < 0 when worse, 0 when they rank alike. */
export function compareRoomKeys(a: RoomKeyRank, b: RoomKeyRank): number {
  if (a.is_verified !== b.is_verified) return a.is_verified ? 1 : -1;
  if (a.first_message_index !== b.first_message_index) return b.first_message_index - a.first_message_index;
  return b.forwarded_count - a.forwarded_count;
}

function expectVersionId(value: string, path: string): void {
  if (parseVersionId(value) === undefined) fail(path, 'must be a version id "<counter>-<8 hex digits>"');
}

/** The version, room and session a session key's op key names; fails when it is not such a key. */
function keyParts(key: string): [string, string, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(key);
  } catch {
    fail('$.key', 'must be the canonical JSON of [version, room_id, session_id]');
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((p) => typeof p === 'string')) {
    fail('$.key', 'must be the canonical JSON of [version, room_id, session_id]');
  }
  const [version, roomId, sessionId] = parsed as [string, string, string];
  if (roomKeyKey(version, roomId, sessionId) !== key) fail('$.key', 'must be canonical JSON');
  expectVersionId(version, '$.key[0]');
  if (!roomId.startsWith('!')) fail('$.key[1]', 'a room id starts with "!"');
  expectText(roomId, '$.key[1]', MAX_ID_BYTES);
  expectText(sessionId, '$.key[2]', MAX_ID_BYTES);
  return [version, roomId, sessionId];
}

/** `room_keys.version.put`: a backup version made or its `auth_data` updated; the key is the version id. */
export const validateRoomKeyVersionBody: BodyValidator<RoomKeyVersionBody> = (body, key) => {
  expectVersionId(key, '$.key');
  exactFields(body, '$.body', ['algorithm', 'auth_data_json'], []);
  expectText(expectString(body.algorithm, '$.body.algorithm'), '$.body.algorithm', MAX_ALGORITHM_BYTES);
  expectContent(body.auth_data_json, '$.body.auth_data_json');
  return body as unknown as RoomKeyVersionBody;
};

/** `room_keys.version.delete`: the version is gone (its keys with it); the key is the version id. */
export const validateRoomKeyVersionDeleteBody: BodyValidator<Record<string, never>> = (body, key) => {
  expectVersionId(key, '$.key');
  exactFields(body, '$.body', [], []);
  return body as Record<string, never>;
};

/** `room_keys.key.put`: one session key of a version; the key is `roomKeyKey(version, room_id, session_id)`. */
export const validateRoomKeyBody: BodyValidator<RoomKeyBody> = (body, key) => {
  const [version, roomId, sessionId] = keyParts(key);
  exactFields(
    body,
    '$.body',
    ['version', 'room_id', 'session_id', 'first_message_index', 'forwarded_count', 'is_verified', 'session_data_json'],
    [],
  );
  if (body.version !== version || body.room_id !== roomId || body.session_id !== sessionId) {
    fail('$.body', 'version, room_id and session_id must be those of the op key');
  }
  expectInteger(body.first_message_index, '$.body.first_message_index', 0);
  expectInteger(body.forwarded_count, '$.body.forwarded_count', 0);
  if (typeof body.is_verified !== 'boolean') fail('$.body.is_verified', 'must be a boolean');
  expectContent(body.session_data_json, '$.body.session_data_json');
  return body as unknown as RoomKeyBody;
};

/** `room_keys.key.delete`: one session key of a version removed. */
export const validateRoomKeyDeleteBody: BodyValidator<Record<string, never>> = (body, key) => {
  keyParts(key);
  exactFields(body, '$.body', [], []);
  return body as Record<string, never>;
};
