import { Module } from '@nestjs/common';
import { MatrixClientApiModule } from '@polyhome/matrix';
import type { SqlMatrixStore, SqlMediaStore } from '@polyhome/storage';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { AccountsModule } from '../accounts/accounts.module.js';
import { LoginTokensModule } from '../login-tokens/login-tokens.module.js';
import { P2pService } from '../p2p/p2p.service.js';
import { repositoryToken, StorageModule } from '../storage/storage.module.js';
import { ServerHomeAccounts } from './matrix-home.adapter.js';

/** Provides the server's accounts side of the Matrix home port. */
@Module({
  imports: [AccountsModule, LoginTokensModule, StorageModule.forFeature('accounts')],
  providers: [ServerHomeAccounts],
  exports: [ServerHomeAccounts],
})
class MatrixHomeModule {}

/** The Matrix client API of the server home, at /_matrix/client and /_matrix/media, on the Home's port and the SQL stores. */
@Module({
  imports: [
    MatrixClientApiModule.forRootAsync({
      imports: [MatrixHomeModule, StorageModule.forFeature('matrix', 'media')],
      inject: [ServerHomeAccounts, P2pService, repositoryToken('matrix'), repositoryToken('media'), APP_CONFIG],
      useFactory: (
        accounts: ServerHomeAccounts,
        p2p: P2pService,
        store: SqlMatrixStore,
        media: SqlMediaStore,
        config: AppConfig,
      ) => ({
        port: p2p.home.matrixPort(accounts),
        store,
        // Media of other homes (fetchRemote) comes with media over libp2p; until then it is 404 here.
        media: { store: media, maxUploadBytes: config.mediaMaxBytes },
      }),
    }),
  ],
})
export class MatrixModule {}
