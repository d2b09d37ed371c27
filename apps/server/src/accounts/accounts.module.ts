import { Module } from '@nestjs/common';
import { StorageModule } from '../storage/storage.module.js';
import { AccountsController } from './accounts.controller.js';
import { AccountsService } from './accounts.service.js';

/** Hosting accounts: hosted and co-hosted, their state, homes and documents. Exports its service only. */
@Module({
  imports: [StorageModule.forFeature('accounts', 'homeNodes', 'transactions', 'replica')],
  controllers: [AccountsController],
  providers: [AccountsService],
  exports: [AccountsService],
})
export class AccountsModule {}
