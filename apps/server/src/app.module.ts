import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import type { QueueBackend } from '@polyhome/queue';
import type { SqlReplicaStore, Storage, StorageRepositories } from '@polyhome/storage';
import type { Logger } from 'pino';
import { AccountsModule } from './accounts/accounts.module.js';
import { DeliveryModule } from './delivery/delivery.module.js';
import { AdminModule } from './admin/admin.module.js';
import { AdminTokenVerifier } from './admin/admin-token.js';
import { CustodyModule } from './custody/custody.module.js';
import { EnrollmentModule } from './enrollment/enrollment.module.js';
import { LoginTokensModule } from './login-tokens/login-tokens.module.js';
import { MatrixModule } from './matrix/matrix.module.js';
import { APP_CONFIG, type AppConfig } from './config/config.js';
import { HealthModule } from './health/health.module.js';
import { PINO_LOGGER } from './logging/logger.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { QueueRegistry } from './queue/queue-registry.js';
import { SecurityModule } from './security/security.module.js';
import { QueueService } from './queue/queue.service.js';
import { StorageModule } from './storage/storage.module.js';
import type { Home } from '@polyhome/home';
import { P2pService, SERVER_HOME } from './p2p/p2p.service.js';
import { SERVER_SECRETS, type ServerSecrets } from './secrets/secrets.js';

/** What the server needs opened before Nest starts, so a failure there is one clear line, not a stack trace. */
export interface ServerResources {
  config: AppConfig;
  logger: Logger;
  storage: Storage;
  queue: QueueBackend;
  adminToken: AdminTokenVerifier;
  secrets: ServerSecrets;
  /** This server's Home (libp2p host, sync, discovery, local op writer), started by P2pService. */
  p2p: Home;
  /** The repositories of `storage`; Nest modules get the ones they name (`StorageModule.forFeature`). */
  repositories: StorageRepositories;
  /** The Home's store (`repositories.replica`). */
  replicaStore: SqlReplicaStore;
}

/** Makes the opened resources injectable everywhere, except the repositories (each module names its own). */
@Global()
@Module({})
class CoreModule {
  static with(resources: ServerResources): DynamicModule {
    const providers: Provider[] = [
      { provide: APP_CONFIG, useValue: resources.config },
      { provide: PINO_LOGGER, useValue: resources.logger },
      { provide: AdminTokenVerifier, useValue: resources.adminToken },
      { provide: QueueService, useFactory: () => new QueueService(resources.queue) },
      { provide: QueueRegistry, useFactory: () => new QueueRegistry() },
      { provide: SERVER_SECRETS, useValue: resources.secrets },
      { provide: SERVER_HOME, useValue: resources.p2p },
      P2pService,
    ];
    return {
      module: CoreModule,
      imports: [StorageModule.forFeature('homeNodes', 'accounts')],
      providers,
      exports: providers,
    };
  }
}

/** The server home application. */
@Module({})
export class AppModule {
  static forRoot(resources: ServerResources): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.with(resources),
        StorageModule.forRoot(resources.storage, resources.repositories),
        SecurityModule,
        MetricsModule,
        HealthModule,
        AdminModule,
        AccountsModule,
        DeliveryModule,
        EnrollmentModule,
        CustodyModule,
        LoginTokensModule,
        MatrixModule,
      ],
    };
  }
}
