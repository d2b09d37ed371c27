import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import type { QueueBackend } from '@polyhome/queue';
import { SqlReplicaStore, type Storage } from '@polyhome/storage';
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
import { StorageService } from './storage/storage.service.js';
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
  replicaStore: SqlReplicaStore;
}

/** Makes the opened resources injectable everywhere. */
@Global()
@Module({})
class CoreModule {
  static with(resources: ServerResources): DynamicModule {
    const providers: Provider[] = [
      { provide: APP_CONFIG, useValue: resources.config },
      { provide: PINO_LOGGER, useValue: resources.logger },
      { provide: AdminTokenVerifier, useValue: resources.adminToken },
      { provide: StorageService, useFactory: () => new StorageService(resources.storage) },
      { provide: QueueService, useFactory: () => new QueueService(resources.queue) },
      { provide: QueueRegistry, useFactory: () => new QueueRegistry() },
      { provide: SqlReplicaStore, useValue: resources.replicaStore },
      { provide: SERVER_SECRETS, useValue: resources.secrets },
      { provide: SERVER_HOME, useValue: resources.p2p },
      P2pService,
    ];
    return { module: CoreModule, providers, exports: providers };
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
