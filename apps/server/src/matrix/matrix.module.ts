import { Module } from '@nestjs/common';
import { MatrixClientApiModule } from '@polyhome/matrix';
import { SqlMatrixStore } from '@polyhome/storage';
import { AccountsModule } from '../accounts/accounts.module.js';
import { LoginTokensModule } from '../login-tokens/login-tokens.module.js';
import { P2pService } from '../p2p/p2p.service.js';
import { StorageService } from '../storage/storage.service.js';
import { ServerHomeAccounts } from './matrix-home.adapter.js';

/** Provides the server's accounts side of the Matrix home port. */
@Module({
  imports: [AccountsModule, LoginTokensModule],
  providers: [ServerHomeAccounts],
  exports: [ServerHomeAccounts],
})
class MatrixHomeModule {}

/** The Matrix client API of the server home, at /_matrix/client, on the Home's port and the SQL store. */
@Module({
  imports: [
    MatrixClientApiModule.forRootAsync({
      imports: [MatrixHomeModule],
      inject: [ServerHomeAccounts, P2pService, StorageService],
      useFactory: (accounts: ServerHomeAccounts, p2p: P2pService, storage: StorageService) => ({
        port: p2p.home.matrixPort(accounts),
        store: new SqlMatrixStore(storage.dataSource),
      }),
    }),
  ],
})
export class MatrixModule {}
