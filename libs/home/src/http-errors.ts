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
