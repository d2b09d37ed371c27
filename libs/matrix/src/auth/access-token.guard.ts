import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { MatrixError } from '../common/errors.js';
import { AuthService } from './auth.service.js';
import type { MatrixRequest } from './session.js';

/** Reads the access token (`Authorization: Bearer` or `?access_token=`) and attaches the session, or refuses. */
@Injectable()
export class AccessTokenGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<MatrixRequest>();
    req.matrixSession = await this.auth.authenticate(tokenOf(req));
    return true;
  }
}

function tokenOf(req: MatrixRequest): string {
  const header = req.headers['authorization'];
  if (typeof header === 'string' && header !== '') {
    const match = /^Bearer (\S+)$/.exec(header);
    if (match?.[1] === undefined) throw new MatrixError('M_MISSING_TOKEN', 'Malformed Authorization header.');
    return match[1];
  }
  const query = req.query?.['access_token'];
  if (typeof query === 'string' && query !== '') return query;
  throw new MatrixError('M_MISSING_TOKEN', 'Missing access token.');
}
