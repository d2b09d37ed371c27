import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/** Who a request authenticated as: one device of one account, on this home. */
export interface MatrixSession {
  serverName: string;
  userId: string;
  deviceId: string;
  tokenHash: string;
}

/** The request fields this module reads, whatever the HTTP platform. */
export interface MatrixRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, unknown>;
  matrixSession?: MatrixSession;
}

/** The session the access-token guard attached to the request. */
export const Session = createParamDecorator((_data: unknown, ctx: ExecutionContext): MatrixSession => {
  const session = ctx.switchToHttp().getRequest<MatrixRequest>().matrixSession;
  // The guard runs first on every route using this; reaching here without a session is a wiring bug.
  if (session === undefined) throw new Error('Session used on a route without AccessTokenGuard');
  return session;
});
