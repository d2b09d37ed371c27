import { jsonTextDepth } from '@polyhome/identity';
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

/** The `type` of the error jsonDepthCheck throws (answered by bodyParserError as 400 M_BAD_JSON). */
export const JSON_TOO_DEEP = 'entity.too.deep';

/**
 * The `verify` option of the JSON body parser in both apps: a body nesting objects and arrays deeper than
 * `maxDepth` is refused from its bytes, before JSON.parse builds it and before anything walks it recursively
 * (class-transformer overflowed the stack on one, a 500; and a 200 KB body of 100,000 nested arrays made as many
 * objects for the garbage collector on every request). body-parser passes the error on with its `type` and
 * `status`, so the apps' filters answer it through bodyParserError.
 */
export function jsonDepthCheck(maxDepth = MAX_JSON_DEPTH): (req: unknown, res: unknown, body: Uint8Array) => void {
  return (_req, _res, body) => {
    if (jsonTextDepth(body, maxDepth) > maxDepth) {
      throw Object.assign(new Error(`request body deeper than ${maxDepth}`), { type: JSON_TOO_DEEP, status: 400 });
    }
  };
}
