import { MatrixError } from '../common/errors.js';
import type { EphemeralPosition } from '../ephemeral/ephemeral-port.js';

/**
 * A /sync position: this home's Matrix change stream (`matrix_change`: account state, keys) and, when the home
 * has a room engine, its room event stream. Tokens are `s<change>_<room>`; `s<change>` (what this home issued
 * before it had rooms, and still issues without a room engine) names no room position, so a sync from it
 * gives the rooms as an initial sync does. With typing, receipts and presence the token is
 * `s<change>_<room>_<receipt>_<memory>` (EphemeralPosition); without those parts a sync gives them as an initial one.
 * With to-device messages it ends in `_d<toDevice>`: the to-device stream position its response reached (the
 * messages at or before it are acknowledged by the next sync from it); a token without it acknowledges none.
 */
export interface SyncPosition {
  change: number;
  room?: number;
  ephemeral?: EphemeralPosition;
  toDevice?: number;
}

const TOKEN = /^s(\d{1,15})(?:_(\d{1,15})(?:_(\d{1,15})_(\d{1,15}))?)?(?:_d(\d{1,15}))?$/;

/** The position a `since`/`from` token names; `{ change: 0 }` when absent. Throws M_INVALID_PARAM when malformed. */
export function parseSyncPosition(token: unknown, field: string): SyncPosition {
  if (token === undefined || token === '') return { change: 0 };
  const match = typeof token === 'string' ? TOKEN.exec(token) : null;
  if (match === null) throw new MatrixError('M_INVALID_PARAM', `${field} is not a token this home issued.`);
  const position: SyncPosition = { change: Number(match[1]) };
  if (match[2] !== undefined) position.room = Number(match[2]);
  if (match[3] !== undefined && match[4] !== undefined) {
    position.ephemeral = { receipt: Number(match[3]), memory: Number(match[4]) };
  }
  if (match[5] !== undefined) position.toDevice = Number(match[5]);
  return position;
}

/** The change-stream position of a token (`/keys/changes` reads only that part). */
export function parseSyncToken(token: unknown, field: string): number {
  return parseSyncPosition(token, field).change;
}

/**
 * The token of a position: `s<change>_<room>[_<receipt>_<memory>][_d<toDevice>]`, or `s<change>[_d<toDevice>]`
 * without a room position.
 */
export function syncToken(position: number | SyncPosition): string {
  const p: SyncPosition = typeof position === 'number' ? { change: position } : position;
  const toDevice = p.toDevice === undefined ? '' : `_d${p.toDevice}`;
  if (p.room === undefined) return `s${p.change}${toDevice}`;
  const e = p.ephemeral;
  const base = e === undefined ? `s${p.change}_${p.room}` : `s${p.change}_${p.room}_${e.receipt}_${e.memory}`;
  return base + toDevice;
}
