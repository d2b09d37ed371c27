import { canonicalJsonBytes, redactEvent, type MatrixEvent } from '@polyhome/identity';
import { sha256 } from '@noble/hashes/sha2.js';
import type { JsonRecord } from '../common/json.js';
import { base64Url } from '../common/random.js';
import type { MatrixRoomVersion } from '../port.js';

/** Room version of the rooms made here: the newest whose redaction rules identity's signer implements. */
export const ROOM_VERSION: MatrixRoomVersion = '5';

/** Event id of room versions 4 and later: the reference hash, `$` + unpadded base64url of its SHA-256. */
export function referenceHash(event: MatrixEvent): string {
  const { signatures: _s, unsigned: _u, age_ts: _a, event_id: _e, ...rest } = redactEvent(event, ROOM_VERSION);
  return `$${base64Url(sha256(canonicalJsonBytes(rest)))}`;
}

/** An event as clients receive it: the federation fields left out. */
export function clientEvent(event: JsonRecord): JsonRecord {
  const { hashes: _h, signatures: _s, prev_events: _p, auth_events: _a, depth: _d, origin: _o, ...rest } = event;
  return { ...rest, unsigned: {} };
}

/** A state event as `invite_state` carries it. */
export function strippedEvent(event: JsonRecord): JsonRecord {
  return { type: event['type'], state_key: event['state_key'], sender: event['sender'], content: event['content'] };
}
