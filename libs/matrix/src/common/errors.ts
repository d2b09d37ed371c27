/** The Matrix error codes a home answers with (this API, and the server's admin and enrollment APIs). */
export type MatrixErrcode =
  | 'M_FORBIDDEN'
  | 'M_UNKNOWN_TOKEN'
  | 'M_MISSING_TOKEN'
  | 'M_NOT_JSON'
  | 'M_BAD_JSON'
  | 'M_INVALID_PARAM'
  | 'M_MISSING_PARAM'
  | 'M_INVALID_SIGNATURE'
  | 'M_NOT_FOUND'
  | 'M_UNRECOGNIZED'
  | 'M_TOO_LARGE'
  | 'M_LIMIT_EXCEEDED'
  | 'M_UNAVAILABLE'
  | 'M_USER_IN_USE'
  | 'M_UNSUPPORTED_ROOM_VERSION'
  | 'M_CANNOT_OVERWRITE_MEDIA'
  | 'M_NOT_YET_UPLOADED'
  | 'M_INVALID_ROOM_STATE'
  | 'M_WRONG_ROOM_KEYS_VERSION'
  | 'M_UNKNOWN';

/** The HTTP status of each code; a new code does not compile until it has one. */
export function matrixStatusOf(errcode: MatrixErrcode): number {
  switch (errcode) {
    case 'M_UNKNOWN_TOKEN':
    case 'M_MISSING_TOKEN':
      return 401;
    case 'M_FORBIDDEN':
    case 'M_WRONG_ROOM_KEYS_VERSION':
      return 403;
    case 'M_USER_IN_USE':
    case 'M_CANNOT_OVERWRITE_MEDIA':
      return 409;
    case 'M_NOT_FOUND':
    case 'M_UNRECOGNIZED':
      return 404;
    case 'M_NOT_JSON':
    case 'M_BAD_JSON':
    case 'M_INVALID_PARAM':
    case 'M_MISSING_PARAM':
    case 'M_UNSUPPORTED_ROOM_VERSION':
    case 'M_INVALID_ROOM_STATE':
    case 'M_INVALID_SIGNATURE':
      return 400;
    case 'M_TOO_LARGE':
      return 413;
    case 'M_LIMIT_EXCEEDED':
      return 429;
    case 'M_UNAVAILABLE':
      return 503;
    case 'M_NOT_YET_UPLOADED':
      return 504;
    case 'M_UNKNOWN':
      return 500;
    default: {
      const unhandled: never = errcode;
      throw new Error(`No HTTP status for ${String(unhandled)}`);
    }
  }
}

/**
 * Thrown for any failure a Matrix client should see; `MatrixExceptionFilter` answers it as `{ errcode, error }`
 * plus `extra` (the user-interactive auth state of a 401, for instance).
 */
export class MatrixError extends Error {
  constructor(
    readonly errcode: MatrixErrcode,
    message: string,
    readonly status: number = matrixStatusOf(errcode),
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }
}

/** Thrown when a route needs user-interactive auth: a 401 with the flows and session, and an errcode on a failed try. */
export class UserInteractiveAuthRequired extends MatrixError {
  constructor(
    readonly uia: Record<string, unknown>,
    failure?: { errcode: MatrixErrcode; error: string },
  ) {
    super(
      failure?.errcode ?? 'M_FORBIDDEN',
      failure?.error ?? 'User-interactive authentication is required.',
      401,
      uia,
    );
    this.name = 'UserInteractiveAuthRequired';
    this.failed = failure !== undefined;
  }

  /** Whether a try failed (then the body carries errcode and error; a first request's body does not). */
  readonly failed: boolean;
}
