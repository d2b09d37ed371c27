import { type ArgumentsHost, BadRequestException, Catch, type ExceptionFilter, Injectable } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { MatrixError, UserInteractiveAuthRequired } from './errors.js';

/**
 * Answers MatrixErrors as Matrix does, and the global ValidationPipe's refusals as M_BAD_JSON. Bound to this
 * module's controllers with `@UseFilters`, so the app's global filter stays untouched and still handles
 * everything else (body-parser errors: M_NOT_JSON; the home's own errors).
 */
@Injectable()
@Catch(MatrixError, BadRequestException)
export class MatrixExceptionFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: MatrixError | BadRequestException, host: ArgumentsHost): void {
    const res: unknown = host.switchToHttp().getResponse();
    const [status, body] = bodyOf(exception);
    const wait = body['retry_after_ms'];
    // M_LIMIT_EXCEEDED: the wait in seconds too, for clients and proxies that read the header.
    if (typeof wait === 'number')
      this.adapterHost.httpAdapter.setHeader(res, 'Retry-After', String(Math.ceil(wait / 1000)));
    this.adapterHost.httpAdapter.reply(res, body, status);
  }
}

function bodyOf(exception: MatrixError | BadRequestException): [number, Record<string, unknown>] {
  if (exception instanceof UserInteractiveAuthRequired) {
    // A first UIA request carries no errcode: matrix-js-sdk reads it as "auth needed", not as a failure.
    return [
      401,
      exception.failed ? { errcode: exception.errcode, error: exception.message, ...exception.uia } : exception.uia,
    ];
  }
  if (exception instanceof MatrixError) {
    return [exception.status, { errcode: exception.errcode, error: exception.message, ...exception.extra }];
  }
  const response = exception.getResponse();
  const message =
    typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
  const text = Array.isArray(message) ? message.join('; ') : typeof message === 'string' ? message : 'Bad request.';
  return [400, { errcode: 'M_BAD_JSON', error: text }];
}
