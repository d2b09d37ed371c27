import { matrixStatusOf, type MatrixErrcode } from '@polyhome/matrix';

/** The Matrix error codes this server answers with: the same set, and statuses, as the Matrix client API's. */
export type Errcode = MatrixErrcode;

/** The HTTP status of each code (one exhaustive table, in @polyhome/matrix). */
export const statusOf: (errcode: Errcode) => number = matrixStatusOf;

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
