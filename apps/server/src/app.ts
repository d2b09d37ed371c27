import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { jsonDepthCheck } from '@polyhome/home';
import { matrixHttp, skipMediaUploads } from '@polyhome/matrix';
import { AppModule, type ServerResources } from './app.module.js';
import { ApiExceptionFilter } from './common/api-exception.filter.js';
import { StrictValidationPipe } from './common/validation.pipe.js';
import { PinoNestLogger } from './logging/logger.js';
import { requestIdMiddleware } from './logging/request-id.middleware.js';
import { MetricsService } from './metrics/metrics.service.js';
import { setupAdminDocs } from './openapi/openapi.js';
import { securityHeaders } from './security/security-headers.js';

/** Largest JSON body accepted by any route; larger ones get 413 M_TOO_LARGE. */
export const MAX_BODY_BYTES = 256 * 1024;

/** Builds the Nest application on opened resources (not yet listening). */
export async function createServerApp(resources: ServerResources): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(resources), {
    logger: new PinoNestLogger(resources.logger),
    bodyParser: false,
    abortOnError: false,
  });
  app.use(requestIdMiddleware(resources.logger));
  // CORS on Matrix paths and r0 served as v3, before any route (the admin API gets no CORS).
  app.use(matrixHttp());
  app.use(securityHeaders());
  app.use(app.get(MetricsService).httpMiddleware());
  // Our own parser so its limit and errors are ours: malformed JSON is M_NOT_JSON, too large M_TOO_LARGE.
  // Deeply nested JSON is 400 M_BAD_JSON from its bytes, before the parse (it overflowed the stack: a 500).
  // Media uploads are left to their routes, which stream the file up to MEDIA_MAX_BYTES.
  app.use(skipMediaUploads(express.json({ limit: MAX_BODY_BYTES, strict: true, verify: jsonDepthCheck() })));
  app.useGlobalPipes(new StrictValidationPipe());
  app.useGlobalFilters(new ApiExceptionFilter(resources.logger));
  const http = app.getHttpAdapter().getInstance() as express.Express;
  http.disable('x-powered-by');
  setupAdminDocs(app);
  serveConsole(http);
  return app;
}

/** Where the build puts the admin console (apps/server/dist/console, from src/ and from dist/ alike). */
export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'console');

/**
 * Serves the admin console's static files at /admin/ (index.html for /admin/). Paths that are no file of it fall
 * through to the routes (/admin/v1/..., /admin/docs). The hashed assets never change: cached for a year.
 */
function serveConsole(http: express.Express): void {
  http.use(
    '/admin',
    express.static(CONSOLE_DIR, {
      index: 'index.html',
      redirect: true,
      fallthrough: true,
      setHeaders: (res, file) => {
        res.setHeader(
          'Cache-Control',
          file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    }),
  );
}
