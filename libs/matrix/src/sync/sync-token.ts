import { MatrixError } from '../common/errors.js';

/**
 * A /sync position: this home's Matrix change stream (`matrix_change`: account state, keys) and, when the home
 * has a room engine, its room event stream. Tokens are `s<change>_<room>`; `s<change>` (what this home issued
 * before it had rooms, and still issues without a room engine) names no room position, so a sync from it
 * gives the rooms as an initial sync does.
 */
export interface SyncPosition {
  change: number;
  room?: number;
}

const TOKEN = /^s(\d{1,15})(?:_(\d{1,15}))?$/;

/** The position a `since`/`from` token names; `{ change: 0 }` when absent. Throws M_INVALID_PARAM when malformed. */
export function parseSyncPosition(token: unknown, field: string): SyncPosition {
  if (token === undefined || token === '') return { change: 0 };
  const match = typeof token === 'string' ? TOKEN.exec(token) : null;
  if (match === null) throw new MatrixError('M_INVALID_PARAM', `${field} is not a token this home issued.`);
  const position: SyncPosition = { change: Number(match[1]) };
  if (match[2] !== undefined) position.room = Number(match[2]);
  return position;
}

/** The change-stream position of a token (`/keys/changes` reads only that part). */
export function parseSyncToken(token: unknown, field: string): number {
  return parseSyncPosition(token, field).change;
}

/** The token of a position: `s<change>_<room>`, or `s<change>` without a room position. */
export function syncToken(position: number | SyncPosition): string {
  const p = typeof position === 'number' ? { change: position } : position;
  return p.room === undefined ? `s${p.change}` : `s${p.change}_${p.room}`;
}
