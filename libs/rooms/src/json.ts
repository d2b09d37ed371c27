// Small JSON and identifier helpers shared by the room-version modules. Everything here reads
// untrusted input, so each helper accepts `unknown` and never throws.
import type { JsonObject } from './types.js';

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True for an integer canonical JSON can carry: within +-(2^53 - 1). */
export function isCanonicalInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/**
 * The own property `key` of `object`, or undefined: never an inherited one such as `__proto__` or
 * `toString`, and undefined too when `object` is not a JSON object (untrusted content may be anything).
 */
export function own(object: unknown, key: string): unknown {
  return isJsonObject(object) && Object.hasOwn(object, key) ? object[key] : undefined;
}

/** UTF-8 length of a string without allocating its bytes. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * The server name of a user, room or event id (`@local:server`, `!opaque:server`): what follows the
 * first colon. Undefined when there is no colon or nothing after it. In polyhome the server name is an
 * account's 64-hex key; nothing here depends on that.
 */
export function serverNameOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  if (colon < 0 || colon === id.length - 1) return undefined;
  return id.slice(colon + 1);
}

/**
 * True for a user id as the auth rules need it: `@`, a non-empty localpart without a colon, `:` and a
 * non-empty server name, at most 255 bytes (client-server API "User Identifiers"). The localpart's
 * character set is not checked: historical user ids outside the grammar exist in real rooms.
 */
export function isUserId(value: unknown): value is string {
  if (typeof value !== 'string' || !value.startsWith('@')) return false;
  const colon = value.indexOf(':');
  return colon > 1 && colon < value.length - 1 && utf8Length(value) <= 255;
}
