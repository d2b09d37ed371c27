// fast-check arbitraries for values canonical JSON accepts: safe integers (no floats) and strings of
// any Unicode code points, including astral ones whose UTF-16 order differs from code point order.
import fc from 'fast-check';
import type { JsonObject, JsonValue } from '../canonical-json.js';

const key = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('a', 'b', '\uffff', '\u{1f600}', '\ue000', '\ud7ff', 'signatures', 'unsigned', '__proto__'),
);

const { value, object } = fc.letrec<{ value: JsonValue; object: JsonObject }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.integer({ min: -1000, max: 1000 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.array(tie('value'), { maxLength: 4 }),
    tie('object'),
  ),
  object: fc.dictionary(key, tie('value'), { maxKeys: 5, noNullPrototype: true }) as fc.Arbitrary<JsonObject>,
}));

/** Any value canonical JSON accepts. */
export const canonicalValue: fc.Arbitrary<JsonValue> = value;
/** Any JSON object canonical JSON accepts (what signJson takes). */
export const canonicalObject: fc.Arbitrary<JsonObject> = object;

/** Rebuilds every object in a value with its keys inserted in a different order. */
export function reorderKeys(input: JsonValue, seed: number): JsonValue {
  if (Array.isArray(input)) return input.map((v, i) => reorderKeys(v, seed + i));
  if (input === null || typeof input !== 'object') return input;
  const entries = Object.entries(input);
  // A deterministic shuffle: rotate then reverse depending on the seed.
  const rotated = entries
    .slice(seed % Math.max(entries.length, 1))
    .concat(entries.slice(0, seed % Math.max(entries.length, 1)));
  if (seed % 2 === 1) rotated.reverse();
  const out: JsonObject = {};
  for (const [k, v] of rotated)
    Object.defineProperty(out, k, {
      value: reorderKeys(v, seed * 7 + 3),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}
