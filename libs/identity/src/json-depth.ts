// One pass over JSON text, before any parse: how deep it nests. Every layer that takes JSON from outside (HTTP
// bodies, federation requests, account-data content inside ops) refuses deep nesting with it, so a deeply
// nested value never reaches recursive code (JSON.parse's stack, canonical JSON).

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * How deep the JSON text nests objects and arrays (a scalar is 0), counted up to `limit + 1` and no further,
 * in one pass with no allocation. Takes UTF-8 bytes or a string: brackets inside strings are skipped, and every
 * byte of a multi-byte UTF-8 character (every UTF-16 unit outside ASCII) is 0x80 or above, so none is taken for
 * a quote, a backslash or a bracket. Text that is not JSON gets some number here and is refused by the parser.
 */
export function jsonTextDepth(text: Uint8Array | string, limit: number): number {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i]!;
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = at(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return deepest;
}
