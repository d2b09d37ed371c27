import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ADMIN_BEARER } from '../admin/admin-api.decorator.js';
import { VERSION } from '../version.js';

/** Where the Swagger UI of the admin API is served; the document is at `${ADMIN_DOCS_PATH}-json`. */
export const ADMIN_DOCS_PATH = '/admin/docs';

/** Only these paths go into the admin document; the Matrix client API will have its own spec. */
const ADMIN_API_PREFIX = '/admin/v1/';

/** The OpenAPI document of the admin API: every /admin/v1 route, each requiring the admin bearer token. */
export function buildAdminDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('polyhome admin API')
    .setVersion(VERSION)
    .setDescription(
      'Administration of a polyhome server home. Every `/admin/v1` route needs `Authorization: Bearer <ADMIN_TOKEN>`; ' +
        'this document and its UI need none (they describe the API, they do not use it). ' +
        'Every error is `{ "errcode": "M_...", "error": "..." }`.',
    )
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, ADMIN_BEARER)
    // Required at the document level too, so a route that forgot its decorator is still shown as protected.
    .addSecurityRequirements(ADMIN_BEARER)
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.paths = Object.fromEntries(
    Object.entries(document.paths).filter(([path]) => path.startsWith(ADMIN_API_PREFIX)),
  );
  return document;
}

/**
 * Serves the Swagger UI at /admin/docs and the JSON at /admin/docs-json, without a token: the document holds
 * no secret and no data, only the shape of routes that each demand the token. The document is built on
 * first request, once every module's controllers are known.
 */
export function setupAdminDocs(app: INestApplication): void {
  SwaggerModule.setup(ADMIN_DOCS_PATH, app, () => buildAdminDocument(app), {
    raw: ['json'],
    customSiteTitle: 'polyhome admin API',
    // The default validator badge loads an image from validator.swagger.io: an outside request the CSP refuses.
    swaggerOptions: { validatorUrl: null, persistAuthorization: false },
  });
}
