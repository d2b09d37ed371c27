/**
 * A small stand-in for the authorization rules, for the property tests of state resolution: membership
 * (join, invite, leave, kick, ban), join rules, power levels and the power level a state event needs. It
 * follows the spec's rules for those cases closely enough that state resolution has something real to
 * decide, and ignores the rest (third-party invites, knocks, restricted joins, size limits).
 */
import { stateKeyOf, type AuthCheck, type CheckResult, type Pdu, type StateTuple } from '../types.js';

const OK: CheckResult = { ok: true };
const no = (message: string): CheckResult => ({ ok: false, code: 'forbidden', message });

function levelsOf(state: ReadonlyMap<StateTuple, Pdu>): Record<string, unknown> {
  return state.get(stateKeyOf('m.room.power_levels', ''))?.content ?? {};
}

function int(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}

function userLevel(state: ReadonlyMap<StateTuple, Pdu>, user: string): number {
  const pl = state.get(stateKeyOf('m.room.power_levels', ''));
  if (pl === undefined) return state.get(stateKeyOf('m.room.create', ''))?.sender === user ? 100 : 0;
  const users = (pl.content['users'] ?? {}) as Record<string, unknown>;
  return int(users[user], int(pl.content['users_default'], 0));
}

function membershipOf(state: ReadonlyMap<StateTuple, Pdu>, user: string): unknown {
  return state.get(stateKeyOf('m.room.member', user))?.content['membership'] ?? 'leave';
}

/** The stand-in checker (room version 11 creator semantics: the create event's sender). */
export const simpleCheckAuth: AuthCheck = (_version, event, state) => {
  const create = state.get(stateKeyOf('m.room.create', ''));
  if (event.type === 'm.room.create') return event.prev_events.length === 0 ? OK : no('create with prev events');
  if (create === undefined) return no('no create event');
  const senderLevel = userLevel(state, event.sender);
  const levels = levelsOf(state);
  const senderMembership = membershipOf(state, event.sender);

  if (event.type === 'm.room.member') {
    const target = event.state_key ?? '';
    const membership = event.content['membership'];
    const targetMembership = membershipOf(state, target);
    const targetLevel = userLevel(state, target);
    if (membership === 'join') {
      if (target !== event.sender) return no('join for someone else');
      // The creator's first join: nothing but the create event is in the room yet.
      if (create.sender === target && event.prev_events.length === 1 && state.size === 1) return OK;
      if (targetMembership === 'ban') return no('banned');
      const rule = state.get(stateKeyOf('m.room.join_rules', ''))?.content['join_rule'];
      if (targetMembership === 'join' || targetMembership === 'invite' || rule === 'public') return OK;
      return no('not invited');
    }
    if (senderMembership !== 'join') return no('sender not joined');
    if (membership === 'invite') {
      if (targetMembership === 'join' || targetMembership === 'ban') return no('cannot invite');
      return senderLevel >= int(levels['invite'], 0) ? OK : no('invite level');
    }
    if (membership === 'leave') {
      if (target === event.sender) return OK;
      if (targetMembership === 'ban' && senderLevel < int(levels['ban'], 50)) return no('unban level');
      return senderLevel >= int(levels['kick'], 50) && targetLevel < senderLevel ? OK : no('kick level');
    }
    if (membership === 'ban') {
      return senderLevel >= int(levels['ban'], 50) && targetLevel < senderLevel ? OK : no('ban level');
    }
    return no('unknown membership');
  }

  if (senderMembership !== 'join') return no('sender not joined');
  const events = (levels['events'] ?? {}) as Record<string, unknown>;
  // Without a power levels event every event needs 0 (the spec's defaults for that case).
  const stateDefault = state.has(stateKeyOf('m.room.power_levels', '')) ? int(levels['state_default'], 50) : 0;
  const needed = int(events[event.type], typeof event.state_key === 'string' ? stateDefault : 0);
  if (senderLevel < needed) return no('event level');
  if (event.type === 'm.room.power_levels' && state.has(stateKeyOf('m.room.power_levels', ''))) {
    const oldUsers = (levels['users'] ?? {}) as Record<string, unknown>;
    const newUsers = (event.content['users'] ?? {}) as Record<string, unknown>;
    const oldDefault = int(levels['users_default'], 0);
    const newDefault = int(event.content['users_default'], 0);
    for (const user of new Set([...Object.keys(oldUsers), ...Object.keys(newUsers)])) {
      const before = int(oldUsers[user], oldDefault);
      const after = int(newUsers[user], newDefault);
      if (before === after) continue;
      if (before > senderLevel || after > senderLevel) return no('power above own');
      if (user !== event.sender && before >= senderLevel) return no('power of a peer');
    }
  }
  return OK;
};
