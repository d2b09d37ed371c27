// Builds the real server (real database, real queue) for HTTP tests, with its log lines captured.
import { Writable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { createTestDatabase, type TestDatabase } from '@polyhome/storage/testing';
import { createServerApp } from '../app.js';
import { openResources } from '../resources.js';
import type { ServerResources } from '../app.module.js';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../logging/logger.js';

/** The backend pairs the server runs on: the embedded default and the production services. */
export const SERVER_BACKENDS = [
  { name: 'pglite + in-process queue', database: 'pglite', queue: 'in-process' },
  { name: 'postgres + bullmq', database: 'postgres', queue: 'bullmq' },
] as const;

/** One backend pair. */
export type ServerBackend = (typeof SERVER_BACKENDS)[number];

/** A started test server. */
export interface TestServer {
  app: INestApplication;
  resources: ServerResources;
  db: TestDatabase;
  /** Every log line written so far, raw. */
  logs: string[];
  close(): Promise<void>;
}

/** Redis for tests. */
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Starts the server app on the given backends with the given extra environment. */
export async function startTestServer(backend: ServerBackend, env: Record<string, string> = {}): Promise<TestServer> {
  const db = await createTestDatabase(backend.database);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({
    DATA_DIR: db.dataDir,
    ...(db.databaseUrl ? { DATABASE_URL: db.databaseUrl } : {}),
    ...(backend.queue === 'bullmq' ? { REDIS_URL: TEST_REDIS_URL } : {}),
    LOG_LEVEL: 'info',
    P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
    ...env,
  });
  const logger = createLogger(config.logLevel, sink);
  const resources = await openResources(config, logger);
  const app = await createServerApp(resources);
  await app.init();
  let closed = false;
  return {
    app,
    resources,
    db,
    logs,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await db.dispose();
    },
  };
}
