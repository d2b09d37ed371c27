import { applyDecorators, UseGuards, type Type } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { statusOf, type Errcode } from '../common/api-error.js';
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

/** One error answer of an admin route: its code and an example message. */
export interface AdminErrorAnswer {
  errcode: Errcode;
  /** When the route answers it, for the OpenAPI description. */
  when: string;
  /** An example `error` text. */
  error: string;
}

/** The OpenAPI description of one admin route: what it does, its success answer with an example, its errors. */
export interface AdminRouteDoc {
  summary: string;
  description?: string;
  /** The success status (200 unless given) and the example body. */
  status?: 200 | 201 | 202;
  type?: Type<unknown>;
  example: unknown;
  /** The error answers besides 401 (which every admin route has, from AdminApi). */
  errors: AdminErrorAnswer[];
}

/** A user ID in examples. */
export const EXAMPLE_USER_ID = '@alice:ffd74e8ee7970d90abb63c66dbdacc2985c26139ae51474e57504e12919759b0';
/** A PeerId in examples. */
export const EXAMPLE_PEER_ID = '12D3KooWK8hKAmj5csaNbGtkJv9HqPc7KPK4GTWePdSzhjz7oP6x';

/** A 400 for a query that is no page query (`?limit=`, `?from=`), as every paginated route answers it. */
export const BAD_PAGE_QUERY: AdminErrorAnswer = {
  errcode: 'M_INVALID_PARAM',
  when: 'a bad or unknown query parameter',
  error: 'limit must not be greater than 500',
};

/** A 400 for a destructive route's body without a reason (or with an unknown field). */
export const MISSING_REASON: AdminErrorAnswer = {
  errcode: 'M_INVALID_PARAM',
  when: 'no `reason` in the body (every destructive route needs one, for the audit log), or an unknown field',
  error: 'reason must say why (it is written to the audit log)',
};

/** A 400 for a path user ID that is not one, and a 404 for one not hosted here. */
export const USER_ID_ERRORS: AdminErrorAnswer[] = [
  { errcode: 'M_INVALID_PARAM', when: 'the user ID is malformed', error: 'Invalid user ID: must start with "@"' },
  { errcode: 'M_NOT_FOUND', when: 'the account is not hosted here', error: `${EXAMPLE_USER_ID} is not hosted here.` },
];

/**
 * Documents an admin route: summary, the success answer with an example, and each error answer (grouped by
 * status, one named example per errcode), all in the one error body.
 */
export function AdminRoute(doc: AdminRouteDoc): MethodDecorator {
  const byStatus = new Map<number, AdminErrorAnswer[]>();
  for (const answer of doc.errors) {
    const status = statusOf(answer.errcode);
    byStatus.set(status, [...(byStatus.get(status) ?? []), answer]);
  }
  const errors = [...byStatus].map(([status, answers]) =>
    ApiResponse({
      status,
      description: answers.map((a) => `${a.errcode}: ${a.when}.`).join(' '),
      type: ErrorBodyDto,
      examples: Object.fromEntries(
        answers.map((a, i) => [
          answers.filter((b) => b.errcode === a.errcode).length > 1 ? `${a.errcode}_${i}` : a.errcode,
          { summary: a.when, value: { errcode: a.errcode, error: a.error } },
        ]),
      ),
    }),
  );
  return applyDecorators(
    ApiOperation({ summary: doc.summary, ...(doc.description === undefined ? {} : { description: doc.description }) }),
    ApiResponse({
      status: doc.status ?? 200,
      description: doc.summary,
      ...(doc.type === undefined ? {} : { type: doc.type }),
      example: doc.example,
    }),
    ...errors,
  );
}
