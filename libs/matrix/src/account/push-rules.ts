// The push rules of an account: the spec's server-default rules (client-server API, "Predefined rules"),
// with the user's own rules and the user's switches and actions over the defaults, as replicated
// `push_rule.*` ops hold them. Pure: the ruleset is computed from the account state on every read.
import { pairKey, PUSH_RULE_KINDS, type PushRuleBody, type PushRuleKind } from '@polyhome/sync';
import type { JsonRecord } from '../common/json.js';

/** A rule as `GET /pushrules/` answers it. */
export interface PushRule extends JsonRecord {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: unknown[];
  conditions?: JsonRecord[];
  pattern?: string;
}

/** The `global` ruleset: one list per kind, in evaluation order. */
export type PushRuleset = Record<PushRuleKind, PushRule[]>;

const NOTIFY_SOUND = ['notify', { set_tweak: 'sound', value: 'default' }];

function eventMatch(key: string, pattern: string): JsonRecord {
  return { kind: 'event_match', key, pattern };
}

function rule(ruleId: string, conditions: JsonRecord[], actions: unknown[], enabled = true): PushRule {
  return { rule_id: ruleId, default: true, enabled, conditions, actions };
}

/**
 * The server-default rules for a user, by kind. The master rule comes before the user's override rules; every
 * other default follows the user's rules of its kind (as established servers order them).
 */
export function defaultRules(userId: string): { masterFirst: PushRule; override: PushRule[]; underride: PushRule[] } {
  return {
    masterFirst: rule('.m.rule.master', [], [], false),
    override: [
      rule('.m.rule.suppress_notices', [eventMatch('content.msgtype', 'm.notice')], []),
      rule(
        '.m.rule.invite_for_me',
        [
          eventMatch('type', 'm.room.member'),
          eventMatch('content.membership', 'invite'),
          eventMatch('state_key', userId),
        ],
        NOTIFY_SOUND,
      ),
      rule('.m.rule.member_event', [eventMatch('type', 'm.room.member')], []),
      rule(
        '.m.rule.is_user_mention',
        [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
        [...NOTIFY_SOUND, { set_tweak: 'highlight' }],
      ),
      rule(
        '.m.rule.is_room_mention',
        [
          { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
          { kind: 'sender_notification_permission', key: 'room' },
        ],
        ['notify', { set_tweak: 'highlight' }],
      ),
      rule(
        '.m.rule.tombstone',
        [eventMatch('type', 'm.room.tombstone'), eventMatch('state_key', '')],
        ['notify', { set_tweak: 'highlight' }],
      ),
      rule('.m.rule.reaction', [eventMatch('type', 'm.reaction')], []),
      rule('.m.rule.server_acl', [eventMatch('type', 'm.room.server_acl'), eventMatch('state_key', '')], []),
      rule(
        '.m.rule.suppress_edits',
        [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }],
        [],
      ),
    ],
    underride: [
      rule('.m.rule.call', [eventMatch('type', 'm.call.invite')], ['notify', { set_tweak: 'sound', value: 'ring' }]),
      rule(
        '.m.rule.encrypted_room_one_to_one',
        [{ kind: 'room_member_count', is: '2' }, eventMatch('type', 'm.room.encrypted')],
        NOTIFY_SOUND,
      ),
      rule(
        '.m.rule.room_one_to_one',
        [{ kind: 'room_member_count', is: '2' }, eventMatch('type', 'm.room.message')],
        NOTIFY_SOUND,
      ),
      rule('.m.rule.message', [eventMatch('type', 'm.room.message')], ['notify']),
      rule('.m.rule.encrypted', [eventMatch('type', 'm.room.encrypted')], ['notify']),
    ],
  };
}

/** The default rule of a kind with this id, if there is one. */
export function defaultRule(userId: string, kind: PushRuleKind, ruleId: string): PushRule | undefined {
  const d = defaultRules(userId);
  if (kind === 'override') return [d.masterFirst, ...d.override].find((r) => r.rule_id === ruleId);
  if (kind === 'underride') return d.underride.find((r) => r.rule_id === ruleId);
  return undefined;
}

/** A default rule with the user's switch and actions applied. */
function withOverride(base: PushRule, body: PushRuleBody | undefined): PushRule {
  if (body === undefined) return base;
  return { ...base, enabled: body.enabled ?? base.enabled, actions: body.actions ?? base.actions };
}

/** A user-defined rule as the ruleset shows it. */
function userRule(body: PushRuleBody): PushRule {
  const out: PushRule = {
    rule_id: body.rule_id,
    default: false,
    enabled: body.enabled ?? true,
    actions: body.actions ?? [],
  };
  if (body.conditions !== undefined) out.conditions = body.conditions;
  if (body.pattern !== undefined) out.pattern = body.pattern;
  return out;
}

/** User rules of one kind, highest position first (ties: rule id, so every home orders them alike). */
export function userRulesOf(bodies: Record<string, PushRuleBody>, kind: PushRuleKind): PushRuleBody[] {
  return Object.values(bodies)
    .filter((b) => b.kind === kind && !b.rule_id.startsWith('.'))
    .sort(
      (a, b) => (b.position ?? 0) - (a.position ?? 0) || (a.rule_id < b.rule_id ? -1 : a.rule_id > b.rule_id ? 1 : 0),
    );
}

/** The whole `global` ruleset from the account's `pushRules` state. */
export function ruleset(userId: string, bodies: Record<string, PushRuleBody>): PushRuleset {
  const d = defaultRules(userId);
  const over = (r: PushRule, kind: PushRuleKind): PushRule => withOverride(r, bodies[pairKey(kind, r.rule_id)]);
  const user = (kind: PushRuleKind): PushRule[] => userRulesOf(bodies, kind).map(userRule);
  const set = {} as PushRuleset;
  for (const kind of PUSH_RULE_KINDS) set[kind] = user(kind);
  set.override = [over(d.masterFirst, 'override'), ...set.override, ...d.override.map((r) => over(r, 'override'))];
  set.underride = [...set.underride, ...d.underride.map((r) => over(r, 'underride'))];
  return set;
}
