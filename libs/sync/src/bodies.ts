// The body of each op kind: its type and its validator. A validator checks an untrusted body (already a
// plain object within MAX_BODY_BYTES) against the op key and the account's user, throws OpRejectedError
// (`malformed`) when it is not a body of its kind, and returns it typed. The registry (kinds.ts) names one
// validator per kind; the type a validator returns is the type of that kind's body everywhere else.
import { canonicalJson, isPeerId, jsonTextDepth } from '@polyhome/identity';
import {
  exactFields,
  expectArray,
  expectInteger,
  expectRecord,
  expectSignatureMap,
  expectString,
  expectStringMap,
  expectText,
  expectUser,
  fail,
} from './checks.js';
import { deviceSignatureRefusal } from './key-signatures.js';

/** Checks an untrusted body of one kind against its op key and the account's user ID; returns it typed. */
export type BodyValidator<B> = (body: Record<string, unknown>, key: string, userId: string | undefined) => B;

const MEMBERSHIPS = ['join', 'leave', 'invite', 'ban', 'knock'] as const;
const CROSS_SIGNING_USAGES = ['master', 'self_signing', 'user_signing'] as const;
const MAX_ALGORITHMS = 16;
const MAX_KEYS = 32;

/** Matrix membership states a `member.set` op may carry. */
export type Membership = (typeof MEMBERSHIPS)[number];

/** Cross-signing key usages; the `key` of a `cross_signing.put` op. */
export type CrossSigningUsage = (typeof CROSS_SIGNING_USAGES)[number];

/** Body of `device.put`: the Matrix DeviceKeys object as `/keys/upload` takes it, plus display name and hosting home. */
export interface DeviceBody {
  user_id: string;
  device_id: string;
  algorithms: string[];
  keys: Record<string, string>;
  signatures: Record<string, Record<string, string>>;
  display_name?: string;
  /** PeerId of the home the device logged in on. */
  home?: string;
}

/** Body of `member.set`. */
export interface MemberBody {
  room_id: string;
  membership: Membership;
  /** The signed `m.room.member` event, where there is one. */
  event?: Record<string, unknown>;
}

/** Body of `cross_signing.put`: the Matrix CrossSigningKey object. */
export interface CrossSigningBody {
  user_id: string;
  usage: string[];
  keys: Record<string, string>;
  signatures?: Record<string, Record<string, string>>;
}

/**
 * Body of `account_data.put`: one global account-data event of the account's user (key = `type`). The content
 * is kept as its JSON text: clients put floats into account data (`m.tag` orders), which the canonical JSON of
 * a signed op cannot carry.
 */
export interface AccountDataBody {
  type: string;
  /** The event content, a JSON object, as JSON text. */
  content_json: string;
}

/** Body of `room_account_data.put`: one account-data event of the user in one room (content as JSON text). */
export interface RoomAccountDataBody {
  room_id: string;
  type: string;
  content_json: string;
}

/** Profile fields a `profile.set` op may set; the op key names the field. */
export const PROFILE_FIELDS = ['displayname', 'avatar_url'] as const;

/** Body of `profile.set`: exactly the field its key names (an empty string clears it). */
export type ProfileBody = { displayname: string } | { avatar_url: string };

/** Push rule kinds of the Matrix `global` ruleset. */
export const PUSH_RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type PushRuleKind = (typeof PUSH_RULE_KINDS)[number];

/**
 * Body of `push_rule.put`: a user-defined rule (`actions`, and `conditions` or `pattern` as its kind needs;
 * `position` orders user rules within a kind, higher first), or, for a server-default rule (`rule_id` starting
 * with "."), only the user's `enabled` and `actions` over the default.
 */
export interface PushRuleBody {
  kind: PushRuleKind;
  rule_id: string;
  enabled?: boolean;
  actions?: unknown[];
  conditions?: Array<Record<string, unknown>>;
  pattern?: string;
  position?: number;
}

/**
 * Body of `password.set` (key `verifier`): the account's password verifier, `scrypt$N$r$p$<salt>$<hash>`
 * (base64 salt and hash), so every home of the account checks a password login; never the password.
 */
export interface PasswordBody {
  verifier: string;
}

/** Body of a tombstone (`device.delete`): empty. */
export type EmptyBody = Record<string, never>;

/** `device.put`: the Matrix DeviceKeys object (/keys/upload `device_keys`), plus our display name and hosting home. */
export const validateDeviceBody: BodyValidator<DeviceBody> = (body, key, userId) => {
  exactFields(body, '$.body', ['user_id', 'device_id', 'algorithms', 'keys', 'signatures'], ['display_name', 'home']);
  expectUser(body.user_id, '$.body.user_id', userId);
  if (expectString(body.device_id, '$.body.device_id') !== key) fail('$.body.device_id', 'must equal the op key');
  const algorithms = expectArray(body.algorithms, '$.body.algorithms', MAX_ALGORITHMS);
  algorithms.forEach((a, i) => expectText(expectString(a, `$.body.algorithms[${i}]`), '$.body.algorithms', 255));
  expectStringMap(body.keys, '$.body.keys', MAX_KEYS);
  expectSignatureMap(body.signatures, '$.body.signatures');
  if (body.display_name !== undefined) {
    expectText(expectString(body.display_name, '$.body.display_name'), '$.body.display_name', 255, true);
  }
  if (body.home !== undefined && !isPeerId(expectString(body.home, '$.body.home'))) {
    fail('$.body.home', 'not the PeerId of an Ed25519 key');
  }
  // Keys must be self-signed on every replica, so no home can plant a device whose keys its device never signed.
  // A device that has just logged in has no keys yet, and nothing to sign.
  const device = body as unknown as DeviceBody;
  if (Object.keys(device.keys).length > 0) {
    const refusal = deviceSignatureRefusal(device);
    if (refusal !== undefined) fail('$.body.signatures', refusal);
  }
  return device;
};

/** A tombstone: it wins like any op and hides its key; the body is empty. */
export const validateEmptyBody: BodyValidator<EmptyBody> = (body) => {
  exactFields(body, '$.body', [], []);
  return body as EmptyBody;
};

/** `member.set`: the membership of the account's user in one room, with the signed event where there is one. */
export const validateMemberBody: BodyValidator<MemberBody> = (body, key, userId) => {
  exactFields(body, '$.body', ['room_id', 'membership'], ['event']);
  const roomId = expectString(body.room_id, '$.body.room_id');
  if (roomId !== key) fail('$.body.room_id', 'must equal the op key');
  if (!roomId.startsWith('!') || roomId.length < 2) fail('$.body.room_id', 'a room id starts with "!"');
  const membership = body.membership;
  if (typeof membership !== 'string' || !(MEMBERSHIPS as readonly string[]).includes(membership)) {
    fail('$.body.membership', `must be one of ${MEMBERSHIPS.join(', ')}`);
  }
  if (body.event !== undefined) {
    // The event's own signatures are checked by the room, not here; we only check it is about this change.
    const event = expectRecord(body.event, '$.body.event');
    if (event.type !== 'm.room.member') fail('$.body.event.type', 'must be m.room.member');
    if (event.room_id !== undefined && event.room_id !== roomId) fail('$.body.event.room_id', 'must equal room_id');
    if (userId !== undefined && event.state_key !== userId) fail('$.body.event.state_key', 'must be the account user');
    const content = expectRecord(event.content, '$.body.event.content');
    if (content.membership !== membership) fail('$.body.event.content.membership', 'must equal membership');
  }
  return body as unknown as MemberBody;
};

/**
 * `cross_signing.put`: the Matrix CrossSigningKey object. Its binding to the account (the master key the
 * document names, the master key's signature on the others) needs the document: checkCrossSigning.
 */
export const validateCrossSigningBody: BodyValidator<CrossSigningBody> = (body, key, userId) => {
  if (!(CROSS_SIGNING_USAGES as readonly string[]).includes(key)) {
    fail('$.key', `must be one of ${CROSS_SIGNING_USAGES.join(', ')}`);
  }
  exactFields(body, '$.body', ['user_id', 'usage', 'keys'], ['signatures']);
  expectUser(body.user_id, '$.body.user_id', userId);
  const usage = expectArray(body.usage, '$.body.usage', 3).map((u, i) => expectString(u, `$.body.usage[${i}]`));
  if (!usage.includes(key)) fail('$.body.usage', 'must include the op key');
  const keys = expectStringMap(body.keys, '$.body.keys', 1);
  if (Object.keys(keys).length !== 1) fail('$.body.keys', 'a cross-signing key has exactly one key');
  if (body.signatures !== undefined) expectSignatureMap(body.signatures, '$.body.signatures');
  return body as unknown as CrossSigningBody;
};

/** The op key of a keyed pair: the canonical JSON of `[a, b]` (room IDs and rule IDs may contain any separator). */
export function pairKey(a: string, b: string): string {
  return canonicalJson([a, b]);
}

const MAX_ACCOUNT_DATA_TYPE_BYTES = 255;
const MAX_PUSH_ACTIONS = 16;
const MAX_PUSH_CONDITIONS = 16;

const MAX_CONTENT_DEPTH = 32;

/** Account-data content: the JSON text of an object, nested at most MAX_CONTENT_DEPTH deep (size: the body cap). */
export function expectContent(value: unknown, path: string): void {
  const text = expectString(value, path);
  if (jsonTextDepth(text, MAX_CONTENT_DEPTH) > MAX_CONTENT_DEPTH) fail(path, `nests deeper than ${MAX_CONTENT_DEPTH}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail(path, 'is not JSON text');
  }
  expectRecord(parsed, path);
}

/** `account_data.put`: global account data; the key is the event type. */
export const validateAccountDataBody: BodyValidator<AccountDataBody> = (body, key) => {
  exactFields(body, '$.body', ['type', 'content_json'], []);
  const type = expectString(body.type, '$.body.type');
  expectText(type, '$.body.type', MAX_ACCOUNT_DATA_TYPE_BYTES);
  if (type !== key) fail('$.body.type', 'must equal the op key');
  expectContent(body.content_json, '$.body.content_json');
  return body as unknown as AccountDataBody;
};

/** `room_account_data.put`: account data of one room; the key is `pairKey(room_id, type)`. */
export const validateRoomAccountDataBody: BodyValidator<RoomAccountDataBody> = (body, key) => {
  exactFields(body, '$.body', ['room_id', 'type', 'content_json'], []);
  const roomId = expectString(body.room_id, '$.body.room_id');
  expectText(roomId, '$.body.room_id', 255);
  if (!roomId.startsWith('!')) fail('$.body.room_id', 'a room id starts with "!"');
  const type = expectString(body.type, '$.body.type');
  expectText(type, '$.body.type', MAX_ACCOUNT_DATA_TYPE_BYTES);
  if (pairKey(roomId, type) !== key) fail('$.key', 'must be the canonical JSON of [room_id, type]');
  expectContent(body.content_json, '$.body.content_json');
  return body as unknown as RoomAccountDataBody;
};

/** `profile.set`: one profile field, named by the key. */
export const validateProfileBody: BodyValidator<ProfileBody> = (body, key) => {
  if (!(PROFILE_FIELDS as readonly string[]).includes(key))
    fail('$.key', `must be one of ${PROFILE_FIELDS.join(', ')}`);
  exactFields(body, '$.body', [key], []);
  const value = expectString(body[key], `$.body.${key}`);
  expectText(value, `$.body.${key}`, key === 'avatar_url' ? 1024 : 255, true);
  if (key === 'avatar_url' && value !== '' && !value.startsWith('mxc://'))
    fail('$.body.avatar_url', 'must be an mxc:// URI');
  return body as unknown as ProfileBody;
};

/** `push_rule.put`: one rule of the `global` ruleset; the key is `pairKey(kind, rule_id)`. */
export const validatePushRuleBody: BodyValidator<PushRuleBody> = (body, key) => {
  exactFields(body, '$.body', ['kind', 'rule_id'], ['enabled', 'actions', 'conditions', 'pattern', 'position']);
  const kind = expectString(body.kind, '$.body.kind');
  if (!(PUSH_RULE_KINDS as readonly string[]).includes(kind))
    fail('$.body.kind', `must be one of ${PUSH_RULE_KINDS.join(', ')}`);
  const ruleId = expectString(body.rule_id, '$.body.rule_id');
  expectText(ruleId, '$.body.rule_id', 255);
  if (pairKey(kind, ruleId) !== key) fail('$.key', 'must be the canonical JSON of [kind, rule_id]');
  if (body.enabled !== undefined && typeof body.enabled !== 'boolean') fail('$.body.enabled', 'must be a boolean');
  if (body.actions !== undefined) expectArray(body.actions, '$.body.actions', MAX_PUSH_ACTIONS);
  if (ruleId.startsWith('.')) {
    // A server-default rule: the user may only switch it and change its actions.
    for (const field of ['conditions', 'pattern', 'position']) {
      if (body[field] !== undefined) fail(`$.body.${field}`, 'a server-default rule takes only enabled and actions');
    }
    return body as unknown as PushRuleBody;
  }
  if (body.actions === undefined) fail('$.body.actions', 'missing field');
  if (body.position !== undefined) expectInteger(body.position, '$.body.position', -(2 ** 53 - 1));
  if (kind === 'content') {
    expectText(expectString(body.pattern, '$.body.pattern'), '$.body.pattern', 1024);
    if (body.conditions !== undefined) fail('$.body.conditions', 'a content rule has a pattern, not conditions');
  } else if (kind === 'override' || kind === 'underride') {
    if (body.pattern !== undefined) fail('$.body.pattern', `a ${kind} rule has conditions, not a pattern`);
    const conditions = expectArray(body.conditions ?? [], '$.body.conditions', MAX_PUSH_CONDITIONS);
    conditions.forEach((c, i) => expectRecord(c, `$.body.conditions[${i}]`));
  } else if (body.pattern !== undefined || body.conditions !== undefined) {
    fail('$.body', `a ${kind} rule has neither conditions nor a pattern (its rule_id says what it matches)`);
  }
  return body as unknown as PushRuleBody;
};

const SCRYPT_VERIFIER =
  /^scrypt\$(\d{1,8})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/]{16,88}={0,2})\$([A-Za-z0-9+/]{43,88}={0,2})$/;

/**
 * `password.set`: an scrypt verifier with costs a home can afford to check and an attacker cannot shrink:
 * N a power of two from 2^14 to 2^20, r 8 to 32, p 1 to 16 (the verifier's own costs are what a login pays).
 */
export const validatePasswordBody: BodyValidator<PasswordBody> = (body, key) => {
  if (key !== 'verifier') fail('$.key', 'must be "verifier"');
  exactFields(body, '$.body', ['verifier'], []);
  const match = SCRYPT_VERIFIER.exec(expectString(body.verifier, '$.body.verifier'));
  if (match === null) fail('$.body.verifier', 'must be scrypt$N$r$p$<base64 salt>$<base64 hash>');
  const [n, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (n < 2 ** 14 || n > 2 ** 20 || (n & (n - 1)) !== 0)
    fail('$.body.verifier', 'N must be a power of two from 2^14 to 2^20');
  if (r < 8 || r > 32) fail('$.body.verifier', 'r must be from 8 to 32');
  if (p < 1 || p > 16) fail('$.body.verifier', 'p must be from 1 to 16');
  return body as unknown as PasswordBody;
};
