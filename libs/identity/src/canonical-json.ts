// Matrix canonical JSON (spec appendix "Canonical JSON"): the bytes every signature covers, so two
// homes must produce identical output for equal values. Anything the spec does not allow is refused
// rather than coerced, because a silent coercion would sign something other than what was meant.
import { CanonicalJsonError } from './errors.js';
import { utf8 } from './encoding.js';

/** A JSON value that canonical JSON can encode. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object with string keys. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deepest nesting accepted; bounds the work and the stack depth for hostile input (and catches cycles). */
export const MAX_JSON_DEPTH = 64;

// Lone surrogates cannot be encoded as UTF-8; with the `u` flag this matches only unpaired ones.
const LONE_SURROGATE = /\p{Cs}/u;
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * Encodes a value as Matrix canonical JSON text: keys sorted by Unicode code point, no whitespace,
 * integers in +-(2^53 - 1), strings escaped only where the spec's grammar requires. `-0` is written as
 * `0`, as in the spec's own example. Throws CanonicalJsonError for floats, NaN, infinities, unsafe
 * integers, lone surrogates, undefined, functions, symbols, bigints, non-plain objects, sparse arrays
 * and nesting deeper than MAX_JSON_DEPTH.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

/** Encodes a value as the UTF-8 bytes of its canonical JSON: what gets signed and hashed. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalJson(value));
}

/**
 * The canonical JSON of one object, encoded once, field by field: the bytes of the object without some
 * fields (what a signature covers, what a content hash covers), the size of the whole and of one field's
 * value all derive from the same encoding, so nothing is encoded twice. Made by canonicalFields.
 */
export interface CanonicalFields {
  /** UTF-8 length of the canonical JSON of the whole object. */
  readonly byteLength: number;
  /** UTF-8 length of the canonical JSON of one field's value, or undefined when the object lacks the field. */
  valueByteLength(key: string): number | undefined;
  /** The UTF-8 canonical JSON of the object without the fields named (none by default). */
  bytesWithout(omit?: readonly string[]): Uint8Array;
}

/**
 * Encodes a plain object as canonical JSON once, keeping each field's encoding (see CanonicalFields).
 * Refuses exactly what canonicalJson refuses, with the same error and path. Throws CanonicalJsonError.
 */
export function canonicalFields(value: object): CanonicalFields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CanonicalJsonError('$', 'not a plain object');
  }
  const keys = sortedKeys(value);
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  const values = new Map<string, string>();
  for (const key of keys) {
    let text: string;
    try {
      text = encode(record[key], 1);
    } catch (error) {
      throw within(error, pathSegment(key));
    }
    values.set(key, text);
    members.push(JSON.stringify(key) + ':' + text);
  }
  let byteLength = 2 + Math.max(members.length - 1, 0);
  for (const member of members) byteLength += utf8Length(member);
  return {
    byteLength,
    valueByteLength(key) {
      const text = values.get(key);
      return text === undefined ? undefined : utf8Length(text);
    },
    bytesWithout(omit = []) {
      const kept = members.filter((_, i) => !omit.includes(keys[i]!));
      return utf8('{' + kept.join(',') + '}');
    },
  };
}

/** Compares two strings by Unicode code point (the order canonical JSON sorts keys in), not by UTF-16 unit. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// UTF-16 order differs from code point order only between surrogates (D800-DFFF, which stand for
// code points above FFFF) and units E000-FFFF: move surrogates above them. For well-formed strings the
// first differing unit then decides exactly as the code points would.
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

// Paths are only built when something fails (by re-throwing at each level), keeping the hot path cheap.
function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new CanonicalJsonError('$', describeNumber(value));
      // `${-0}` is "0": the spec's example maps -0 to 0, and "-0" must never appear.
      return `${value}`;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_JSON_DEPTH) throw new CanonicalJsonError('$', `nested deeper than ${MAX_JSON_DEPTH}`);
      if (Array.isArray(value)) return encodeArray(value, depth + 1);
      return encodeObject(value, depth + 1);
    default:
      throw new CanonicalJsonError('$', `${typeof value} is not a JSON value`);
  }
}

function encodeString(value: string): string {
  if (LONE_SURROGATE.test(value)) throw new CanonicalJsonError('$', 'string contains a lone surrogate');
  // For well-formed strings JSON.stringify emits exactly the spec grammar: only ", \ and control
  // characters escaped, \b \f \n \r \t short forms, other controls as lowercase \u00XX.
  return JSON.stringify(value);
}

function encodeArray(value: unknown[], depth: number): string {
  if (Object.getPrototypeOf(value) !== Array.prototype) throw new CanonicalJsonError('$', 'not a plain array');
  let out = '[';
  for (let i = 0; i < value.length; i++) {
    if (i > 0) out += ',';
    try {
      if (!(i in value)) throw new CanonicalJsonError('$', 'sparse array hole');
      out += encode(value[i], depth);
    } catch (error) {
      throw within(error, `[${i}]`);
    }
  }
  return out + ']';
}

function encodeObject(value: object, depth: number): string {
  const keys = sortedKeys(value);
  const record = value as Record<string, unknown>;
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ',';
    try {
      out += JSON.stringify(key) + ':' + encode(record[key], depth);
    } catch (error) {
      throw within(error, pathSegment(key));
    }
  }
  return out + '}';
}

// The keys of a plain object in canonical order, after refusing what canonical JSON cannot encode.
function sortedKeys(value: object): string[] {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new CanonicalJsonError('$', 'not a plain object');
  if (Object.getOwnPropertySymbols(value).length > 0) throw new CanonicalJsonError('$', 'object has symbol keys');
  const keys = Object.keys(value);
  for (const key of keys) {
    if (LONE_SURROGATE.test(key)) throw new CanonicalJsonError('$', 'key contains a lone surrogate');
  }
  return keys.sort(compareCodePoints);
}

function pathSegment(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key.slice(0, 40))}]`;
}

// UTF-8 length of well-formed text (the encoder has refused lone surrogates), without encoding it.
function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) length += 1;
    else if (unit < 0x800) length += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      length += 4;
      i++;
    } else length += 3;
  }
  return length;
}

function within(error: unknown, segment: string): unknown {
  if (!(error instanceof CanonicalJsonError)) return error;
  return new CanonicalJsonError(`$${segment}${error.path.slice(1)}`, error.reason);
}

function describeNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN is not allowed';
  if (!Number.isFinite(value)) return 'infinity is not allowed';
  if (!Number.isInteger(value)) return 'floats are not allowed';
  return 'integer outside +-(2^53 - 1)';
}
