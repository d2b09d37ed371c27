import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { ApiError } from './api-error.js';

/** Page size when the client gives none. */
export const DEFAULT_PAGE_LIMIT = 100;

/** Largest page a client may ask for: bounds the work and the body of one admin list request. */
export const MAX_PAGE_LIMIT = 500;

/** Longest cursor accepted; ours are far shorter, so anything longer is not one of ours. */
const MAX_CURSOR_LENGTH = 512;

/** Query of every paginated admin list: `?limit=&from=`, as Matrix's admin and client APIs page. */
export class PageQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    description: 'Largest number of items to return.',
    minimum: 1,
    maximum: MAX_PAGE_LIMIT,
    default: DEFAULT_PAGE_LIMIT,
  })
  @IsOptional()
  // Query values arrive as strings; the global pipe's `transform` converts them with this hint.
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_LIMIT)
  limit: number = DEFAULT_PAGE_LIMIT;

  @ApiPropertyOptional({
    description: 'Opaque cursor: the `next_from` of the previous page. Absent: the first page.',
    maxLength: MAX_CURSOR_LENGTH,
  })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_CURSOR_LENGTH)
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'from must be a next_from value from a previous page' })
  from?: string;
}

/** One page of a list: the items, and the cursor of the next page when there is one (Matrix's `chunk` shape). */
export interface Page<T> {
  chunk: T[];
  /** Absent on the last page. */
  next_from?: string;
}

/**
 * Makes an opaque cursor from the sort key of the last item of a page. Opaque (base64url) so clients do not
 * build cursors themselves and the encoding can change without an API change.
 */
export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

/** Reads a cursor made by `encodeCursor`; anything else is 400 M_INVALID_PARAM. */
export function decodeCursor(from: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(from, 'base64url').toString('utf8')) as unknown;
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { k?: unknown }).k === 'string') {
      return (parsed as { k: string }).k;
    }
  } catch {
    // fall through: not one of our cursors
  }
  throw new ApiError('M_INVALID_PARAM', 'from is not a next_from value from a previous page.');
}

/**
 * Pages a list held in memory by a unique sort key (keyset pagination, as a database list would page): the
 * items after the cursor's key, at most `limit` of them. Keyset rather than offset so that items added or
 * removed between two requests neither repeat nor skip the others.
 */
export function pageOf<T>(items: readonly T[], keyOf: (item: T) => string, query: PageQueryDto): Page<T> {
  const after = query.from === undefined ? undefined : decodeCursor(query.from);
  const sorted = [...items].sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  const rest = after === undefined ? sorted : sorted.filter((item) => compareKeys(keyOf(item), after) > 0);
  const chunk = rest.slice(0, query.limit);
  const last = chunk.at(-1);
  return rest.length > chunk.length && last !== undefined ? { chunk, next_from: encodeCursor(keyOf(last)) } : { chunk };
}

/** Code-unit order, the same on every runtime and locale (unlike localeCompare). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The page of a keyset query that read `limit + 1` rows (one more than the page, to know whether another page
 * follows): the first `limit`, mapped, and the cursor of the last one when more rows came.
 */
export function pageOfRows<R, T>(
  rows: readonly R[],
  limit: number,
  map: (row: R) => T,
  keyOf: (item: T) => string,
): Page<T> {
  const chunk = rows.slice(0, limit).map(map);
  const last = chunk.at(-1);
  return rows.length > limit && last !== undefined ? { chunk, next_from: encodeCursor(keyOf(last)) } : { chunk };
}
