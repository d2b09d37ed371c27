/** The Matrix-style error codes this server answers with. */
export type Errcode =
  | 'M_MISSING_TOKEN'
  | 'M_UNKNOWN_TOKEN'
  | 'M_FORBIDDEN'
  | 'M_NOT_FOUND'
  | 'M_UNRECOGNIZED'
  | 'M_NOT_JSON'
  | 'M_BAD_JSON'
  | 'M_INVALID_PARAM'
  | 'M_MISSING_PARAM'
  | 'M_TOO_LARGE'
  | 'M_LIMIT_EXCEEDED'
  | 'M_UNAVAILABLE'
  | 'M_USER_IN_USE'
  | 'M_UNKNOWN';

/** The HTTP status of each code. A new code does not compile until it is given one here. */
export function statusOf(errcode: Errcode): number {
  switch (errcode) {
    case 'M_MISSING_TOKEN':
    case 'M_UNKNOWN_TOKEN':
      return 401;
    case 'M_FORBIDDEN':
      return 403;
    case 'M_USER_IN_USE':
      return 409;
    case 'M_NOT_FOUND':
    case 'M_UNRECOGNIZED':
      return 404;
    case 'M_NOT_JSON':
    case 'M_BAD_JSON':
    case 'M_INVALID_PARAM':
    case 'M_MISSING_PARAM':
      return 400;
    case 'M_TOO_LARGE':
      return 413;
    case 'M_LIMIT_EXCEEDED':
      return 429;
    case 'M_UNAVAILABLE':
      return 503;
    case 'M_UNKNOWN':
      return 500;
    default: {
      const unhandled: never = errcode;
      throw new Error(`No HTTP status for ${String(unhandled)}`);
    }
  }
}

/** Thrown by services for any failure a client should see; the global filter turns it into `{ errcode, error }`. */
export class ApiError extends Error {
  constructor(
    readonly errcode: Errcode,
    message: string,
    readonly status: number = statusOf(errcode),
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Thrown when a client exceeded a rate limit; the body carries `retry_after_ms` as Matrix's M_LIMIT_EXCEEDED does. */
export class RateLimitedError extends ApiError {
  constructor(
    readonly retryAfterMs: number,
    message = 'Too many requests.',
  ) {
    super('M_LIMIT_EXCEEDED', message);
    this.name = 'RateLimitedError';
  }
}
