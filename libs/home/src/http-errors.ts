/** What a body-parser failure is answered with. */
export interface BodyErrorAnswer {
  status: number;
  errcode: 'M_NOT_JSON' | 'M_TOO_LARGE' | 'M_BAD_JSON' | 'M_INVALID_PARAM' | 'M_UNKNOWN';
  error: string;
}

/**
 * The answer to a request body the JSON body parser refused (invalid JSON, too large, not UTF-8), or
 * undefined when `exception` is not one. body-parser's errors carry a string `type` and a numeric `status`;
 * Nest hands them over wrapped in an HttpException's `cause`, so that is looked at too.
 */
export function bodyParserError(exception: unknown): BodyErrorAnswer | undefined {
  return fromParser(exception) ?? fromParser((exception as { cause?: unknown } | null)?.cause);
}

function fromParser(value: unknown): BodyErrorAnswer | undefined {
  const e = value as { type?: unknown; status?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.type !== 'string' || typeof e.status !== 'number') return undefined;
  switch (e.type) {
    case 'entity.parse.failed':
      return { status: 400, errcode: 'M_NOT_JSON', error: 'The request body is not valid JSON.' };
    case 'entity.too.large':
      return { status: 413, errcode: 'M_TOO_LARGE', error: 'The request body is too large.' };
    case JSON_TOO_DEEP:
      return {
        status: 400,
        errcode: 'M_BAD_JSON',
        error: `The request body nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels.`,
      };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, errcode: 'M_NOT_JSON', error: 'The request body must be UTF-8 JSON.' };
    default:
      // Any other refusal of the body (aborted, bad length, too many parameters): the client's fault below 500.
      if (e.status >= 500) return undefined;
      return e.status === 413
        ? { status: 413, errcode: 'M_TOO_LARGE', error: 'The request body is too large.' }
        : { status: e.status, errcode: 'M_NOT_JSON', error: 'The request body must be UTF-8 JSON.' };
  }
}

/** How deep a request body may nest objects and arrays: Matrix bodies need a handful of levels. */
export const MAX_JSON_DEPTH = 64;

/** The `type` of the error jsonDepthGuard passes on (answered by bodyParserError as 400 M_BAD_JSON). */
export const JSON_TOO_DEEP = 'entity.too.deep';

/**
 * Middleware to run right after the JSON body parser: a body nesting deeper than `maxDepth` is refused before
 * anything walks it recursively (class-transformer overflowed the stack on one, a 500). The walk is iterative
 * and stops at the first level too deep, so it costs no more than the parse did.
 */
export function jsonDepthGuard(
  maxDepth = MAX_JSON_DEPTH,
): (req: { body?: unknown }, res: unknown, next: (err?: unknown) => void) => void {
  return (req, _res, next) => {
    if (jsonDepth(req.body, maxDepth) > maxDepth) {
      next(Object.assign(new Error(`request body deeper than ${maxDepth}`), { type: JSON_TOO_DEEP, status: 400 }));
      return;
    }
    next();
  };
}

/** The nesting depth of a parsed JSON value (a scalar is 0), counted up to `limit + 1` and no further. */
export function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, level]);
    }
  }
  return deepest;
}
