import { BadRequestException, ValidationPipe } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { ApiError } from './api-error.js';
import { decodeCursor, DEFAULT_PAGE_LIMIT, encodeCursor, MAX_PAGE_LIMIT, pageOf, PageQueryDto } from './pagination.js';

// The same pipe options as the app's global pipe (app.ts).
const pipe = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

async function parse(query: Record<string, string>): Promise<PageQueryDto> {
  return (await pipe.transform(query, { type: 'query', metatype: PageQueryDto })) as PageQueryDto;
}

async function refusal(query: Record<string, string>): Promise<string> {
  try {
    await parse(query);
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestException);
    return JSON.stringify((err as BadRequestException).getResponse());
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
}

function query(limit: number, from?: string): PageQueryDto {
  return Object.assign(new PageQueryDto(), { limit, ...(from === undefined ? {} : { from }) });
}

describe('PageQueryDto through the global ValidationPipe', () => {
  it('defaults limit to 100 and from to absent', async () => {
    const q = await parse({});
    expect(q).toBeInstanceOf(PageQueryDto);
    expect(q.limit).toBe(DEFAULT_PAGE_LIMIT);
    expect(q.from).toBeUndefined();
  });

  it('converts limit from the query string and keeps a cursor', async () => {
    const from = encodeCursor('b');
    expect(await parse({ limit: '1', from })).toMatchObject({ limit: 1, from });
    expect((await parse({ limit: String(MAX_PAGE_LIMIT) })).limit).toBe(500);
  });

  it.each([['0'], ['501'], ['-3'], ['1.5'], ['ten'], ['']])('refuses limit=%s', async (limit) => {
    expect(await refusal({ limit })).toMatch(/limit/);
  });

  it('refuses a from that cannot be one of our cursors', async () => {
    expect(await refusal({ from: 'not a cursor!' })).toMatch(/from/);
    expect(await refusal({ from: 'a'.repeat(513) })).toMatch(/from/);
  });

  it('refuses unknown query fields rather than ignoring them', async () => {
    expect(await refusal({ limit: '5', offset: '10' })).toMatch(/property offset should not exist/);
  });
});

describe('cursors', () => {
  it('round-trip any key, including non-ASCII', () => {
    for (const key of ['', 'delivery', '@alice:ab12', 'ключ/🔑']) expect(decodeCursor(encodeCursor(key))).toBe(key);
  });

  it('are opaque base64url', () => {
    expect(encodeCursor('delivery')).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['bm90LWpzb24'],
    [Buffer.from('{"x":1}').toString('base64url')],
    [Buffer.from('"k"').toString('base64url')],
  ])('refuses %s with 400 M_INVALID_PARAM', (from) => {
    let error: unknown;
    try {
      decodeCursor(from);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).errcode).toBe('M_INVALID_PARAM');
    expect((error as ApiError).status).toBe(400);
  });
});

describe('pageOf', () => {
  const items = ['e', 'a', 'd', 'b', 'c'].map((name) => ({ name }));
  const key = (item: { name: string }) => item.name;

  it('walks a list in key order, page by page, without repeats or gaps', () => {
    const seen: string[] = [];
    let from: string | undefined;
    let pages = 0;
    do {
      const page = pageOf(items, key, query(2, from));
      seen.push(...page.chunk.map(key));
      from = page.next_from;
      pages++;
    } while (from !== undefined);
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(pages).toBe(3);
  });

  it('has no next_from when the page holds the rest exactly', () => {
    expect(pageOf(items, key, query(5))).toEqual({ chunk: [...items].sort((x, y) => (x.name < y.name ? -1 : 1)) });
    expect(pageOf([], key, query(5))).toEqual({ chunk: [] });
  });

  it('continues after the cursor key even when that item is gone (keyset, not offset)', () => {
    const first = pageOf(items, key, query(2));
    const without = items.filter((i) => i.name !== 'b');
    expect(pageOf(without, key, query(2, first.next_from)).chunk.map(key)).toEqual(['c', 'd']);
  });
});
