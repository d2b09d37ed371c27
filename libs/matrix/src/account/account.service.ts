import { Inject, Injectable } from '@nestjs/common';
import { CanonicalJsonError, canonicalJsonBytes } from '@polyhome/identity';
import { MAX_BODY_BYTES, pairKey, PUSH_RULE_KINDS, type PushRuleBody, type PushRuleKind } from '@polyhome/sync';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, type JsonRecord } from '../common/json.js';
import { randomToken } from '../common/random.js';
import { MATRIX_HOME_PORT, MATRIX_STORE, type MatrixHomePort, type MatrixStore } from '../port.js';
import { accountDataOf, contentOf, pushRulesOf, roomAccountDataOf } from './state-views.js';
import { ruleset, userRulesOf, type PushRule, type PushRuleset } from './push-rules.js';

/** Account-data types a client may not set with the account-data API (the spec's rule): they have their own. */
const RESERVED_ACCOUNT_DATA = new Set(['m.push_rules', 'm.fully_read']);
/** The largest filter a client may store, as canonical JSON. */
export const MAX_FILTER_BYTES = 16 * 1024;
/** Spacing of user push-rule positions: room for many insertions between two rules before renumbering. */
const POSITION_STEP = 2 ** 32;
const ROOM_ID = /^![^:]{1,255}:.{1,255}$/;
const TYPE_MAX_BYTES = 255;

/**
 * The account's own data that every home serves alike: account data (global and per room), profile and push
 * rules are replicated ops of the account (`account_data.put`, `room_account_data.put`, `profile.set`,
 * `push_rule.*`), so a client sees the same on any home. Filters are per home (a client uses them on the home
 * it made them on), stored locally.
 */
@Injectable()
export class AccountService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
  ) {}

  async getAccountData(session: MatrixSession, userId: string, type: string, roomId?: string): Promise<JsonRecord> {
    this.ownUser(session, userId, 'read account data of');
    checkType(type);
    const state = await this.port.state(session.serverName);
    const body =
      roomId === undefined ? accountDataOf(state)[type] : roomAccountDataOf(state)[pairKey(checkRoomId(roomId), type)];
    if (body === undefined) throw new MatrixError('M_NOT_FOUND', `No account data of type ${type} is set.`);
    return contentOf(body);
  }

  async putAccountData(
    session: MatrixSession,
    userId: string,
    type: string,
    input: unknown,
    roomId?: string,
  ): Promise<Record<string, never>> {
    this.ownUser(session, userId, 'set account data for');
    checkType(type);
    if (RESERVED_ACCOUNT_DATA.has(type)) {
      throw new MatrixError('M_BAD_JSON', `${type} cannot be set through the account-data API.`, 405);
    }
    const content = bodyOf(input);
    if (roomId === undefined) {
      const body = { type, content_json: JSON.stringify(content) };
      checkSize(body, 'account data');
      await this.port.applyLocal(session.serverName, [{ op: 'account_data.put', key: type, body }]);
    } else {
      const room = checkRoomId(roomId);
      const body = { room_id: room, type, content_json: JSON.stringify(content) };
      checkSize(body, 'account data');
      await this.port.applyLocal(session.serverName, [{ op: 'room_account_data.put', key: pairKey(room, type), body }]);
    }
    return {};
  }

  /** GET /profile/{userId}: the profile of an account hosted here (other accounts' profiles come with federation). */
  async getProfile(userId: string, field?: 'displayname' | 'avatar_url'): Promise<JsonRecord> {
    const serverName = await this.hostedServerName(userId);
    const state = await this.port.state(serverName);
    const profile: JsonRecord = {};
    for (const [key, body] of Object.entries(state.profile)) {
      const value = (body as Record<string, string>)[key];
      if (typeof value === 'string' && value !== '') profile[key] = value;
    }
    if (field === undefined) return profile;
    if (profile[field] === undefined) throw new MatrixError('M_NOT_FOUND', `${userId} has no ${field} set.`);
    return { [field]: profile[field] };
  }

  async setProfile(
    session: MatrixSession,
    userId: string,
    field: 'displayname' | 'avatar_url',
    input: unknown,
  ): Promise<Record<string, never>> {
    this.ownUser(session, userId, 'change the profile of');
    const raw = bodyOf(input)[field];
    const value = raw === undefined || raw === null ? '' : raw;
    if (typeof value !== 'string') throw new MatrixError('M_BAD_JSON', `${field} must be a string.`);
    if (field === 'avatar_url' && value !== '' && !value.startsWith('mxc://')) {
      throw new MatrixError('M_INVALID_PARAM', 'avatar_url must be an mxc:// URI.');
    }
    const max = field === 'avatar_url' ? 1024 : 255;
    if (new TextEncoder().encode(value).length > max) {
      throw new MatrixError('M_TOO_LARGE', `${field} is longer than ${max} bytes.`);
    }
    await this.port.applyLocal(session.serverName, [
      { op: 'profile.set', key: field, body: { [field]: value } as JsonRecord },
    ]);
    return {};
  }

  /** The whole `global` ruleset of the session's account. */
  async pushRules(session: MatrixSession): Promise<PushRuleset> {
    const state = await this.port.state(session.serverName);
    return ruleset(session.userId, pushRulesOf(state));
  }

  async pushRule(session: MatrixSession, scope: string, kind: string, ruleId: string): Promise<PushRule> {
    const k = checkScopeAndKind(scope, kind);
    const found = (await this.pushRules(session))[k].find((r) => r.rule_id === ruleId);
    if (found === undefined) throw new MatrixError('M_NOT_FOUND', `No ${kind} push rule ${ruleId}.`);
    return found;
  }

  /** PUT /pushrules/global/{kind}/{ruleId}, with `before`/`after` placing a user rule among the others. */
  async putPushRule(
    session: MatrixSession,
    scope: string,
    kind: string,
    ruleId: string,
    query: Record<string, unknown>,
    input: unknown,
  ): Promise<Record<string, never>> {
    const k = checkScopeAndKind(scope, kind);
    if (ruleId.startsWith('.')) {
      throw new MatrixError('M_INVALID_PARAM', 'Rule ids starting with "." are reserved for server-default rules.');
    }
    if (ruleId.length === 0 || new TextEncoder().encode(ruleId).length > 255) {
      throw new MatrixError('M_INVALID_PARAM', 'A rule id is 1 to 255 bytes.');
    }
    if (k === 'room' && !ROOM_ID.test(ruleId)) throw new MatrixError('M_INVALID_PARAM', 'A room rule id is a room ID.');
    if (k === 'sender' && !/^@[^:]+:.+$/.test(ruleId)) {
      throw new MatrixError('M_INVALID_PARAM', 'A sender rule id is a user ID.');
    }
    const body = bodyOf(input);
    const actions = body['actions'];
    if (!Array.isArray(actions)) throw new MatrixError('M_MISSING_PARAM', 'actions is required (an array).');
    const rule: PushRuleBody = { kind: k, rule_id: ruleId, actions, enabled: true };
    if (k === 'content') {
      if (typeof body['pattern'] !== 'string')
        throw new MatrixError('M_MISSING_PARAM', 'A content rule needs a pattern.');
      rule.pattern = body['pattern'];
    } else if (k === 'override' || k === 'underride') {
      const conditions = body['conditions'] ?? [];
      if (!Array.isArray(conditions) || !conditions.every(isRecord)) {
        throw new MatrixError('M_BAD_JSON', 'conditions must be an array of objects.');
      }
      rule.conditions = conditions;
    }
    const state = await this.port.state(session.serverName);
    const mine = userRulesOf(pushRulesOf(state), k);
    const existing = mine.find((r) => r.rule_id === ruleId);
    if (existing?.enabled === false) rule.enabled = false;
    const changes = place(k, rule, mine, existing, anchorOf(query, 'before'), anchorOf(query, 'after'));
    for (const change of changes) checkSize(change, 'push rule');
    await this.port.applyLocal(
      session.serverName,
      changes.map((c) => ({ op: 'push_rule.put' as const, key: pairKey(c.kind, c.rule_id), body: { ...c } })),
    );
    return {};
  }

  async deletePushRule(
    session: MatrixSession,
    scope: string,
    kind: string,
    ruleId: string,
  ): Promise<Record<string, never>> {
    const k = checkScopeAndKind(scope, kind);
    if (ruleId.startsWith('.')) {
      throw new MatrixError('M_INVALID_PARAM', 'Server-default rules cannot be deleted; disable them instead.');
    }
    await this.pushRule(session, scope, kind, ruleId);
    await this.port.applyLocal(session.serverName, [{ op: 'push_rule.delete', key: pairKey(k, ruleId), body: {} }]);
    return {};
  }

  /** PUT .../enabled and .../actions: on a user rule, a new version of it; on a default, the user's override. */
  async setPushRuleAttribute(
    session: MatrixSession,
    scope: string,
    kind: string,
    ruleId: string,
    attribute: 'enabled' | 'actions',
    input: unknown,
  ): Promise<Record<string, never>> {
    const k = checkScopeAndKind(scope, kind);
    const value = bodyOf(input)[attribute];
    if (attribute === 'enabled' && typeof value !== 'boolean') {
      throw new MatrixError('M_BAD_JSON', 'enabled must be a boolean.');
    }
    if (attribute === 'actions' && !Array.isArray(value))
      throw new MatrixError('M_BAD_JSON', 'actions must be an array.');
    await this.pushRule(session, scope, kind, ruleId);
    const state = await this.port.state(session.serverName);
    const key = pairKey(k, ruleId);
    const base: PushRuleBody = pushRulesOf(state)[key] ?? { kind: k, rule_id: ruleId };
    const body = { ...base, [attribute]: value } as PushRuleBody;
    checkSize(body, 'push rule');
    await this.port.applyLocal(session.serverName, [{ op: 'push_rule.put', key, body: { ...body } }]);
    return {};
  }

  async createFilter(session: MatrixSession, userId: string, input: unknown): Promise<{ filter_id: string }> {
    this.ownUser(session, userId, 'create filters for');
    const filter = bodyOf(input);
    const bytes = new TextEncoder().encode(JSON.stringify(filter)).length;
    if (bytes > MAX_FILTER_BYTES) {
      throw new MatrixError('M_TOO_LARGE', `The filter is ${bytes} bytes; at most ${MAX_FILTER_BYTES}.`);
    }
    const filterId = randomToken(9);
    await this.store.saveFilter(session.serverName, filterId, filter);
    return { filter_id: filterId };
  }

  async getFilter(session: MatrixSession, userId: string, filterId: string): Promise<JsonRecord> {
    this.ownUser(session, userId, 'read filters of');
    const filter = filterId.length <= 64 ? await this.store.getFilter(session.serverName, filterId) : null;
    if (filter === null) throw new MatrixError('M_NOT_FOUND', `No filter ${filterId}.`);
    return filter;
  }

  private ownUser(session: MatrixSession, userId: string, action: string): void {
    if (userId !== session.userId) throw new MatrixError('M_FORBIDDEN', `You cannot ${action} another user.`);
  }

  private async hostedServerName(userId: string): Promise<string> {
    const serverName = /^@[^:]+:([0-9a-f]{64})$/.exec(userId)?.[1];
    const hosted = serverName === undefined ? null : await this.port.userIdOf(serverName);
    if (serverName === undefined || hosted !== userId) {
      throw new MatrixError('M_NOT_FOUND', `${userId} is not an account of this home.`);
    }
    return serverName;
  }
}

function checkType(type: string): void {
  if (type.length === 0 || new TextEncoder().encode(type).length > TYPE_MAX_BYTES) {
    throw new MatrixError('M_INVALID_PARAM', `An account-data type is 1 to ${TYPE_MAX_BYTES} bytes.`);
  }
}

function checkRoomId(roomId: string): string {
  if (!ROOM_ID.test(roomId)) throw new MatrixError('M_INVALID_PARAM', `${roomId.slice(0, 80)} is not a room ID.`);
  return roomId;
}

/**
 * Replicated bodies are canonical JSON (no floats) of at most MAX_BODY_BYTES (@polyhome/sync): refuse others
 * with a clear error before anything is made.
 */
function checkSize(body: object, what: string): void {
  let bytes: number;
  try {
    bytes = canonicalJsonBytes(body as never).length;
  } catch (err) {
    if (err instanceof CanonicalJsonError) {
      throw new MatrixError('M_BAD_JSON', `This ${what} cannot be kept: ${err.message} (use integers or strings).`);
    }
    throw err;
  }
  if (bytes > MAX_BODY_BYTES) {
    throw new MatrixError('M_TOO_LARGE', `This ${what} is ${bytes} bytes as JSON; at most ${MAX_BODY_BYTES} are kept.`);
  }
}

function checkScopeAndKind(scope: string, kind: string): PushRuleKind {
  if (scope !== 'global') throw new MatrixError('M_INVALID_PARAM', 'The only push-rule scope is "global".');
  if (!(PUSH_RULE_KINDS as readonly string[]).includes(kind)) {
    throw new MatrixError('M_INVALID_PARAM', `Push-rule kinds are ${PUSH_RULE_KINDS.join(', ')}.`);
  }
  return kind as PushRuleKind;
}

function anchorOf(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw new MatrixError('M_INVALID_PARAM', `${name} must be a rule id.`);
  return value;
}

/**
 * The ops that put `rule` where the client asked: above `before`'s rule, below `after`'s, else where it was
 * (an update) or at the top of its kind (a new rule, as established servers add them). When no integer fits
 * between two neighbours, every user rule of the kind is renumbered in the same batch.
 */
function place(
  kind: PushRuleKind,
  rule: PushRuleBody,
  mine: PushRuleBody[],
  existing: PushRuleBody | undefined,
  before: string | undefined,
  after: string | undefined,
): PushRuleBody[] {
  const others = mine.filter((r) => r.rule_id !== rule.rule_id);
  const anchorId = before ?? after;
  if (anchorId === undefined) {
    const top = others.length === 0 ? 0 : (others[0]!.position ?? 0) + POSITION_STEP;
    return [{ ...rule, position: existing?.position ?? top }];
  }
  if (anchorId.startsWith('.')) {
    throw new MatrixError('M_INVALID_PARAM', 'before and after must name a user-defined rule, not a default one.');
  }
  const at = others.findIndex((r) => r.rule_id === anchorId);
  if (at < 0) throw new MatrixError('M_NOT_FOUND', `No ${kind} push rule ${anchorId} to place this rule against.`);
  // The list is highest first: "before X" (more important than X) sits at index `at`, "after X" at `at + 1`.
  const index = before !== undefined ? at : at + 1;
  const higher = others[index - 1]?.position;
  const lower = others[index]?.position;
  const hi = higher ?? (lower ?? 0) + 2 * POSITION_STEP;
  const lo = lower ?? (higher ?? 0) - 2 * POSITION_STEP;
  if (hi - lo >= 2) return [{ ...rule, position: lo + Math.floor((hi - lo) / 2) }];
  const ordered = [...others.slice(0, index), rule, ...others.slice(index)];
  return ordered.map((r, i) => ({ ...r, position: (ordered.length - i) * POSITION_STEP }));
}
