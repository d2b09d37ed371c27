import { Module } from '@nestjs/common';
import { MatrixClientApiModule } from '@polyhome/matrix';
import { SqlMatrixStore } from '@polyhome/storage';
import { AccountsModule } from '../accounts/accounts.module.js';
import { LoginTokensModule } from '../login-tokens/login-tokens.module.js';
import { StorageService } from '../storage/storage.service.js';
import { MatrixHomeAdapter } from './matrix-home.adapter.js';

/** Wires the adapter and the SQL store into the Matrix client API module. */
@Module({
  imports: [AccountsModule, LoginTokensModule],
  providers: [MatrixHomeAdapter],
  exports: [MatrixHomeAdapter],
})
class MatrixHomeModule {}

/** The Matrix client API of the server home, at /_matrix/client. */
@Module({
  imports: [
    MatrixClientApiModule.forRootAsync({
      imports: [MatrixHomeModule],
      inject: [MatrixHomeAdapter, StorageService],
      useFactory: (port: MatrixHomeAdapter, storage: StorageService) => ({
        port,
        store: new SqlMatrixStore(storage.dataSource),
      }),
    }),
  ],
})
export class MatrixModule {}
