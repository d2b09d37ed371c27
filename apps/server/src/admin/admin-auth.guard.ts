import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { ApiError } from '../common/api-error.js';
import { AdminTokenVerifier } from './admin-token.js';

/** Admits a request only with `Authorization: Bearer <admin token>`. */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  constructor(@Inject(AdminTokenVerifier) private readonly verifier: AdminTokenVerifier) {}

  canActivate(context: ExecutionContext): boolean {
    const header = context.switchToHttp().getRequest<Request>().header('authorization');
    if (!header)
      throw new ApiError('M_MISSING_TOKEN', 'Missing admin token: send `Authorization: Bearer <ADMIN_TOKEN>`.');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw new ApiError('M_MISSING_TOKEN', 'The Authorization header must be `Bearer <ADMIN_TOKEN>`.');
    if (!this.verifier.matches(match[1])) throw new ApiError('M_UNKNOWN_TOKEN', 'Unknown admin token.');
    return true;
  }
}
