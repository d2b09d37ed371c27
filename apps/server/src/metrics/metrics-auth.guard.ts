import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AdminTokenVerifier } from '../admin/admin-token.js';
import { ApiError } from '../common/api-error.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';

/**
 * With METRICS_TOKEN set, admits a scrape only with `Authorization: Bearer <METRICS_TOKEN>`; unset, admits
 * every scrape (the operator protects /metrics by HOST or the reverse proxy). A token of its own, not the
 * admin token, so the monitoring system cannot administer the server.
 */
@Injectable()
export class MetricsAuthGuard implements CanActivate {
  readonly #verifier: AdminTokenVerifier | undefined;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    // The same constant-time comparison as the admin token's.
    this.#verifier = config.metricsToken === undefined ? undefined : new AdminTokenVerifier(config.metricsToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.#verifier) return true;
    const header = context.switchToHttp().getRequest<Request>().header('authorization');
    const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1])
      throw new ApiError('M_MISSING_TOKEN', 'Missing metrics token: send `Authorization: Bearer <METRICS_TOKEN>`.');
    if (!this.#verifier.matches(match[1])) throw new ApiError('M_UNKNOWN_TOKEN', 'Unknown metrics token.');
    return true;
  }
}
