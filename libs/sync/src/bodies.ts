// The body of each op kind: its type and its validator. A validator checks an untrusted body (already a
// plain object within MAX_BODY_BYTES) against the op key and the account's user, throws OpRejectedError
// (`malformed`) when it is not a body of its kind, and returns it typed. The registry (kinds.ts) names one
// validator per kind; the type a validator returns is the type of that kind's body everywhere else.
import { isPeerId } from '@polyhome/identity';
import {
  exactFields,
  expectArray,
  expectRecord,
  expectSignatureMap,
  expectString,
  expectStringMap,
  expectText,
  expectUser,
  fail,
} from './checks.js';

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
  return body as unknown as DeviceBody;
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
