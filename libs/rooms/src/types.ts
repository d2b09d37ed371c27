/**
 * The shapes every part of `@polyhome/rooms` agrees on. Pure data: no I/O, no framework.
 *
 * A PDU is kept as the JSON object the spec describes (what is hashed and signed), never as a class: the bytes
 * that were signed must survive a round trip through storage and the network unchanged.
 */

/** Room versions this code implements. New rooms are made in `DEFAULT_ROOM_VERSION`. */
export type RoomVersionId = '10' | '11';

export const SUPPORTED_ROOM_VERSIONS: readonly RoomVersionId[] = ['10', '11'];
export const DEFAULT_ROOM_VERSION: RoomVersionId = '11';

/** A JSON object as parsed (values are JSON). */
export type JsonObject = { [key: string]: unknown };

/**
 * A persistent data unit in the federation format of room versions 10 and 11 (no `event_id` field: the id is
 * the reference hash). `state_key` is present exactly on state events. In v10 `redacts` is a top-level field
 * of `m.room.redaction`; in v11 it is in `content` (a top-level copy is tolerated, as the spec says).
 */
export interface Pdu extends JsonObject {
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  depth: number;
  prev_events: string[];
  auth_events: string[];
  hashes: { sha256: string } & JsonObject;
  signatures: Record<string, Record<string, string>>;
  unsigned?: JsonObject;
  redacts?: string;
}

/** A PDU with its id (the reference hash), as stores and algorithms pass it around. */
export interface RoomEvent {
  readonly eventId: string;
  readonly pdu: Pdu;
}

/** `type` and `state_key` of a state event joined into one map key (`stateKeyOf`). */
export type StateTuple = string;

/** A room's state: (type, state_key) to event id. */
export type StateMap = ReadonlyMap<StateTuple, string>;

/** The map key of a state entry: `type` and `state_key` joined by U+0000, which neither may contain. */
export function stateKeyOf(type: string, stateKey: string): StateTuple {
  return `${type}\u0000${stateKey}`;
}

/** The `type` and `state_key` of a map key made by `stateKeyOf`. */
export function splitStateKey(key: StateTuple): { type: string; stateKey: string } {
  const at = key.indexOf('\u0000');
  return { type: key.slice(0, at), stateKey: key.slice(at + 1) };
}

/** Why an event was refused: a machine-readable code and a sentence for logs and clients. */
export interface RefusalReason {
  code: string;
  message: string;
}

/** The outcome of a check: passed, or refused with a reason. */
export type CheckResult = { ok: true } | ({ ok: false } & RefusalReason);

/**
 * Authorization of one event against the state it is checked in (the spec's "authorization rules"):
 * `authState` holds at least the entries `authTypesFor` names for the event. Pure and synchronous.
 */
export type AuthCheck = (version: RoomVersionId, event: Pdu, authState: ReadonlyMap<StateTuple, Pdu>) => CheckResult;

/**
 * Where algorithms that walk the DAG (auth chains, state resolution) read events. Async so a store can serve
 * it; an event that is not held is simply absent from the answer.
 */
export interface EventLookup {
  getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>>;
}

/** Size limits of the spec (federation, "Size limits"). */
export const LIMITS = {
  /** The whole PDU as canonical JSON, signatures included. */
  pduBytes: 65_536,
  /** `sender`, `room_id`, `state_key`: bytes each. `type`: bytes. */
  userIdBytes: 255,
  roomIdBytes: 255,
  stateKeyBytes: 255,
  typeBytes: 255,
  eventIdBytes: 255,
  /** Work bounds of this implementation: `prev_events` and `auth_events` entries per event. */
  prevEvents: 20,
  authEvents: 10,
} as const;
