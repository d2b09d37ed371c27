import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import { bodyParserError } from '@polyhome/home';
import type { Logger } from 'pino';
import { ApiError, RateLimitedError, type Errcode } from './api-error.js';

/** The one error body shape of every response. */
export interface ErrorBody {
  errcode: Errcode;
  error: string;
  /** How long to wait before retrying, on M_LIMIT_EXCEEDED (Matrix spec). */
  retry_after_ms?: number;
  /** Per-dependency state, on a failed health check. */
  details?: unknown;
}

function fromStatus(status: number): Errcode {
  switch (status) {
    case HttpStatus.UNAUTHORIZED:
      return 'M_UNKNOWN_TOKEN';
    case HttpStatus.FORBIDDEN:
      return 'M_FORBIDDEN';
    case HttpStatus.NOT_FOUND:
    case HttpStatus.METHOD_NOT_ALLOWED:
      return 'M_UNRECOGNIZED';
    case HttpStatus.PAYLOAD_TOO_LARGE:
      return 'M_TOO_LARGE';
    case HttpStatus.TOO_MANY_REQUESTS:
      return 'M_LIMIT_EXCEEDED';
    case HttpStatus.SERVICE_UNAVAILABLE:
      return 'M_UNAVAILABLE';
    default:
      return status >= 500 ? 'M_UNKNOWN' : 'M_INVALID_PARAM';
  }
}

function messageOf(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  if (typeof message === 'string') return message;
  return exception.message;
}

/** Body-parser failures (the mapping is libs/home's, shared with the node's Matrix API). */
function fromBodyParser(exception: unknown): [number, ErrorBody] | undefined {
  const answer = bodyParserError(exception);
  return answer === undefined ? undefined : [answer.status, { errcode: answer.errcode, error: answer.error }];
}

/** Maps every error to a status and `{ errcode, error }`; unexpected ones are logged and answered as M_UNKNOWN. */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const [status, body] = this.map(exception);
    if (status >= 500) this.logger.error({ err: exception }, 'request failed');
    if (res.headersSent) return;
    if (body.retry_after_ms !== undefined) res.setHeader('Retry-After', String(Math.ceil(body.retry_after_ms / 1000)));
    res.status(status).json(body);
  }

  private map(exception: unknown): [number, ErrorBody] {
    if (exception instanceof RateLimitedError) {
      const body = { errcode: exception.errcode, error: exception.message, retry_after_ms: exception.retryAfterMs };
      return [exception.status, body];
    }
    if (exception instanceof ApiError)
      return [exception.status, { errcode: exception.errcode, error: exception.message }];
    const parser = fromBodyParser(exception);
    if (parser) return parser;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const errcode = fromStatus(status);
      const response = exception.getResponse();
      const details =
        typeof response === 'object' && response !== null ? (response as { details?: unknown }).details : undefined;
      if (details !== undefined) {
        // A failed health check: say which dependency is down, keep Terminus's per-dependency details.
        const down = Object.entries(details as Record<string, { status?: string }>)
          .filter(([, v]) => v.status === 'down')
          .map(([k]) => k);
        return [status, { errcode, error: `Unhealthy: ${down.join(', ') || 'unknown'} down.`, details }];
      }
      const error = status === 404 ? 'Unrecognized request.' : messageOf(exception);
      return [status, { errcode, error }];
    }
    return [500, { errcode: 'M_UNKNOWN', error: 'Internal server error.' }];
  }
}
