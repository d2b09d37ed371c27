// The authorization rules of room versions 10 and 11 (spec "Room versions" v10 and v11, "Authorization
// rules"; server-server API "Auth events selection"). Rule numbers in comments are the spec's. The check is
// pure and synchronous: it reads only the event and the auth state the caller passes in, so state
// resolution can run it over any candidate state.
import { decodeBase64, signedBytes, verifyBytes } from '@polyhome/identity';
import { eventIdOf } from './hashes.js';
import { isCanonicalInteger, isJsonObject, isUserId, own, serverNameOf } from './json.js';
import {
  stateKeyOf,
  SUPPORTED_ROOM_VERSIONS,
  type AuthCheck,
  type CheckResult,
  type JsonObject,
  type Pdu,
  type RoomVersionId,
  type StateTuple,
} from './types.js';

/** Stable codes of auth refusals (the `code` of a RefusalReason from checkAuth and checkAuthEvents). */
export type AuthRefusalCode =
  | 'create_has_prev_events'
  | 'create_room_domain_mismatch'
  | 'unsupported_room_version'
  | 'create_missing_creator'
  | 'create_has_auth_events'
  | 'duplicate_auth_event'
  | 'unexpected_auth_event'
  | 'missing_create'
  | 'wrong_room'
  | 'not_federated'
  | 'invalid_membership_event'
  | 'authoriser_not_signed'
  | 'authoriser_invalid'
  | 'join_sender_mismatch'
  | 'banned'
  | 'join_not_allowed'
  | 'third_party_invite_invalid'
  | 'third_party_invite_not_signed'
  | 'not_in_room'
  | 'target_in_room_or_banned'
  | 'insufficient_power'
  | 'leave_not_allowed'
  | 'knock_not_allowed'
  | 'unknown_membership'
  | 'state_key_not_sender'
  | 'invalid_power_levels'
  | 'invalid_event';

/** Power levels the spec names, with their defaults when the `m.room.power_levels` content omits them. */
const NAMED_LEVEL_DEFAULTS = { ban: 50, kick: 50, redact: 50, invite: 0 } as const;
const LEVEL_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

/** Work bounds for third-party invite checks: how many signatures and public keys are tried at most. */
const MAX_THIRD_PARTY_SIGNATURES = 16;
const MAX_THIRD_PARTY_PUBLIC_KEYS = 16;
/** Work bound for `users`, `events` and `notifications` maps in power levels (checked entries). */
const MAX_POWER_LEVEL_ENTRIES = 10_000;

const CREATE = stateKeyOf('m.room.create', '');
const POWER_LEVELS = stateKeyOf('m.room.power_levels', '');
const JOIN_RULES = stateKeyOf('m.room.join_rules', '');

function refuse(code: AuthRefusalCode, message: string): CheckResult {
  return { ok: false, code, message };
}
const ALLOW: CheckResult = { ok: true };

/**
 * The (type, state_key) keys whose current state events are the auth events of `pdu` (server-server API
 * "Auth events selection"): the create event, the power levels, the sender's membership and, for
 * membership events, the target's membership, the join rules (join, invite, knock), the third-party
 * invite named by the token (invites) and the authorising user's membership (joins). Empty for
 * `m.room.create`. No duplicates; the order is stable.
 */
export function authTypesFor(_version: RoomVersionId, pdu: Pdu): StateTuple[] {
  if (pdu.type === 'm.room.create') return [];
  const keys = new Set<StateTuple>([CREATE, POWER_LEVELS, stateKeyOf('m.room.member', pdu.sender)]);
  if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string') {
    keys.add(stateKeyOf('m.room.member', pdu.state_key));
    const membership = own(pdu.content, 'membership');
    if (membership === 'join' || membership === 'invite' || membership === 'knock') keys.add(JOIN_RULES);
    const token = thirdPartyToken(pdu.content);
    if (membership === 'invite' && token !== undefined) keys.add(stateKeyOf('m.room.third_party_invite', token));
    // Joins only (spec v1.16 wording; Synapse and ruma agree). Both versions support restricted rooms.
    const authoriser = own(pdu.content, 'join_authorised_via_users_server');
    if (membership === 'join' && typeof authoriser === 'string') keys.add(stateKeyOf('m.room.member', authoriser));
  }
  return [...keys];
}

/**
 * Auth rule 2.1, 2.2 and 2.4 over the events a PDU names in `auth_events` (in any order): each must be a
 * state event of a key `authTypesFor` allows, no key twice, and the create event among them. The create
 * event itself must name none; all must be of the event's room (as Synapse checks). Rule 2.3 (no rejected
 * auth events) is the caller's: it knows which events
 * it rejected. Bounded by the number of auth events passed in.
 */
export function checkAuthEvents(version: RoomVersionId, pdu: Pdu, authEvents: readonly Pdu[]): CheckResult {
  if (pdu.type === 'm.room.create') {
    return authEvents.length === 0
      ? ALLOW
      : refuse('create_has_auth_events', 'An m.room.create event must have no auth_events.');
  }
  const allowed = new Set(authTypesFor(version, pdu));
  const seen = new Set<StateTuple>();
  for (const event of authEvents) {
    if (typeof event.state_key !== 'string') {
      return refuse('unexpected_auth_event', `Auth event of type ${event.type} is not a state event.`);
    }
    if (event.room_id !== pdu.room_id) {
      return refuse('wrong_room', `Auth event (${event.type}, ${event.state_key}) belongs to another room.`);
    }
    const key = stateKeyOf(event.type, event.state_key);
    if (seen.has(key)) {
      return refuse('duplicate_auth_event', `auth_events names two events for (${event.type}, ${event.state_key}).`);
    }
    seen.add(key);
    if (!allowed.has(key)) {
      return refuse(
        'unexpected_auth_event',
        `auth_events names (${event.type}, ${event.state_key}), which the auth events selection does not pick for this event.`,
      );
    }
  }
  if (!seen.has(CREATE)) return refuse('missing_create', 'auth_events does not include the m.room.create event.');
  return ALLOW;
}

/** The auth state made of an event's auth events, keyed by (type, state_key). Non-state events are skipped. */
export function authStateOf(authEvents: Iterable<Pdu>): Map<StateTuple, Pdu> {
  const state = new Map<StateTuple, Pdu>();
  for (const event of authEvents) {
    if (typeof event.state_key === 'string') state.set(stateKeyOf(event.type, event.state_key), event);
  }
  return state;
}

/**
 * The authorization rules of room versions 10 and 11 for one event against `authState` (at least the
 * entries `authTypesFor` names; extra entries are ignored). Rule 2's checks on the event's own
 * `auth_events` list are in checkAuthEvents. For rule 4.2 this checks that the authorising server's
 * signature is present; that it verifies is verifyPduSignatures' job, which requires it.
 */
export const checkAuth: AuthCheck = (version, event, authState) => {
  if (!SUPPORTED_ROOM_VERSIONS.includes(version)) {
    return refuse('unsupported_room_version', `Room version ${String(version)} is not implemented; use 10 or 11.`);
  }
  const shape = checkShape(event);
  if (shape !== undefined) return shape;
  // Rule 1.
  if (event.type === 'm.room.create') return checkCreate(version, event);

  // Rule 2.4 (on the state given).
  const create = authState.get(CREATE);
  if (create === undefined) return refuse('missing_create', 'The auth state has no m.room.create event.');
  if (create.room_id !== event.room_id) {
    return refuse('wrong_room', `The m.room.create event is for ${create.room_id}, the event for ${event.room_id}.`);
  }
  // Rule 3.
  if (own(create.content, 'm.federate') === false && serverNameOf(event.sender) !== serverNameOf(create.sender)) {
    return refuse(
      'not_federated',
      'The room is not federated (m.federate is false) and the sender is on another server.',
    );
  }
  const ctx = new AuthContext(version, authState, create);
  // Rule 4.
  if (event.type === 'm.room.member') return checkMember(ctx, event);
  // Rule 5.
  if (ctx.membershipOf(event.sender) !== 'join') {
    return refuse('not_in_room', `${event.sender} is not joined to the room.`);
  }
  const senderLevel = ctx.userLevel(event.sender);
  // Rule 6.
  if (event.type === 'm.room.third_party_invite') {
    const invite = ctx.namedLevel('invite');
    return senderLevel >= invite
      ? ALLOW
      : refuse(
          'insufficient_power',
          `Inviting by third party needs power level ${invite}; ${event.sender} has ${senderLevel}.`,
        );
  }
  // Rule 7.
  const required = ctx.eventLevel(event.type, typeof event.state_key === 'string');
  if (required > senderLevel) {
    return refuse(
      'insufficient_power',
      `Sending ${event.type} needs power level ${required}; ${event.sender} has ${senderLevel}.`,
    );
  }
  // Rule 8.
  if (typeof event.state_key === 'string' && event.state_key.startsWith('@') && event.state_key !== event.sender) {
    return refuse(
      'state_key_not_sender',
      `A state_key starting with @ must be the sender's own user id (${event.sender}).`,
    );
  }
  // Rule 9.
  if (event.type === 'm.room.power_levels') return checkPowerLevels(ctx, event, senderLevel);
  // Rule 10. Redactions land here too: whether a redaction is applied is decided later (redactionAllowed).
  return ALLOW;
};

/**
 * Whether a redaction that passed the auth rules may be applied to `target` (spec "Handling redactions",
 * from v3): the redaction's sender has at least the redact level, or is on the same server as the target's
 * sender. Both events must be in the same room.
 */
export function redactionAllowed(
  version: RoomVersionId,
  redaction: Pdu,
  target: Pdu,
  authState: ReadonlyMap<StateTuple, Pdu>,
): CheckResult {
  if (redaction.room_id !== target.room_id) {
    return refuse('wrong_room', 'The redaction and the event it redacts are in different rooms.');
  }
  if (serverNameOf(redaction.sender) === serverNameOf(target.sender)) return ALLOW;
  const create = authState.get(CREATE);
  if (create === undefined) return refuse('missing_create', 'The auth state has no m.room.create event.');
  const ctx = new AuthContext(version, authState, create);
  const level = ctx.userLevel(redaction.sender);
  const redact = ctx.namedLevel('redact');
  return level >= redact
    ? ALLOW
    : refuse(
        'insufficient_power',
        `Redacting another server's event needs power level ${redact}; ${redaction.sender} has ${level}.`,
      );
}

/**
 * The fields the rules read, typed as the rules need them: checkAuth is meant for PDUs that passed
 * validatePdu, but answers rather than throws for anything else.
 */
function checkShape(event: Pdu): CheckResult | undefined {
  const ok =
    typeof event.room_id === 'string' &&
    typeof event.sender === 'string' &&
    typeof event.type === 'string' &&
    isJsonObject(event.content) &&
    Array.isArray(event.prev_events) &&
    (event.state_key === undefined || typeof event.state_key === 'string');
  return ok ? undefined : refuse('invalid_event', 'The event is not a PDU (check it with validatePdu first).');
}

function checkCreate(version: RoomVersionId, event: Pdu): CheckResult {
  // 1.1
  if (event.prev_events.length > 0)
    return refuse('create_has_prev_events', 'An m.room.create event must have no prev_events.');
  // 1.2
  const roomServer = serverNameOf(event.room_id);
  if (roomServer === undefined || roomServer !== serverNameOf(event.sender)) {
    return refuse('create_room_domain_mismatch', "The room id's server name must be the sender's.");
  }
  // 1.3: a room version we recognise. Absent means version 1, which is not one of ours either; a
  // recognised version other than the one the room is processed as would apply the wrong rules.
  const roomVersion = own(event.content, 'room_version');
  if (roomVersion !== version) {
    return refuse(
      'unsupported_room_version',
      `content.room_version is ${JSON.stringify(roomVersion) ?? 'absent (version 1)'}; this room is checked as version ${version}.`,
    );
  }
  // 1.4 (v10 only; v11 takes the creator from `sender`).
  if (version === '10' && own(event.content, 'creator') === undefined) {
    return refuse('create_missing_creator', 'In room version 10 an m.room.create event needs content.creator.');
  }
  return ALLOW;
}

function checkMember(ctx: AuthContext, event: Pdu): CheckResult {
  const membership = own(event.content, 'membership');
  // 4.1
  if (typeof event.state_key !== 'string' || typeof membership !== 'string') {
    return refuse('invalid_membership_event', 'An m.room.member event needs a state_key and content.membership.');
  }
  const target = event.state_key;
  // 4.2
  const authoriser = own(event.content, 'join_authorised_via_users_server');
  if (authoriser !== undefined) {
    const server = typeof authoriser === 'string' ? serverNameOf(authoriser) : undefined;
    if (!isUserId(authoriser) || server === undefined) {
      return refuse('authoriser_invalid', 'content.join_authorised_via_users_server must be a user id.');
    }
    const signatures: unknown = own(event, 'signatures');
    const byServer = isJsonObject(signatures) ? own(signatures, server) : undefined;
    if (!isJsonObject(byServer) || Object.keys(byServer).length === 0) {
      return refuse(
        'authoriser_not_signed',
        `The event must be signed by ${server}, the server of the authorising user.`,
      );
    }
  }
  switch (membership) {
    case 'join':
      return checkJoin(ctx, event, target, authoriser);
    case 'invite':
      return checkInvite(ctx, event, target);
    case 'leave':
      return checkLeave(ctx, event, target);
    case 'ban':
      return checkBan(ctx, event, target);
    case 'knock':
      return checkKnock(ctx, event, target);
    default:
      // 4.8
      return refuse(
        'unknown_membership',
        `Membership ${JSON.stringify(membership)} is not one of join, invite, leave, ban, knock.`,
      );
  }
}

function checkJoin(ctx: AuthContext, event: Pdu, target: string, authoriser: unknown): CheckResult {
  // 4.3.1: the creator's own join right after the create event.
  if (event.prev_events.length === 1 && target === ctx.creator) {
    if (event.prev_events[0] === ctx.createEventId()) return ALLOW;
  }
  // 4.3.2
  if (event.sender !== target) return refuse('join_sender_mismatch', 'Only the user themselves can join.');
  const current = ctx.membershipOf(target);
  // 4.3.3
  if (current === 'ban') return refuse('banned', `${target} is banned from the room.`);
  const rule = ctx.joinRule();
  // 4.3.4
  if (rule === 'invite' || rule === 'knock') {
    return current === 'invite' || current === 'join'
      ? ALLOW
      : refuse('join_not_allowed', `The room's join rule is ${rule}: ${target} needs an invite first.`);
  }
  // 4.3.5
  if (rule === 'restricted' || rule === 'knock_restricted') {
    if (current === 'join' || current === 'invite') return ALLOW;
    if (typeof authoriser !== 'string') {
      return refuse(
        'join_not_allowed',
        `The room's join rule is ${rule}: the join needs join_authorised_via_users_server.`,
      );
    }
    // "A user with sufficient permission to invite other users": joined (inviting needs that) and at
    // least the invite level, as Synapse and ruma read it.
    if (ctx.membershipOf(authoriser) !== 'join') {
      return refuse('join_not_allowed', `The authorising user ${authoriser} is not joined to the room.`);
    }
    const level = ctx.userLevel(authoriser);
    const invite = ctx.namedLevel('invite');
    return level >= invite
      ? ALLOW
      : refuse(
          'insufficient_power',
          `The authorising user ${authoriser} has power ${level}, below the invite level ${invite}.`,
        );
  }
  // 4.3.6 and 4.3.7
  return rule === 'public'
    ? ALLOW
    : refuse('join_not_allowed', `The room's join rule ${JSON.stringify(rule)} does not let ${target} join.`);
}

function checkInvite(ctx: AuthContext, event: Pdu, target: string): CheckResult {
  // 4.4.1
  if (own(event.content, 'third_party_invite') !== undefined) return checkThirdPartyInvite(ctx, event, target);
  // 4.4.2
  if (ctx.membershipOf(event.sender) !== 'join')
    return refuse('not_in_room', `${event.sender} is not joined and cannot invite.`);
  // 4.4.3
  const current = ctx.membershipOf(target);
  if (current === 'join' || current === 'ban') {
    return refuse('target_in_room_or_banned', `${target} is ${current === 'join' ? 'already joined' : 'banned'}.`);
  }
  // 4.4.4 and 4.4.5
  const level = ctx.userLevel(event.sender);
  const invite = ctx.namedLevel('invite');
  return level >= invite
    ? ALLOW
    : refuse('insufficient_power', `Inviting needs power level ${invite}; ${event.sender} has ${level}.`);
}

function checkThirdPartyInvite(ctx: AuthContext, event: Pdu, target: string): CheckResult {
  // 4.4.1.1
  if (ctx.membershipOf(target) === 'ban') return refuse('banned', `${target} is banned from the room.`);
  const invite = own(event.content, 'third_party_invite');
  const signed = isJsonObject(invite) ? own(invite, 'signed') : undefined;
  // 4.4.1.2
  if (!isJsonObject(signed))
    return refuse('third_party_invite_invalid', 'content.third_party_invite.signed is missing.');
  const mxid = own(signed, 'mxid');
  const token = own(signed, 'token');
  // 4.4.1.3
  if (typeof mxid !== 'string' || typeof token !== 'string') {
    return refuse('third_party_invite_invalid', 'third_party_invite.signed needs the strings mxid and token.');
  }
  // 4.4.1.4
  if (mxid !== target)
    return refuse('third_party_invite_invalid', 'third_party_invite.signed.mxid is not the invited user.');
  // 4.4.1.5
  const stored = ctx.state.get(stateKeyOf('m.room.third_party_invite', token));
  if (stored === undefined) {
    return refuse('third_party_invite_invalid', 'No m.room.third_party_invite in the room state matches the token.');
  }
  // 4.4.1.6
  if (stored.sender !== event.sender) {
    return refuse('third_party_invite_invalid', 'Only the sender of the m.room.third_party_invite can complete it.');
  }
  // 4.4.1.7 and 4.4.1.8
  return signedByAnyKey(signed, publicKeysOf(stored.content))
    ? ALLOW
    : refuse(
        'third_party_invite_not_signed',
        'No signature in third_party_invite.signed matches a public key of the m.room.third_party_invite.',
      );
}

/** Public keys of an `m.room.third_party_invite` content: `public_key` and each `public_keys[].public_key`. */
function publicKeysOf(content: JsonObject): Uint8Array[] {
  const texts: unknown[] = [own(content, 'public_key')];
  const list = own(content, 'public_keys');
  if (Array.isArray(list)) {
    for (const entry of list.slice(0, MAX_THIRD_PARTY_PUBLIC_KEYS))
      texts.push(isJsonObject(entry) ? own(entry, 'public_key') : undefined);
  }
  const keys: Uint8Array[] = [];
  for (const text of texts) {
    const key = typeof text === 'string' ? decodeLenientBase64(text) : undefined;
    if (key?.length === 32) keys.push(key);
  }
  return keys.slice(0, MAX_THIRD_PARTY_PUBLIC_KEYS);
}

/** Identity servers publish keys in standard or URL-safe base64, padded or not; accept all four spellings. */
function decodeLenientBase64(text: string): Uint8Array | undefined {
  try {
    return decodeBase64(text.replace(/=+$/, '').replaceAll('-', '+').replaceAll('_', '/'));
  } catch {
    return undefined;
  }
}

function signedByAnyKey(signed: JsonObject, keys: readonly Uint8Array[]): boolean {
  if (keys.length === 0) return false;
  const signatures = own(signed, 'signatures');
  if (!isJsonObject(signatures)) return false;
  let message: Uint8Array;
  try {
    message = signedBytes(signed);
  } catch {
    return false;
  }
  let tried = 0;
  for (const byServer of Object.values(signatures)) {
    if (!isJsonObject(byServer)) continue;
    for (const [keyId, text] of Object.entries(byServer)) {
      if (tried++ >= MAX_THIRD_PARTY_SIGNATURES) return false;
      if (!keyId.startsWith('ed25519:') || typeof text !== 'string') continue;
      const signature = decodeLenientBase64(text);
      if (signature === undefined) continue;
      if (keys.some((key) => verifyBytes(signature, message, key))) return true;
    }
  }
  return false;
}

function checkLeave(ctx: AuthContext, event: Pdu, target: string): CheckResult {
  const targetMembership = ctx.membershipOf(target);
  // 4.5.1
  if (event.sender === target) {
    return targetMembership === 'invite' || targetMembership === 'join' || targetMembership === 'knock'
      ? ALLOW
      : refuse('leave_not_allowed', `${target} cannot leave: their membership is ${targetMembership}.`);
  }
  // 4.5.2
  if (ctx.membershipOf(event.sender) !== 'join')
    return refuse('not_in_room', `${event.sender} is not joined and cannot kick or unban.`);
  // 4.5.3
  const senderLevel = ctx.userLevel(event.sender);
  const ban = ctx.namedLevel('ban');
  if (targetMembership === 'ban' && senderLevel < ban) {
    return refuse('insufficient_power', `Unbanning needs power level ${ban}; ${event.sender} has ${senderLevel}.`);
  }
  // 4.5.4 and 4.5.5
  return actOnTarget(ctx, event.sender, target, 'kick');
}

function checkBan(ctx: AuthContext, event: Pdu, target: string): CheckResult {
  // 6.1
  if (ctx.membershipOf(event.sender) !== 'join')
    return refuse('not_in_room', `${event.sender} is not joined and cannot ban.`);
  // 6.2 and 6.3
  return actOnTarget(ctx, event.sender, target, 'ban');
}

/** Kicking and banning: the sender needs the named level and more power than the target. */
function actOnTarget(ctx: AuthContext, sender: string, target: string, level: 'kick' | 'ban'): CheckResult {
  const senderLevel = ctx.userLevel(sender);
  const needed = ctx.namedLevel(level);
  const targetLevel = ctx.userLevel(target);
  if (senderLevel >= needed && targetLevel < senderLevel) return ALLOW;
  return refuse(
    'insufficient_power',
    `To ${level} needs power level ${needed} and more than the target's ${targetLevel}; ${sender} has ${senderLevel}.`,
  );
}

function checkKnock(ctx: AuthContext, event: Pdu, target: string): CheckResult {
  // 4.7.1
  const rule = ctx.joinRule();
  if (rule !== 'knock' && rule !== 'knock_restricted') {
    return refuse('knock_not_allowed', `The room's join rule ${JSON.stringify(rule)} does not allow knocking.`);
  }
  // 4.7.2
  if (event.sender !== target) return refuse('knock_not_allowed', 'Only the user themselves can knock.');
  // 4.7.3 and 4.7.4
  const current = ctx.membershipOf(target);
  if (current === 'ban') return refuse('banned', `${target} is banned from the room.`);
  return current === 'invite' || current === 'join'
    ? refuse('knock_not_allowed', `${target} is already ${current === 'join' ? 'joined' : 'invited'}.`)
    : ALLOW;
}

function checkPowerLevels(ctx: AuthContext, event: Pdu, senderLevel: number): CheckResult {
  const next = event.content;
  // 9.1
  for (const key of LEVEL_KEYS) {
    if (Object.hasOwn(next, key) && !isCanonicalInteger(next[key])) {
      return refuse('invalid_power_levels', `Power levels: ${key} must be an integer.`);
    }
  }
  // 9.2
  for (const key of ['events', 'notifications'] as const) {
    if (!Object.hasOwn(next, key)) continue;
    const map = next[key];
    if (!isJsonObject(map) || !integerValues(map)) {
      return refuse('invalid_power_levels', `Power levels: ${key} must be an object whose values are integers.`);
    }
  }
  // 9.3
  if (Object.hasOwn(next, 'users')) {
    const users = next.users;
    if (!isJsonObject(users) || !integerValues(users) || !Object.keys(users).every(isUserId)) {
      return refuse('invalid_power_levels', 'Power levels: users must be an object from user ids to integers.');
    }
  }
  // 9.4
  const previous = ctx.state.get(POWER_LEVELS);
  if (previous === undefined) return ALLOW;
  const current = mapOf(previous.content);
  // 9.5
  for (const key of LEVEL_KEYS) {
    const change = checkLevelChange(own(current, key), own(next, key), senderLevel, false);
    if (change !== undefined) return refuse('insufficient_power', `Power levels: ${key} ${change}`);
  }
  // 9.6 and 9.7
  for (const key of ['events', 'notifications'] as const) {
    const before = mapOf(own(current, key));
    const after = mapOf(own(next, key));
    for (const name of unionKeys(before, after)) {
      const change = checkLevelChange(own(before, name), own(after, name), senderLevel, false);
      if (change !== undefined) return refuse('insufficient_power', `Power levels: ${key}[${name}] ${change}`);
    }
  }
  // 9.8 and 9.9
  const before = mapOf(own(current, 'users'));
  const after = mapOf(own(next, 'users'));
  for (const user of unionKeys(before, after)) {
    const change = checkLevelChange(own(before, user), own(after, user), senderLevel, user !== event.sender);
    if (change !== undefined) return refuse('insufficient_power', `Power levels: users[${user}] ${change}`);
  }
  // 9.10
  return ALLOW;
}

/**
 * One entry of rule 9.5 to 9.9: undefined when the change is allowed, else why not. An unchanged entry is
 * always allowed. The current value may not exceed the sender's level (for other users' entries, may not
 * reach it), nor may the new one.
 */
function checkLevelChange(
  before: unknown,
  after: unknown,
  senderLevel: number,
  otherUser: boolean,
): string | undefined {
  const old = levelValue(before);
  const now = levelValue(after);
  if (old === now) return undefined;
  if (old !== undefined && (otherUser ? old >= senderLevel : old > senderLevel)) {
    return `is ${old} now, ${otherUser ? 'not below' : 'above'} the sender's power level ${senderLevel}.`;
  }
  if (now !== undefined && now > senderLevel) return `would be ${now}, above the sender's power level ${senderLevel}.`;
  return undefined;
}

/** A level as stored: integers only (v10 and later); anything else is treated as absent. */
function levelValue(value: unknown): number | undefined {
  return isCanonicalInteger(value) ? value : undefined;
}

function mapOf(value: unknown): JsonObject {
  return isJsonObject(value) ? value : {};
}

function integerValues(map: JsonObject): boolean {
  let n = 0;
  for (const key in map) {
    if (!Object.hasOwn(map, key)) continue;
    if (++n > MAX_POWER_LEVEL_ENTRIES || !isCanonicalInteger(map[key])) return false;
  }
  return true;
}

function unionKeys(a: JsonObject, b: JsonObject): Set<string> {
  return new Set([...Object.keys(a), ...Object.keys(b)]);
}

function thirdPartyToken(content: JsonObject): string | undefined {
  const invite = own(content, 'third_party_invite');
  const signed = isJsonObject(invite) ? own(invite, 'signed') : undefined;
  const token = isJsonObject(signed) ? own(signed, 'token') : undefined;
  return typeof token === 'string' ? token : undefined;
}

// PDUs are never changed in place (every function here returns new objects), so an object's id is fixed.
const createIds = new WeakMap<Pdu, { version: RoomVersionId; id: string }>();

/** What the rules read from the auth state, computed once per check. */
class AuthContext {
  readonly creator: string;
  private readonly powerLevels: JsonObject | undefined;

  constructor(
    private readonly version: RoomVersionId,
    readonly state: ReadonlyMap<StateTuple, Pdu>,
    private readonly create: Pdu,
  ) {
    // v11 takes the creator from the create event's sender; v10 from content.creator.
    const creator = own(create.content, 'creator');
    this.creator = version === '10' && typeof creator === 'string' ? creator : create.sender;
    const powerLevels = state.get(POWER_LEVELS);
    this.powerLevels = powerLevels === undefined ? undefined : mapOf(powerLevels.content);
  }

  /** The create event's id, hashed once per create event object (state resolution checks many joins). */
  createEventId(): string | undefined {
    const cached = createIds.get(this.create);
    if (cached?.version === this.version) return cached.id;
    try {
      const id = eventIdOf(this.version, this.create);
      createIds.set(this.create, { version: this.version, id });
      return id;
    } catch {
      return undefined;
    }
  }

  /** A user's current membership; `leave` when the state has none (the spec's default). */
  membershipOf(user: string): string {
    const membership = own(this.state.get(stateKeyOf('m.room.member', user))?.content, 'membership');
    return typeof membership === 'string' ? membership : 'leave';
  }

  /** The join rule; `invite` when there is no join rules event or it names none (as Synapse and ruma do). */
  joinRule(): string {
    const rule = own(this.state.get(JOIN_RULES)?.content, 'join_rule');
    return typeof rule === 'string' ? rule : 'invite';
  }

  /** A user's power level: `users[user]`, else `users_default`, else 0; without power levels the creator has 100. */
  userLevel(user: string): number {
    if (this.powerLevels === undefined) return user === this.creator ? 100 : 0;
    const users = own(this.powerLevels, 'users');
    const level = isJsonObject(users) ? own(users, user) : undefined;
    if (isCanonicalInteger(level)) return level;
    return levelValue(own(this.powerLevels, 'users_default')) ?? 0;
  }

  /** `ban`, `kick`, `redact` (default 50) or `invite` (default 0). */
  namedLevel(name: keyof typeof NAMED_LEVEL_DEFAULTS): number {
    const level = this.powerLevels === undefined ? undefined : levelValue(own(this.powerLevels, name));
    return level ?? NAMED_LEVEL_DEFAULTS[name];
  }

  /** The level needed to send an event type: `events[type]`, else `state_default` (50; 0 without power levels) or `events_default` (0). */
  eventLevel(type: string, isState: boolean): number {
    if (this.powerLevels === undefined) return 0;
    const events = own(this.powerLevels, 'events');
    const level = isJsonObject(events) ? own(events, type) : undefined;
    if (isCanonicalInteger(level)) return level;
    return isState
      ? (levelValue(own(this.powerLevels, 'state_default')) ?? 50)
      : (levelValue(own(this.powerLevels, 'events_default')) ?? 0);
  }
}
