import { MatrixError } from '../common/errors.js';

/** The position a `since`/`from` token names (`s<position>`); 0 when absent. Throws M_INVALID_PARAM when malformed. */
export function parseSyncToken(token: unknown, field: string): number {
  if (token === undefined || token === '') return 0;
  if (typeof token !== 'string' || !/^s\d{1,15}$/.test(token)) {
    throw new MatrixError('M_INVALID_PARAM', `${field} is not a token this home issued.`);
  }
  return Number(token.slice(1));
}

/** The token of a position. */
export function syncToken(position: number): string {
  return `s${position}`;
}
