import { Home } from '@polyhome/home';
import { listenFailureReason } from '@polyhome/p2p';
import { createQueueBackend } from '@polyhome/queue';
import {
  createRepositories,
  openSeqGuardStore,
  openStorage,
  preparePrivateDataDir,
  redactDatabaseUrl,
} from '@polyhome/storage';
import type { Logger } from 'pino';
import { resolveAdminToken } from './admin/admin-token.js';
import type { ServerResources } from './app.module.js';
import type { AppConfig } from './config/config.js';
import { loadServerSecrets } from './secrets/secrets.js';

/** How often every hosted account is re-provided in the DHT and its document re-published. */
const ANNOUNCE_EVERY_MS = 30 * 60 * 1000;

/**
 * Opens everything the server needs before Nest starts, in order: the database (migrated), the queue, the
 * admin token and the keys, the libp2p node. A failure is one clear message; what was opened is closed.
 */
export async function openResources(config: AppConfig, logger: Logger): Promise<ServerResources> {
  const undo: Array<() => Promise<void>> = [];
  try {
    // DATA_DIR holds the keys and the admin token (and the embedded database): owner-only, or refused.
    await preparePrivateDataDir(config.dataDir);
    const storage = await openStorage({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      migrationsRun: config.migrationsRun,
      onProgress: (message) => logger.info(message),
    });
    undo.push(() => storage.close());
    if (storage.appliedMigrations.length > 0) {
      logger.info(
        { migrations: storage.appliedMigrations },
        `applied ${storage.appliedMigrations.length} migration(s)`,
      );
    }
    const queue = createQueueBackend({
      redisUrl: config.redisUrl,
      prefix: config.queuePrefix,
      onError: (err) => logger.warn({ err: err.message }, 'queue error'),
    });
    undo.push(() => queue.close());
    const health = await queue.health();
    if (!health.ok) {
      throw new Error(
        `Cannot use Redis at ${redactDatabaseUrl(config.redisUrl ?? '')} for the job queue: ${health.error ?? 'no answer'}. ` +
          'Start Redis (npm run services), fix REDIS_URL, or unset it to use the in-process queue.',
      );
    }
    const admin = await resolveAdminToken(config.adminToken, config.dataDir);
    if (admin.source === 'generated') {
      logger.info({ file: admin.file }, `generated an admin token; it is in ${admin.file} (mode 0600)`);
    }
    const secrets = await loadServerSecrets(config.dataDir, config.sealingKey);
    for (const file of secrets.created) logger.info({ file }, `generated ${file} (mode 0600); back it up`);
    const repositories = createRepositories(storage);
    const replicaStore = repositories.replica;
    const p2p = await Home.create(
      {
        nodeKey: secrets.nodeKey,
        store: replicaStore,
        queue,
        logger,
        seqGuard: await openSeqGuardStore(storage),
        rooms: repositories.rooms,
        receipts: repositories.receipts,
        oneTimeKeys: repositories.matrix,
        toDevice: repositories.toDevice,
        roomBlocks: repositories.roomBlocks,
      },
      {
        listen: config.p2pListen,
        bootstrap: config.p2pBootstrap,
        announceEveryMs: ANNOUNCE_EVERY_MS,
        host: {
          ...(config.p2pAnnounce.length > 0 ? { announce: config.p2pAnnounce } : {}),
          maxConnections: config.p2pMaxConnections,
          inboundConnectionThreshold: config.p2pInboundConnectionThreshold,
          maxIncomingPendingConnections: config.p2pMaxIncomingPendingConnections,
          connectionLimits: {
            homeReserve: config.p2pHomeConnectionReserve,
            maxConnectionsPerPeer: config.p2pMaxConnectionsPerPeer,
            maxStrangerConnectionsPerIp: config.p2pMaxStrangerConnectionsPerIp,
            strangerIdleTimeout: config.p2pStrangerIdleTimeoutMs,
          },
          ...(config.relay.enabled
            ? {
                relayServer: {
                  maxReservations: config.relay.maxReservations,
                  reservationTtl: config.relay.reservationTtl,
                  dataLimit: config.relay.dataLimit,
                  durationLimit: config.relay.durationLimit,
                },
              }
            : {}),
        },
      },
    ).catch((err: unknown) => {
      throw new Error(
        `Cannot start the libp2p node on ${config.p2pListen.join(', ')}: ${listenFailureReason(err)}. ` +
          'Stop the other process or choose another P2P_LISTEN.',
        { cause: err },
      );
    });
    undo.push(() => p2p.stop());
    return { config, logger, storage, queue, adminToken: admin.verifier, secrets, p2p, repositories, replicaStore };
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw err;
  }
}
