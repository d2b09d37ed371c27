import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalFields,
  canonicalJson,
  canonicalJsonBytes,
  compareCodePoints,
  MAX_JSON_DEPTH,
  type JsonValue,
} from './canonical-json.js';
import { CanonicalJsonError } from './errors.js';
import { canonicalValue, reorderKeys } from './testing/arbitraries.js';

describe('canonical JSON: the spec examples (appendix "Canonical JSON")', () => {
  it.each([
    ['{}', '{}'],
    ['{"one": 1, "two": "Two"}', '{"one":1,"two":"Two"}'],
    ['{"b": "2", "a": "1"}', '{"a":"1","b":"2"}'],
    ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
    [
      '{"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe", "three_pids": [{"medium": "email", "address": "john.doe@example.org"}, {"medium": "msisdn", "address": "123456789"}]}}}',
      '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
    ],
    ['{"a": "日本語"}', '{"a":"日本語"}'],
    ['{"本": 2, "日": 1}', '{"日":1,"本":2}'],
    ['{"a": "\\u65E5"}', '{"a":"日"}'],
    ['{"a": null}', '{"a":null}'],
    ['{"a": -0, "b": 1e10}', '{"a":0,"b":10000000000}'],
  ])('%s -> %s', (input, expected) => {
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });
});

describe('canonical JSON: ordering and escaping', () => {
  it('sorts keys by code point, not UTF-16 unit', () => {
    // U+FFFF < U+1F600 as code points, but in UTF-16 the surrogate 0xD83D sorts before 0xFFFF.
    const value = { '\u{1f600}': 1, '\uffff': 2, '\ue000': 3, '\ud7ff': 4, z: 5 };
    expect(Object.keys(value).sort()).toEqual(['z', '\ud7ff', '\u{1f600}', '\ue000', '\uffff']);
    expect(canonicalJson(value)).toBe('{"z":5,"\ud7ff":4,"\ue000":3,"\uffff":2,"\u{1f600}":1}');
  });

  it('sorts as UTF-8 byte order does, for any keys', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });

  it('escapes only what the grammar requires', () => {
    const value = { s: '"\\\b\f\n\r\t\u0000\u001f\u007f\u2028\u2029/é\u{1f600}' };
    expect(canonicalJson(value)).toBe('{"s":"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f\u2028\u2029/é\u{1f600}"}');
  });

  it('writes UTF-8 bytes', () => {
    expect(canonicalJsonBytes({ a: '日' })).toEqual(new Uint8Array(Buffer.from('{"a":"日"}', 'utf8')));
  });

  it('accepts the integer limits', () => {
    expect(canonicalJson([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER])).toBe(
      '[9007199254740991,-9007199254740991]',
    );
  });

  it('never writes -0', () => {
    expect(canonicalJson({ a: -0, b: [-0] })).toBe('{"a":0,"b":[0]}');
  });
});

describe('canonical JSON: refusals', () => {
  class Thing {
    a = 1;
  }
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];

  it.each<[string, unknown, string]>([
    ['a float', { a: 1.5 }, '$.a'],
    ['NaN', [NaN], '$[0]'],
    ['Infinity', { a: Infinity }, '$.a'],
    ['2^53', { a: 2 ** 53 }, '$.a'],
    ['-(2^53)', { a: -(2 ** 53) }, '$.a'],
    ['a lone high surrogate', { a: 'x\ud800' }, '$.a'],
    ['a lone low surrogate', ['\udc00y'], '$[0]'],
    ['a lone surrogate in a key', { 'k\ud800': 1 }, '$'],
    ['undefined', { a: undefined }, '$.a'],
    ['a function', { a: () => 1 }, '$.a'],
    ['a symbol', { a: Symbol('s') }, '$.a'],
    ['a bigint', { a: 1n }, '$.a'],
    ['a Date', { a: new Date(0) }, '$.a'],
    ['a Map', { a: new Map() }, '$.a'],
    ['a class instance', { a: new Thing() }, '$.a'],
    ['a typed array', { a: new Uint8Array(1) }, '$.a'],
    ['a sparse array', { a: sparse }, '$.a[1]'],
    ['symbol keys', { [Symbol('k')]: 1 }, '$'],
    ['a cycle', cyclic, '$.self'],
    ['nesting deeper than the cap', deep, '$'],
    ['a non-identifier key path', { 'a b': { c: 0.5 } }, '$["a b"].c'],
  ])('refuses %s', (_what, value, pathPrefix) => {
    let caught: unknown;
    try {
      canonicalJson(value);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CanonicalJsonError);
    expect((caught as CanonicalJsonError).path.startsWith(pathPrefix)).toBe(true);
    // canonicalFields refuses every object canonicalJson refuses, with the same error.
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      expect(() => canonicalFields(value)).toThrow(caught as Error);
    }
  });
});

describe('canonical JSON: properties', () => {
  it('is stable under key reordering', () => {
    fc.assert(
      fc.property(canonicalValue, fc.nat(1000), (value, seed) => {
        expect(canonicalJson(reorderKeys(value, seed))).toBe(canonicalJson(value));
      }),
    );
  });

  it('round-trips through JSON.parse', () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const text = canonicalJson(value);
        const parsed = JSON.parse(text) as JsonValue;
        expect(parsed).toEqual(value);
        expect(canonicalJson(parsed)).toBe(text);
      }),
    );
  });

  it('matches an independent reference encoder (UTF-8 byte-order sort)', () => {
    const reference = (v: JsonValue): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(v[k]!)}`).join(',')}}`;
      }
      return JSON.stringify(v);
    };
    fc.assert(
      fc.property(canonicalValue, (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
    );
  });
});

describe('canonical JSON encoded once, field by field (canonicalFields)', () => {
  const objects = fc.dictionary(fc.string({ maxLength: 6 }), canonicalValue, { maxKeys: 8 });
  const withoutFields = (value: Record<string, unknown>, omit: readonly string[]) =>
    Object.fromEntries(Object.entries(value).filter(([key]) => !omit.includes(key)));

  it('gives the size of the whole, the bytes without any fields and the size of each value as encoding each would', () => {
    fc.assert(
      fc.property(objects, fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }), (value, extra) => {
        const fields = canonicalFields(value);
        expect(fields.byteLength).toBe(canonicalJsonBytes(value).length);
        expect(fields.bytesWithout()).toEqual(canonicalJsonBytes(value));
        const keys = Object.keys(value);
        const omit = [...keys.filter((_, i) => i % 2 === 0), ...extra];
        expect(fields.bytesWithout(omit)).toEqual(canonicalJsonBytes(withoutFields(value, omit)));
        for (const key of keys) expect(fields.valueByteLength(key)).toBe(canonicalJsonBytes(value[key]).length);
        for (const key of extra) if (!Object.hasOwn(value, key)) expect(fields.valueByteLength(key)).toBeUndefined();
      }),
    );
  });

  it('counts UTF-8 bytes, not UTF-16 units, in keys and values', () => {
    const value = { é: 'Küche 🏠', 'a"b': ['\u0001', '\\'], z: { '🏠': 'ü' } };
    const fields = canonicalFields(value);
    expect(fields.byteLength).toBe(canonicalJsonBytes(value).length);
    expect(fields.valueByteLength('é')).toBe(canonicalJsonBytes('Küche 🏠').length);
    expect(fields.bytesWithout(['z'])).toEqual(canonicalJsonBytes({ é: 'Küche 🏠', 'a"b': ['\u0001', '\\'] }));
    expect(fields.bytesWithout(['é', 'a"b', 'z'])).toEqual(canonicalJsonBytes({}));
  });

  it('refuses what is not a plain object', () => {
    expect(() => canonicalFields([1])).toThrow(CanonicalJsonError);
    expect(() => canonicalFields(new Map())).toThrow(CanonicalJsonError);
  });
});
