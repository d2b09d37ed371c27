import { applyDecorators, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from '../common/error-body.dto.js';
import { AdminAuthGuard } from './admin-auth.guard.js';

/** Name of the admin bearer scheme in the OpenAPI document. */
export const ADMIN_BEARER = 'admin';

/**
 * Marks a controller as part of the admin API: the bearer guard, and the OpenAPI tag, security scheme and
 * 401 answer. One decorator so no admin controller can be declared without its guard. (The rate limit
 * skips every route guarded by AdminAuthGuard, so it needs no marker here.)
 */
export function AdminApi(tag: string): ClassDecorator {
  return applyDecorators(
    UseGuards(AdminAuthGuard),
    ApiTags(tag),
    ApiBearerAuth(ADMIN_BEARER),
    ApiUnauthorizedResponse({
      description: 'No admin token (M_MISSING_TOKEN) or a wrong one (M_UNKNOWN_TOKEN).',
      type: ErrorBodyDto,
    }),
  );
}
