// Making a new event of room version 10 or 11: prev_events from the forward extremities, depth one more
// than the deepest of them, auth_events chosen by the spec's "Auth events selection" from the current
// state. The result is the template signPdu hashes and signs.
import { authTypesFor } from './auth.js';
import { InvalidEventTemplateError } from './errors.js';
import type { UnsignedPdu } from './signing.js';
import {
  LIMITS,
  stateKeyOf,
  type JsonObject,
  type Pdu,
  type RoomEvent,
  type RoomVersionId,
  type StateMap,
} from './types.js';

/** What a new event is made of. */
export interface EventTemplateInput {
  version: RoomVersionId;
  roomId: string;
  sender: string;
  type: string;
  /** Present exactly for state events. */
  stateKey?: string;
  content: JsonObject;
  /** The room's forward extremities (empty only for `m.room.create`); at most LIMITS.prevEvents. */
  prevEvents: readonly RoomEvent[];
  /** The room's current state (type, state_key) to event id; the auth events are picked from it. */
  state: StateMap;
  /** For `m.room.redaction`: the event redacted (top level in v10, in content in v11). */
  redacts?: string;
  /** Milliseconds since the epoch. */
  originServerTs: number;
}

/** Depth never grows past the largest integer canonical JSON carries (the spec's cap, 2^63 - 1, is larger). */
export const MAX_DEPTH = Number.MAX_SAFE_INTEGER;

/**
 * An unsigned PDU for a new event. Throws InvalidEventTemplateError when there is no create event in the
 * state (for any other type), when prev events are missing or too many, or when a redaction names no
 * target.
 */
export function buildEvent(input: EventTemplateInput): UnsignedPdu {
  const isCreate = input.type === 'm.room.create';
  if (isCreate ? input.prevEvents.length > 0 : input.prevEvents.length === 0) {
    throw new InvalidEventTemplateError(
      isCreate ? 'm.room.create takes no prev_events' : 'pass the forward extremities as prevEvents',
    );
  }
  if (input.prevEvents.length > LIMITS.prevEvents) {
    throw new InvalidEventTemplateError(
      `${input.prevEvents.length} prev events; pass at most ${LIMITS.prevEvents} (the deepest extremities)`,
    );
  }
  if (input.type === 'm.room.redaction' && input.redacts === undefined) {
    throw new InvalidEventTemplateError('an m.room.redaction needs the id of the event it redacts');
  }
  const content: JsonObject =
    input.version === '11' && input.redacts !== undefined
      ? { ...input.content, redacts: input.redacts }
      : { ...input.content };
  const depth = isCreate ? 1 : Math.min(MAX_DEPTH, Math.max(...input.prevEvents.map((e) => e.pdu.depth)) + 1);
  const pdu: Record<string, unknown> = {
    room_id: input.roomId,
    sender: input.sender,
    type: input.type,
    content,
    origin_server_ts: input.originServerTs,
    depth,
    prev_events: input.prevEvents.map((e) => e.eventId),
    auth_events: [] as string[],
  };
  if (input.stateKey !== undefined) pdu.state_key = input.stateKey;
  if (input.version === '10' && input.redacts !== undefined) pdu.redacts = input.redacts;
  const template = pdu as UnsignedPdu;
  if (!isCreate) {
    const authEvents: string[] = [];
    for (const key of authTypesFor(input.version, { ...template, hashes: { sha256: '' }, signatures: {} } as Pdu)) {
      const id = input.state.get(key);
      if (id !== undefined) authEvents.push(id);
    }
    if (input.state.get(stateKeyOf('m.room.create', '')) === undefined) {
      throw new InvalidEventTemplateError('the state has no m.room.create event');
    }
    template.auth_events = authEvents;
  }
  return template;
}
