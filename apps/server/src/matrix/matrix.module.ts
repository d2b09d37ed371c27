import { Module } from '@nestjs/common';
import { MatrixClientApiModule } from '@polyhome/matrix';
import type { SqlMatrixStore } from '@polyhome/storage';
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

/** The Matrix client API of the server home, at /_matrix/client, on the Home's port and the SQL store. */
@Module({
  imports: [
    MatrixClientApiModule.forRootAsync({
      imports: [MatrixHomeModule, StorageModule.forFeature('matrix')],
      inject: [ServerHomeAccounts, P2pService, repositoryToken('matrix')],
      useFactory: (accounts: ServerHomeAccounts, p2p: P2pService, store: SqlMatrixStore) => ({
        port: p2p.home.matrixPort(accounts),
        store,
      }),
    }),
  ],
})
export class MatrixModule {}
