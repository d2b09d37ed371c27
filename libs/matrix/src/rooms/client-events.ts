// Events of the room engine (stored PDUs) as clients receive them (spec "Room events: ClientEvent").
import type { JsonRecord } from '../common/json.js';
import type { RoomEventView } from './rooms-port.js';

/** What formatting needs besides the event: the time now (for `age`), the redaction events by id. */
export interface ClientEventContext {
  now: number;
  /** Redaction events of redacted events, by the redaction's id (for `unsigned.redacted_because`). */
  redactions?: ReadonlyMap<string, RoomEventView>;
}

// `unsigned` fields the engine may set that clients read (the rest are federation-only or internal).
const CLIENT_UNSIGNED = ['prev_content', 'prev_sender', 'replaces_state', 'invite_room_state', 'transaction_id'];

/**
 * A `ClientEvent`: no federation fields (hashes, signatures, prev/auth events, depth, origin). A redaction
 * carries `redacts` at the top level and in its content whatever the room version, as clients of both v10
 * (top level) and v11 (content) rooms read it.
 */
export function toClientEvent(view: RoomEventView, context: ClientEventContext): JsonRecord {
  const pdu = view.pdu;
  const unsigned: JsonRecord = { age: Math.max(0, context.now - pdu.origin_server_ts) };
  const fromEngine = pdu.unsigned ?? {};
  for (const key of CLIENT_UNSIGNED) if (fromEngine[key] !== undefined) unsigned[key] = fromEngine[key];
  if (view.redactedBy !== undefined) {
    const redaction = context.redactions?.get(view.redactedBy);
    unsigned['redacted_because'] =
      redaction === undefined
        ? { event_id: view.redactedBy, type: 'm.room.redaction', room_id: pdu.room_id, content: {} }
        : toClientEvent(redaction, { now: context.now });
  }
  const event: JsonRecord = {
    event_id: view.eventId,
    type: pdu.type,
    sender: pdu.sender,
    content: pdu.content,
    origin_server_ts: pdu.origin_server_ts,
    room_id: pdu.room_id,
    unsigned,
  };
  if (pdu.state_key !== undefined) event['state_key'] = pdu.state_key;
  if (pdu.type === 'm.room.redaction') {
    const redacts = pdu.redacts ?? (typeof pdu.content['redacts'] === 'string' ? pdu.content['redacts'] : undefined);
    if (redacts !== undefined) {
      event['redacts'] = redacts;
      event['content'] = { ...pdu.content, redacts };
    }
  }
  return event;
}

/** A state event as `invite_state` (and `knock_state`) carry it (spec "StrippedStateEvent"). */
export function toStrippedEvent(view: RoomEventView): JsonRecord {
  const { type, state_key: stateKey, sender, content } = view.pdu;
  return { type, state_key: stateKey ?? '', sender, content };
}

/** Whether a view is a state event. */
export function isStateEvent(view: RoomEventView): boolean {
  return view.pdu.state_key !== undefined;
}
