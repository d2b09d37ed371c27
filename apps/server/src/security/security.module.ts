import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { ANONYMOUS_THROTTLER, RateLimitGuard } from './rate-limit.guard.js';

/** Window of RATE_LIMIT_PER_MINUTE. */
const WINDOW_MS = 60_000;

/**
 * Rate limits for unauthenticated routes: RATE_LIMIT_PER_MINUTE requests per client address, route and
 * sliding minute, counted in this process's memory. 0 turns the limit off.
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [
          {
            name: ANONYMOUS_THROTTLER,
            ttl: WINDOW_MS,
            limit: config.rateLimitPerMinute,
            // No block period: refused requests do not count, the window slides, a client that waits gets in.
            blockDuration: 0,
          },
        ],
        // Only Retry-After, on 429; X-RateLimit-* on every answer would tell a scanner our limits for nothing.
        setHeaders: false,
        skipIf: () => config.rateLimitPerMinute === 0,
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class SecurityModule {}
