import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonTextDepth } from './json-depth.js';

describe('jsonTextDepth', () => {
  it('gives the same depth for a string and its UTF-8 bytes, brackets in strings skipped', () => {
    const texts = ['1', '{"a":[{"b":{}}],"c":1}', '{"a":"[[[{{{\\"\\"]]]","é[":["ü"]}', '["\\\\",[["😀"]]]'];
    for (const text of texts) {
      expect(jsonTextDepth(text, 64)).toBe(jsonTextDepth(new TextEncoder().encode(text), 64));
    }
    expect(texts.map((t) => jsonTextDepth(t, 64))).toEqual([0, 4, 2, 3]);
  });

  it('stops counting past the limit', () => {
    expect(jsonTextDepth('['.repeat(100_000), 32)).toBe(33);
  });

  it('matches the nesting of any JSON value, as a string too', () => {
    const depthOf = (v: unknown): number =>
      typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        expect(jsonTextDepth(JSON.stringify(value), 64)).toBe(depthOf(value));
      }),
      { numRuns: 200 },
    );
  });
});
