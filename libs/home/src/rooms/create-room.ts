// The events `POST /createRoom` makes after the create event and the creator's join, in the spec's order
// (client-server API "Creation"): power levels (preset defaults, invitees of trusted_private_chat at the
// creator's level, then `power_level_content_override`), the preset's join rules, history visibility and
// guest access (each left out when `initial_state` sets it), `initial_state`, name, topic. Pure.
import type { CreateRoomRequest } from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import { stateKeyOf } from '@polyhome/rooms';

/** A state event to make: type, state key, content. */
export interface StateEventSpec {
  type: string;
  stateKey: string;
  content: Record<string, unknown>;
}

type Preset = NonNullable<CreateRoomRequest['preset']>;

/** The preset a request stands for: its own, else `public_chat` for a public room and `private_chat` otherwise. */
export function presetOf(request: CreateRoomRequest): Preset {
  return request.preset ?? (request.visibility === 'public' ? 'public_chat' : 'private_chat');
}

/**
 * Default power levels of a new room (Synapse's, which clients expect): the creator at 100, state at 50,
 * the room's security-relevant state at 100.
 */
export function defaultPowerLevels(creator: string, preset: Preset, invitees: readonly string[]) {
  const users: Record<string, number> = { [creator]: 100 };
  if (preset === 'trusted_private_chat') for (const invitee of invitees) users[invitee] = 100;
  return {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 50,
  };
}

/** Types `initial_state` may not set: the create event and memberships are made by the sequence itself. */
const NOT_INITIAL_STATE = new Set(['m.room.create', 'm.room.member']);

/**
 * The state events after the creator's join, in order. Throws M_BAD_JSON for an `initial_state` entry the
 * sequence makes itself.
 */
export function createRoomStateEvents(creator: string, request: CreateRoomRequest): StateEventSpec[] {
  const preset = presetOf(request);
  for (const entry of request.initialState) {
    if (NOT_INITIAL_STATE.has(entry.type)) {
      throw new MatrixError('M_BAD_JSON', `initial_state may not contain ${entry.type}: the room makes it itself.`);
    }
  }
  const initial = new Set(request.initialState.map((e) => stateKeyOf(e.type, e.stateKey)));
  const events: StateEventSpec[] = [
    {
      type: 'm.room.power_levels',
      stateKey: '',
      content: { ...defaultPowerLevels(creator, preset, request.invite), ...request.powerLevelOverride },
    },
  ];
  const presetState: StateEventSpec[] = [
    { type: 'm.room.join_rules', stateKey: '', content: { join_rule: preset === 'public_chat' ? 'public' : 'invite' } },
    { type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: 'shared' } },
    {
      type: 'm.room.guest_access',
      stateKey: '',
      content: { guest_access: preset === 'public_chat' ? 'forbidden' : 'can_join' },
    },
  ];
  for (const event of presetState) if (!initial.has(stateKeyOf(event.type, event.stateKey))) events.push(event);
  // An initial m.room.power_levels replaces the default one's content (it comes later and wins).
  for (const entry of request.initialState) events.push({ ...entry, content: { ...entry.content } });
  if (request.name !== undefined) events.push({ type: 'm.room.name', stateKey: '', content: { name: request.name } });
  if (request.topic !== undefined)
    events.push({ type: 'm.room.topic', stateKey: '', content: { topic: request.topic } });
  return events;
}
