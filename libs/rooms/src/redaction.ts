// The redaction algorithm of room versions 10 and 11 (spec "Room versions" v10 and v11, "Redactions").
// Redaction decides what a signature and an event id cover, so the key lists below must match the spec
// exactly: one extra or missing key and two homes compute different event ids for the same event.
import { isJsonObject, own } from './json.js';
import type { JsonObject, Pdu, RoomVersionId } from './types.js';

/** A PDU after redaction: only the kept keys, `content` reduced to what the event type keeps. */
export type RedactedPdu = JsonObject & { content: JsonObject };

// Top-level keys kept by v10 (unchanged since v1, v9 being the base of v10).
const KEPT_TOP_V10: ReadonlySet<string> = new Set([
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'prev_state',
  'auth_events',
  'origin',
  'origin_server_ts',
  'membership',
]);

// v11 (MSC2176) no longer keeps `origin`, `membership` and `prev_state`.
const KEPT_TOP_V11: ReadonlySet<string> = new Set(
  [...KEPT_TOP_V10].filter((key) => key !== 'origin' && key !== 'membership' && key !== 'prev_state'),
);

const POWER_LEVEL_KEYS_V10 = [
  'ban',
  'events',
  'events_default',
  'kick',
  'redact',
  'state_default',
  'users',
  'users_default',
];

// Content keys kept per event type. v6 dropped `m.room.aliases`, v8 added `allow`, v9 added
// `join_authorised_via_users_server`; v10 is v9's algorithm.
const KEPT_CONTENT_V10: Readonly<Record<string, readonly string[]>> = {
  'm.room.member': ['membership', 'join_authorised_via_users_server'],
  'm.room.create': ['creator'],
  'm.room.join_rules': ['join_rule', 'allow'],
  'm.room.power_levels': POWER_LEVEL_KEYS_V10,
  'm.room.history_visibility': ['history_visibility'],
};

// v11: power levels keep `invite`, redactions keep `redacts`; create keeps all content and member keeps
// `third_party_invite.signed` (handled in redactContent).
const KEPT_CONTENT_V11: Readonly<Record<string, readonly string[]>> = {
  'm.room.member': ['membership', 'join_authorised_via_users_server'],
  'm.room.join_rules': ['join_rule', 'allow'],
  'm.room.power_levels': [...POWER_LEVEL_KEYS_V10, 'invite'],
  'm.room.history_visibility': ['history_visibility'],
  'm.room.redaction': ['redacts'],
};

/**
 * Applies the redaction algorithm of `version` to a PDU (or any event-shaped object) and returns a new
 * object; the input is not changed. Idempotent: redacting a redacted event gives the same event.
 * `unsigned` is not in either version's list and is always removed.
 */
export function redactPdu(version: RoomVersionId, pdu: Pdu | JsonObject): RedactedPdu {
  const keptTop = version === '10' ? KEPT_TOP_V10 : KEPT_TOP_V11;
  const out: JsonObject = {};
  for (const key of Object.keys(pdu)) {
    // defineProperty keeps a `__proto__` key a plain key (it is never in the lists, but stay safe).
    if (keptTop.has(key))
      Object.defineProperty(out, key, { value: pdu[key], enumerable: true, writable: true, configurable: true });
  }
  const type = own(pdu, 'type');
  const content = own(pdu, 'content');
  out.content = redactContent(version, typeof type === 'string' ? type : '', isJsonObject(content) ? content : {});
  return out as RedactedPdu;
}

function redactContent(version: RoomVersionId, type: string, content: JsonObject): JsonObject {
  if (version === '11' && type === 'm.room.create') return { ...content };
  const table = version === '10' ? KEPT_CONTENT_V10 : KEPT_CONTENT_V11;
  const kept = Object.hasOwn(table, type) ? table[type]! : [];
  const out: JsonObject = {};
  for (const key of kept) if (Object.hasOwn(content, key)) out[key] = content[key];
  if (version === '11' && type === 'm.room.member') {
    // MSC3821: `third_party_invite` survives with only its `signed` key, so the auth rules can still
    // check the invite of a redacted membership event.
    const invite = own(content, 'third_party_invite');
    if (isJsonObject(invite) && Object.hasOwn(invite, 'signed')) out.third_party_invite = { signed: invite.signed };
  }
  return out;
}
