import type { Server } from 'node:http';
import { hardenHttpServer, localUrlOf, serveClientApi } from '@polyhome/home';
import { StorageError } from '@polyhome/storage';
import { createServerApp } from './app.js';
import { openResources } from './resources.js';
import { ConfigError, loadConfig, type AppConfig } from './config/config.js';
import { createLogger } from './logging/logger.js';
import { VERSION } from './version.js';

function fail(message: string): never {
  process.stderr.write(`polyhome-server: ${message}\n`);
  process.exit(1);
}

if (process.argv.slice(2).includes('--version')) {
  process.stdout.write(`polyhome-server ${VERSION}\n`);
  process.exit(0);
}

// Everything the server writes in DATA_DIR is its user's alone (PGlite's own chmods are undone when it opens).
process.umask(0o077);

let config: AppConfig;
try {
  config = loadConfig();
} catch (err) {
  fail(err instanceof ConfigError ? `bad configuration: ${err.message}` : String(err));
}

const logger = createLogger(config.logLevel);
const resources = await openResources(config, logger).catch((err: unknown) => {
  const reason = err instanceof StorageError || err instanceof Error ? err.message : String(err);
  return fail(`cannot start: ${reason}`);
});

const app = await createServerApp(resources);
// Header and request timeouts, keep-alive limits and a connection cap (slow clients); before listening.
hardenHttpServer(app.getHttpServer() as Server, config.http);
try {
  await app.listen(config.port, config.host);
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code;
  await app.close();
  fail(
    code === 'EADDRINUSE'
      ? `cannot listen on ${config.host}:${config.port}: the port is in use. Stop the other process or set PORT.`
      : `cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`,
  );
}
// `polyhome proxy`: the Matrix client API over libp2p, forwarded to the listener above (CLIENT_API_OVER_P2P).
const clientApi = config.clientApiOverP2p
  ? await serveClientApi(resources.p2p.host, {
      url: localUrlOf(config.host, config.port),
      maxBodyBytes: config.mediaMaxBytes,
      logger: logger.child({ component: 'client-api-p2p' }),
    })
  : undefined;
logger.info(
  { host: config.host, port: config.port, database: resources.storage.backend, queue: resources.queue.kind },
  `polyhome server listening on http://${config.host}:${config.port}`,
);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal }, 'shutting down: no new requests, draining the queue, closing the database');
  const timer = setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'graceful shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  // DHT queries of a running announcement job end now: the queue's drain (before the Home stops) need not wait
  // for their 30 s timeout.
  resources.p2p.cancelWork();
  await clientApi?.stop();
  // Stop accepting connections first; idle keep-alive sockets would otherwise hold the close open.
  const server = app.getHttpServer() as Server;
  server.close();
  server.closeIdleConnections();
  try {
    await app.close();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'error during shutdown');
    process.exit(1);
  }
}
process.on('SIGTERM', (s) => void shutdown(s));
process.on('SIGINT', (s) => void shutdown(s));
