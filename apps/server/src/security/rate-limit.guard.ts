import { type ExecutionContext, Injectable } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants.js';
import { SkipThrottle, ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { Response } from 'express';
import { AdminAuthGuard } from '../admin/admin-auth.guard.js';
import { RateLimitedError } from '../common/api-error.js';

/** Name of the throttler that limits unauthenticated routes. */
export const ANONYMOUS_THROTTLER = 'anonymous';

/** Exempts a route or controller from the rate limit of unauthenticated routes. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator => SkipThrottle({ [ANONYMOUS_THROTTLER]: true });

/**
 * The throttler guard, run globally, with our choices: routes behind the admin bearer token are not limited
 * (the token is a 32-byte secret and admin automation should not be throttled), and a refusal is Matrix's
 * 429 M_LIMIT_EXCEEDED with `retry_after_ms` and a `Retry-After` header.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const guards = this.reflector.getAllAndMerge<unknown[]>(GUARDS_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    return guards.includes(AdminAuthGuard);
  }

  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    // The store counts in whole seconds; at least one, so a client never retries at once.
    const seconds = Math.max(1, detail.timeToBlockExpire);
    context.switchToHttp().getResponse<Response>().setHeader('Retry-After', String(seconds));
    throw new RateLimitedError(seconds * 1000, 'Too many requests; retry later.');
  }
}
