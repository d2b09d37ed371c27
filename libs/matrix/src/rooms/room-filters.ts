// Client filters (spec "Filtering"): the parts this home honours, parsed once per request. A filter is the
// JSON a client stored with POST /user/{userId}/filter or sent inline; unknown fields are ignored, as the spec
// says, and wrongly typed known fields are refused.
import { MatrixError } from '../common/errors.js';
import { isRecord, type JsonRecord } from '../common/json.js';

/** `RoomEventFilter` / `EventFilter` fields honoured: type and sender lists (`*` wildcards in types), limit. */
export interface EventFilter {
  types?: string[];
  notTypes: string[];
  senders?: string[];
  notSenders: string[];
  rooms?: string[];
  notRooms: string[];
  limit?: number;
  lazyLoadMembers: boolean;
}

/** The `Filter` of /sync: per-section filters. */
export interface SyncFilter {
  /** `room.rooms` / `room.not_rooms`: which rooms appear at all. */
  rooms?: string[];
  notRooms: string[];
  includeLeave: boolean;
  timeline: EventFilter;
  state: EventFilter;
  roomAccountData: EventFilter;
  /** `room.ephemeral`: typing and receipts. */
  ephemeral: EventFilter;
  accountData: EventFilter;
  presence: EventFilter;
}

/** Timeline events of a /sync room when the filter sets no `room.timeline.limit` (Synapse's default). */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** The most timeline events a /sync room gives, whatever the filter asks. */
export const MAX_TIMELINE_LIMIT = 1000;

const EMPTY: EventFilter = { notTypes: [], notSenders: [], notRooms: [], lazyLoadMembers: false };

/** An `EventFilter`/`RoomEventFilter` object (absent: everything passes). Throws M_BAD_JSON on wrong types. */
export function parseEventFilter(value: unknown, field: string): EventFilter {
  if (value === undefined || value === null) return { ...EMPTY };
  if (!isRecord(value)) throw new MatrixError('M_BAD_JSON', `${field} must be an object.`);
  const list = (name: string): string[] | undefined => {
    const v = value[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.length > 1000 || !v.every((x) => typeof x === 'string')) {
      throw new MatrixError('M_BAD_JSON', `${field}.${name} must be an array of strings.`);
    }
    return v as string[];
  };
  const limit = value['limit'];
  if (limit !== undefined && !(typeof limit === 'number' && Number.isSafeInteger(limit) && limit >= 0)) {
    throw new MatrixError('M_BAD_JSON', `${field}.limit must be a non-negative integer.`);
  }
  const lazy = value['lazy_load_members'];
  if (lazy !== undefined && typeof lazy !== 'boolean') {
    throw new MatrixError('M_BAD_JSON', `${field}.lazy_load_members must be a boolean.`);
  }
  const filter: EventFilter = {
    notTypes: list('not_types') ?? [],
    notSenders: list('not_senders') ?? [],
    notRooms: list('not_rooms') ?? [],
    lazyLoadMembers: lazy === true,
  };
  const types = list('types');
  const senders = list('senders');
  const rooms = list('rooms');
  if (types !== undefined) filter.types = types;
  if (senders !== undefined) filter.senders = senders;
  if (rooms !== undefined) filter.rooms = rooms;
  if (typeof limit === 'number') filter.limit = limit;
  return filter;
}

/** A /sync `Filter` object. */
export function parseSyncFilter(value: JsonRecord | undefined): SyncFilter {
  const filter = value ?? {};
  const room = filter['room'];
  if (room !== undefined && room !== null && !isRecord(room)) {
    throw new MatrixError('M_BAD_JSON', 'filter.room must be an object.');
  }
  const r: JsonRecord = isRecord(room) ? room : {};
  const roomLists = parseEventFilter({ rooms: r['rooms'], not_rooms: r['not_rooms'] }, 'filter.room');
  const includeLeave = r['include_leave'];
  if (includeLeave !== undefined && typeof includeLeave !== 'boolean') {
    throw new MatrixError('M_BAD_JSON', 'filter.room.include_leave must be a boolean.');
  }
  const parsed: SyncFilter = {
    notRooms: roomLists.notRooms,
    includeLeave: includeLeave === true,
    timeline: parseEventFilter(r['timeline'], 'filter.room.timeline'),
    state: parseEventFilter(r['state'], 'filter.room.state'),
    roomAccountData: parseEventFilter(r['account_data'], 'filter.room.account_data'),
    ephemeral: parseEventFilter(r['ephemeral'], 'filter.room.ephemeral'),
    accountData: parseEventFilter(filter['account_data'], 'filter.account_data'),
    presence: parseEventFilter(filter['presence'], 'filter.presence'),
  };
  if (roomLists.rooms !== undefined) parsed.rooms = roomLists.rooms;
  return parsed;
}

/** Whether a type matches a filter pattern (`*` matches any run of characters, as the spec says). */
function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  const parts = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`).test(type);
}

/** Whether an event of `type` from `sender` (in `roomId`, when given) passes the filter. */
export function eventPasses(filter: EventFilter, event: { type: string; sender?: string; roomId?: string }): boolean {
  if (filter.notTypes.some((p) => typeMatches(p, event.type))) return false;
  if (filter.types !== undefined && !filter.types.some((p) => typeMatches(p, event.type))) return false;
  if (event.sender !== undefined) {
    if (filter.notSenders.includes(event.sender)) return false;
    if (filter.senders !== undefined && !filter.senders.includes(event.sender)) return false;
  }
  if (event.roomId !== undefined) {
    if (filter.notRooms.includes(event.roomId)) return false;
    if (filter.rooms !== undefined && !filter.rooms.includes(event.roomId)) return false;
  }
  return true;
}

/** Whether a room passes `room.rooms` / `room.not_rooms`. */
export function roomPasses(filter: SyncFilter, roomId: string): boolean {
  if (filter.notRooms.includes(roomId)) return false;
  return filter.rooms === undefined || filter.rooms.includes(roomId);
}

/** The timeline limit a filter asks for, defaulted and capped. */
export function timelineLimitOf(filter: SyncFilter): number {
  return Math.min(filter.timeline.limit ?? DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT);
}
