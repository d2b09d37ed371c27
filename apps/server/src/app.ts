import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createQueueBackend } from '@polyhome/queue';
import { openStorage, redactDatabaseUrl as redactUrl } from '@polyhome/storage';
import express from 'express';
import type { Logger } from 'pino';
import { resolveAdminToken } from './admin/admin-token.js';
import { AppModule, type ServerResources } from './app.module.js';
import { ApiExceptionFilter } from './common/api-exception.filter.js';
import type { AppConfig } from './config/config.js';
import { PinoNestLogger } from './logging/logger.js';
import { requestIdMiddleware } from './logging/request-id.middleware.js';

/** Largest JSON body accepted by any route; larger ones get 413 M_TOO_LARGE. */
export const MAX_BODY_BYTES = 256 * 1024;

/** Opens the database, the queue and the admin token, in that order, closing what was opened if a later step fails. */
export async function openResources(config: AppConfig, logger: Logger): Promise<ServerResources> {
  const storage = await openStorage({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    migrationsRun: config.migrationsRun,
    onProgress: (message) => logger.info(message),
  });
  try {
    if (storage.appliedMigrations.length > 0) {
      logger.info(
        { migrations: storage.appliedMigrations },
        `applied ${storage.appliedMigrations.length} migration(s)`,
      );
    }
    const queue = createQueueBackend({
      redisUrl: config.redisUrl,
      onError: (err) => logger.warn({ err: err.message }, 'queue error'),
    });
    try {
      const health = await queue.health();
      if (!health.ok) {
        throw new Error(
          `Cannot use Redis at ${redactUrl(config.redisUrl ?? '')} for the job queue: ${health.error ?? 'no answer'}. ` +
            'Start Redis (npm run services), fix REDIS_URL, or unset it to use the in-process queue.',
        );
      }
      const admin = await resolveAdminToken(config.adminToken, config.dataDir);
      if (admin.source === 'generated') {
        logger.info({ file: admin.file }, `generated an admin token; it is in ${admin.file} (mode 0600)`);
      }
      return { config, logger, storage, queue, adminToken: admin.verifier };
    } catch (err) {
      await queue.close();
      throw err;
    }
  } catch (err) {
    await storage.close();
    throw err;
  }
}

/** Builds the Nest application on opened resources (not yet listening). */
export async function createServerApp(resources: ServerResources): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(resources), {
    logger: new PinoNestLogger(resources.logger),
    bodyParser: false,
    abortOnError: false,
  });
  app.use(requestIdMiddleware(resources.logger));
  // Our own parser so its limit and errors are ours: malformed JSON is M_NOT_JSON, too large M_TOO_LARGE.
  app.use(express.json({ limit: MAX_BODY_BYTES, strict: true }));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.useGlobalFilters(new ApiExceptionFilter(resources.logger));
  const http = app.getHttpAdapter().getInstance() as express.Express;
  http.disable('x-powered-by');
  return app;
}
